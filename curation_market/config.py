"""``config.toml`` → the engine's plain settings, with errors that name key and expected form."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from curation.chains import CHAIN_IDS, ChainProfile
from curation.market import MarketConfig
from curation.payload import PayloadLimits, parse_milli
from rewards.rules import RULE_SETS, named
from rewards.staked import STAKED_RULES


class ConfigError(ValueError):
    pass


M = TypeVar("M", bound=BaseModel)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _amount_text(value: str, example: str) -> str:
    """An amount of the dollar token as a decimal string (milli-units, never a float)."""
    if parse_milli(value) is None:
        raise ValueError(f'expected an amount string like "{example}"')
    return value


def _decimal_text(value: str, what: str) -> str:
    try:
        d = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"expected {what} as a decimal string") from exc
    if not d.is_finite() or d < 0:
        raise ValueError(f"expected {what} as a non-negative decimal string")
    return value


class Chain(_Section):
    """Which chain. Unset keys follow the node (``run``, ``commit``, ``reveal``); a replay has
    no node, so there the id is the named chain's own."""

    name: Literal["steem", "hive"] = "steem"
    chain_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @property
    def id(self) -> str:
        """The configured id, else the named chain's (what a replay hashes with)."""
        return self.chain_id or CHAIN_IDS[self.name]

    def against(self, node: ChainProfile, where: str) -> ChainProfile:
        """The node's profile when the config agrees with it; a configured key that says
        otherwise is an error naming the key (spec §2: never a silent mismatch)."""
        if "name" in self.model_fields_set and self.name != node.name:
            raise ConfigError(
                f"config chain.name is {self.name!r} but the node {where} is {node.name} "
                f"(chain id {node.chain_id}); set chain.name = {node.name!r} or leave it out")
        if self.chain_id is not None and self.chain_id != node.chain_id:
            raise ConfigError(
                f"config chain.chain_id {self.chain_id} differs from the chain id of the node "
                f"{where}, {node.chain_id} ({node.name}): commitments hashed with one never "
                "verify with the other; fix chain.chain_id or leave it out to use the node's")
        return node


class Market(_Section):
    custom_json_id: str = Field(default="curation_market", min_length=1, max_length=32)
    window_seconds: int = Field(default=1800, ge=1, le=7 * 86400)
    reveal_period_seconds: int = Field(default=21600, ge=1, le=7 * 86400)
    include_replies: bool = False
    max_prediction: str = "10000000.000"
    max_open_commits: int = Field(default=500, ge=1)
    max_payload_bytes: int = Field(default=8192, ge=64, le=1 << 20)
    max_ops_per_payload: int = Field(default=50, ge=1, le=10_000)

    @field_validator("max_prediction")
    @classmethod
    def _milli(cls, v: str) -> str:
        return _amount_text(v, "10000000.000")


KNOWN_RULES = (*RULE_SETS, *STAKED_RULES)


class RulesSection(_Section):
    name: str = "seed"
    closeness: Literal["prose", "as_written", "inverse", "off"] | None = None
    information_added: bool | None = None
    underdog: Literal["off", "curve", "beat-average"] = "off"
    # None: the chain's share in the era of the settled block (0.25 before HF21, then 0.5)
    curation_fraction: str | None = None
    reputation_min_payout: str = "1.000"
    underdog_c: str = "0.2"
    underdog_floor: float = Field(default=1.0, ge=0)
    author_window_days: int = Field(default=28, ge=1, le=365)
    disqualify_voters: bool = False
    # staked rule sets (spec §5): epoch length of mmc/yuma, stake of a reveal that names none
    epoch_days: int = Field(default=7, ge=1, le=365)
    default_stake: str = "sp"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v not in KNOWN_RULES:
            raise ValueError(f"unknown rule set; expected one of {', '.join(KNOWN_RULES)}")
        return v

    @field_validator("default_stake")
    @classmethod
    def _stake(cls, v: str) -> str:
        if v != "sp" and parse_milli(v) is None:
            raise ValueError('expected "sp" (the predictor\'s Steem Power) or an amount '
                             'string like "10.000"')
        return v

    @field_validator("curation_fraction", "underdog_c")
    @classmethod
    def _ratio(cls, v: str | None) -> str | None:
        if v is None:
            return v
        _decimal_text(v, "a ratio")
        if not 0 <= Decimal(v) <= 1:
            raise ValueError("expected a ratio between 0 and 1, as a decimal string")
        return v

    @field_validator("reputation_min_payout")
    @classmethod
    def _amount(cls, v: str) -> str:
        return _amount_text(v, "1.000")


