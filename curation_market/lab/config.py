"""The evaluation's TOML model (``examples/eval.toml``) and its loading.

Strict sections (unknown keys and wrong types are errors that name the key), defaults equal
to the shipped example, and every variant string parsed at load time so a typo fails before
minutes of replay rather than after.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from curation_market.config import ConfigError, load_model
from curation_market.lab.agents import Population
from curation_market.lab.variants import DEFAULT_VARIANTS, parse_variant


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class EvalSection(_Section):
    seed: int = 17
    max_posts: int = Field(default=0, ge=0)  # 0 = every bundled post
    include_replies: bool = True
    settle_pending: bool = True
    pending_min_age_hours: int = Field(default=24, ge=0)
    stake_per_sp: float = Field(default=0.001, ge=0)
    vote_value_per_sp: float = Field(default=0.0005, ge=0)
    workers: int = Field(default=0, ge=0)  # 0 = one per core
    runs: int = Field(default=5, ge=1, le=100)  # independent simulations, seeds seed, seed+1…
    variants: list[str] = Field(default_factory=lambda: list(DEFAULT_VARIANTS))


class AgentsSection(_Section):
    skilled_sigmas: list[float] = Field(default_factory=lambda: [0.03, 0.1, 0.3])
    skilled_sp: int = Field(default=15_000, ge=0)  # Steem Power (whole units)
    late: int = Field(default=1, ge=0)
    copiers: int = Field(default=1, ge=0)
    ring_size: int = Field(default=9, ge=0)
    ring_total_sp: int = Field(default=22_500, ge=0)
    ring_sigma: float = Field(default=0.5, gt=0)
    selfvoters: int = Field(default=1, ge=0)
    selective: int = Field(default=1, ge=0)
    whales: int = Field(default=1, ge=0)
    whale_sp: int = Field(default=200_000, ge=0)
    other_sp: int = Field(default=15_000, ge=0)  # late, copier, self-voter, selective

    def population(self) -> Population:
        k = 1000
        return Population(tuple(self.skilled_sigmas), self.skilled_sp * k, self.late,
                          self.other_sp * k, self.copiers, self.other_sp * k, self.ring_size,
                          self.ring_total_sp * k, self.ring_sigma, self.selfvoters,
                          self.other_sp * k, self.selective, self.other_sp * k, self.whales,
                          self.whale_sp * k)


class EvalConfig(_Section):
    evaluate: EvalSection = EvalSection()
    agents: AgentsSection = AgentsSection()


def load_eval_config(path: str | Path | None) -> EvalConfig:
    if path is None:
        return EvalConfig()
    path = Path(path)
    cfg = load_model(path, EvalConfig)
    for i, v in enumerate(cfg.evaluate.variants):
        try:
            parse_variant(v)
        except ValueError as exc:
            raise ConfigError(f"{path}: evaluate.variants[{i}]: {exc} (got {v!r})") from None
    return cfg