class Ingest(_Section):
    db: str = "sqlite:///curation.db"
    batch_blocks: int = Field(default=2000, ge=1, le=100_000)
    # the last N blocks written keep undo data: `curation-market rewind --to BLOCK` and the
    # daemon's fork rewind go back at most this far (0: none, the fastest replay)
    reversible_blocks: int = Field(default=100, ge=0, le=100_000)


class Node(_Section):
    """Following a live node (``curation-market run``)."""

    urls: list[str] = Field(default_factory=list)
    head_mode: bool = False
    batch_size: int = Field(default=1000, ge=1, le=1000)
    # JSON-RPC calls per HTTP request at most; lowered by itself to what a node accepts
    batch_calls: int = Field(default=1000, ge=1, le=10_000)
    history_wait_seconds: float = Field(default=600.0, gt=0)
    queue_batches: int = Field(default=8, ge=1, le=1000)
    poll_seconds: float = Field(default=0.5, gt=0, le=60)
    timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    retries: int = Field(default=5, ge=1, le=100)
    backoff_seconds: float = Field(default=0.5, ge=0, le=60)
    stale_seconds: int = Field(default=60, ge=1)
    health_seconds: float = Field(default=10.0, gt=0)
    sweep_seconds: float = Field(default=30.0, gt=0)
    upkeep_seconds: float = Field(default=300.0, gt=0)
    metrics_port: int = Field(default=0, ge=0, le=65535)
    start_block: int = Field(default=0, ge=0)


class Serve(_Section):
    """``curation-market serve``: what the page is told (``/api/client-config``)."""

    # JSON-RPC node the page broadcasts curators' signed ops to (the browser calls it
    # directly, so it must answer CORS); None: the page signs only through Keychain
    node_url: str | None = Field(default=None, pattern=r"^https?://")


class Settings(_Section):
    chain: Chain = Chain()
    market: Market = Market()
    rules: RulesSection = RulesSection()
    ingest: Ingest = Ingest()
    node: Node = Node()
    serve: Serve = Serve()

    def market_config(self) -> MarketConfig:
        r = self.rules
        overrides: dict[str, object] = {
            "underdog": r.underdog,
            "curation_fraction": None if r.curation_fraction is None
            else Fraction(r.curation_fraction),
            "reputation_min_payout": parse_milli(r.reputation_min_payout),
            "underdog_c": Fraction(r.underdog_c),
            "underdog_floor": r.underdog_floor,
            "author_window": r.author_window_days * 86400,
            "disqualify_voters": r.disqualify_voters,
        }
        if r.closeness is not None:
            overrides["closeness"] = r.closeness
        if r.information_added is not None:
            overrides["information_added"] = r.information_added
        # a staked rule set settles over the engine's per-post table (see staked_rules):
        # the engine itself replays with the seed rules
        rules = named("seed" if r.name in STAKED_RULES else r.name, **overrides)
        m = self.market
        limits = PayloadLimits(m.max_payload_bytes, m.max_ops_per_payload,
                               parse_milli(m.max_prediction) or 0)
        return MarketConfig(market_id=m.custom_json_id, chain_id=self.chain.id,
                            chain=self.chain.name, window=m.window_seconds,
                            reveal_period=m.reveal_period_seconds,
                            include_replies=m.include_replies,
                            max_open_commits=m.max_open_commits, limits=limits, rules=rules)


    def staked_rules(self) -> tuple[str, object] | None:
        """(name, params) when ``rules.name`` is a staked rule set, else None."""
        r = self.rules
        if r.name not in STAKED_RULES:
            return None
        params = STAKED_RULES[r.name].params
        overrides: dict[str, object] = {
            "default_stake": None if r.default_stake == "sp" else parse_milli(r.default_stake)}
        if hasattr(params, "epoch_seconds"):
            overrides["epoch_seconds"] = r.epoch_days * 86400
        return r.name, replace(params, **overrides)


def load_settings(path: str | Path | None = None) -> Settings:
    """Defaults, overlaid by the TOML file when given."""
    return Settings() if path is None else load_model(Path(path), Settings)


def load_model(path: Path, model: type[M]) -> M:
    """A TOML file validated into ``model``; every error names the file and the key."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(f"{path}: " + "; ".join(_describe(e) for e in exc.errors())) from None


def _describe(err: dict) -> str:
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"unknown key {key!r}"
    got = err.get("input")
    return f"{key}: {err['msg'].removeprefix('Value error, ')} (got {got!r:.60})"

