"""Every rule set side by side on replayed real history with simulated curators (issue 4).

One *stream* = the bundled block-17M posts with their real timed votes and payouts, plus the
agents' commits, reveals and self-votes (:mod:`curation_market.lab.agents`), turned into engine
records
once. A *variant* replays a stream through the pure engine (``curation.market.Applier`` over
an in-memory ``State``) with its own ``Rules``/``MarketConfig``; a *staked* rule set takes the
settled markets of the default replay as :class:`rewards.outcome.Outcome` rows and applies
its ``settle()`` from ``rewards.staked.STAKED_RULES``. Variants run in a process pool; the
report is built from their plain results in a fixed order, so the same config gives a
byte-identical ``report.md`` whatever the number of workers.

Variant syntax (``examples/eval.toml``): ``base[+key=value…]`` with base a seed-family rule
set (``seed``, ``seed-as-written``, ``commit-reveal``) and keys ``closeness``, ``ia``
(on/off), ``underdog``, ``voters`` (flagged/out), ``window``, ``reveal`` (seconds); or
``staked:NAME`` for a rule set of the staked registry.
"""

from __future__ import annotations

import copy
import math
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from curation.market import Applier, MarketConfig
from curation.records import Block
from curation.state import Account, Globals, State
from curation_market.config import ConfigError, load_model
from curation_market.lab.agents import (
    Ledger,
    Play,
    Population,
    agent_type,
    final_payout,
    self_votes,
    simulate_agents,
)
from curation_market.lab.demo import bundled_posts
from curation_market.lab.simulate import Agent, agent_accounts
from indexer.accounts import globals_from, read_accounts
from indexer.ops import Adapter, chain_time
from indexer.postdump import NEVER, STEEM_17M, Anchor, Events, import_posts
from rewards.outcome import Award, Outcome
from rewards.rules import RULE_SETS, named
from rewards.staked import STAKED_RULES

DATA = resources.files("curation_market") / "data"
HOUR = 3600
DEFAULT_VARIANTS = (
    "seed", "seed-as-written", "commit-reveal",
    "seed+closeness=inverse", "seed+closeness=off", "seed+ia=on",
    "seed+underdog=curve", "seed+underdog=beat-average", "seed+voters=out",
    "seed+window=900", "seed+window=3600", "seed+reveal=3600", "seed+reveal=86400",
    "commit-reveal+underdog=curve",
    "staked:numerai-2018", "staked:numerai-2019", "staked:mmc", "staked:yuma", "staked:proper",
)
BID_MEANING = {"numerai-2019": "accuracy"}  # every other staked rule: confidence


# --- configuration ----------------------------------------------------------------------
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


@dataclass(frozen=True)
class Variant:
    label: str
    base: str  # seed-family rule set name, or the staked rule set's name
    staked: bool = False
    overrides: tuple[tuple[str, object], ...] = ()
    window: int = 1800
    reveal_period: int = 6 * HOUR

    def market_config(self, include_replies: bool) -> MarketConfig:
        rules = named("seed" if self.staked else self.base, **dict(self.overrides))
        return MarketConfig(window=self.window, reveal_period=self.reveal_period,
                            include_replies=include_replies, rules=rules)

    @property
    def bid_meaning(self) -> str:
        return BID_MEANING.get(self.base, "confidence") if self.staked else "confidence"


_KEYS: dict[str, Callable[[str], tuple[str, object]]] = {
    "closeness": lambda v: ("closeness", v),
    "ia": lambda v: ("information_added", {"on": True, "off": False}[v]),
    "underdog": lambda v: ("underdog", v),
    "voters": lambda v: ("disqualify_voters", {"out": True, "flagged": False}[v]),
}


def parse_variant(text: str) -> Variant:
    """``seed+closeness=inverse+window=900`` or ``staked:mmc`` → a Variant (ValueError)."""
    if text.startswith("staked:"):
        name = text.removeprefix("staked:")
        if name not in staked_registry():
            raise ValueError(f"unknown staked rule set {name!r}; known: "
                             f"{', '.join(staked_registry())}")
        return Variant(text, name, staked=True)
    base, *mods = text.split("+")
    if base not in RULE_SETS:
        raise ValueError(f"unknown rule set {base!r}; known: {', '.join(RULE_SETS)}, staked:NAME")
    overrides, window, reveal = [], 1800, 6 * HOUR
    for mod in mods:
        key, _, value = mod.partition("=")
        if key in ("window", "reveal"):
            if not value.isdigit() or int(value) < 60:
                raise ValueError(f"{key} expects seconds (an integer ≥ 60)")
            window, reveal = (int(value), reveal) if key == "window" else (window, int(value))
        elif key in _KEYS:
            try:
                overrides.append(_KEYS[key](value))
            except KeyError:
                raise ValueError(f"bad value {value!r} for {key}") from None
        else:
            raise ValueError(f"unknown modifier {key!r}; expected one of "
                             f"{', '.join([*_KEYS, 'window', 'reveal'])}")
    named(base, **dict(overrides))  # the Rules dataclass validates the values
    return Variant(text, base, False, tuple(overrides), window, reveal)


# --- streams: real history + agents, as engine records ----------------------------------
@dataclass
class Stream:
    blocks: list[Block]
    accounts: dict[str, Account]
    globals: Globals
    agents: list[Agent]
    ledger: Ledger
    finals: dict[tuple[str, str], int]  # F per post that settles in the stream


def select_posts(posts: Sequence[dict], ev: EvalSection) -> list[dict]:
    """The slice to replay: pending posts younger than ``pending_min_age_hours`` at the
    snapshot get no outcome (their pending value is still far from final)."""
    head = chain_time(STEEM_17M[1])
    out = []
    for p in sorted(posts, key=lambda p: (p["created"], p["author"], p["permlink"])):
        paid = (p.get("last_payout") or NEVER) > NEVER
        if not paid and head - chain_time(p["created"]) < ev.pending_min_age_hours * HOUR:
            p = {**p, "cashout_time": NEVER}
        out.append(p)
    return out[:ev.max_posts] if ev.max_posts else out


def build_stream(cfg: EvalConfig, window: int, reveal_period: int, bid_meaning: str,
                 posts: Sequence[dict] | None = None) -> Stream:
    ev = cfg.evaluate
    posts = select_posts(bundled_posts() if posts is None else posts, ev)
    agents = cfg.agents.population().agents()
    mc = MarketConfig()
    play = Play(mc.chain_id, mc.market_id, window, reveal_period, ev.seed, ev.stake_per_sp,
                ev.vote_value_per_sp, bid_meaning)
    anchor = Anchor.of(*STEEM_17M)
    voted, plans = self_votes(posts, agents, play, ev.settle_pending, ev.include_replies)
    events = Events.empty()
    ledger = simulate_agents(voted, agents, anchor, events, play, ev.settle_pending,
                             ev.include_replies, plans)
    raw = import_posts(voted, anchor, ev.settle_pending, extra=events)
    adapter = Adapter(mc.market_id, mc.limits, mc.chain)
    blocks = [adapter.block(b) for b in raw]
    globals_ = Globals(*globals_from(orjson.loads((DATA / "steem17m_globals.json")
                                                  .read_bytes())))
    accounts: dict[str, Account] = {}
    # (the one line refused is steemd's all-zero object for an unknown name)
    for a in read_accounts([DATA / "steem17m_accounts.jsonl.gz"], []):
        accounts[a.name] = a
    for a in agent_accounts(agents, globals_):
        accounts[a.name] = a
    finals = {}
    for p in voted:
        paid = final_payout(p, ev.settle_pending)
        if paid is not None:
            finals[(p["author"], p["permlink"])] = paid[1]
    return Stream(blocks, accounts, globals_, agents, ledger, finals)


# --- one run ----------------------------------------------------------------------------
@dataclass
class RunResult:
    label: str
    staked: bool
    rewards: dict[str, int]  # agent → net award, milli-units (negative = stake burned)
    paid: int  # Σ positive awards (gross)
    burned: int  # Σ negative awards, as a positive number (gross)
    pools: int  # Σ curation pools of settled markets
    markets: int  # settled markets with at least one commit
    early_spearman: float | None
    rejections: dict[str, int] = field(default_factory=dict)
    note: str = ""


def replay(stream: Stream, mc: MarketConfig) -> State:
    state = State(globals=stream.globals,
                  accounts={k: copy.copy(v) for k, v in stream.accounts.items()})
    applier = Applier(state, mc)
    for b in stream.blocks:
        applier.apply(b)
    return state


def outcomes_of(state: State) -> list[Outcome]:
    """Settled markets as the Outcome table: the read model's one definition
    (:func:`indexer.readmodel.outcome_table`) over the in-memory replay."""
    from indexer.readmodel import OutcomeMarket, outcome_table

    by_id = {p.id: p for p in state.posts.values() if p is not None}
    markets, commits = [], []
    for m in state.settled:
        post = by_id[m.post_id]
        markets.append(OutcomeMarket(post.id, post.author, post.permlink, post.created, m.time,
                                     m.final_payout, m.pool))
        commits += sorted((c for c in (state.commits.get((post.id, n))
                                       for n in state.commits_of_post.get(post.id, ()))
                           if c is not None and c.status == "settled"), key=lambda c: c.order)
    return outcome_table(markets, commits)


def replayed(stream: Stream, mc: MarketConfig, cache: dict | None = None
             ) -> tuple[Any, list[Outcome]]:
    """The stream replayed under ``mc`` and its outcomes; with a cache, once per config (the
    staked rule sets all judge the seed replay, which the seed variant replays too)."""
    if cache is None or mc not in cache:
        state = replay(stream, mc)
        done = (state, outcomes_of(state))
        if cache is None:
            return done
        cache[mc] = done
    return cache[mc]


def run_on_stream(stream: Stream, v: Variant, include_replies: bool,
                  cache: dict | None = None) -> RunResult:
    """One rule variant over one stream: replay (seed family) or settle() (staked)."""
    state, outcomes = replayed(stream, v.market_config(include_replies), cache)
    pools = sum(o.pool for o in outcomes)
    rejections = dict(sorted(Counter(r.reason for r in state.rejections).items()))
    early = early_spearman(outcomes, v.window)
    rewards = dict.fromkeys((a.name for a in stream.agents), 0)
    if v.staked:
        try:
            amounts = [(a.predictor, a.amount) for a in staked_registry()[v.base](outcomes)]
        except AssertionError:
            raise  # a split that does not conserve its pool is a bug, never a footnote
        except Exception as exc:  # noqa: BLE001 - one broken rule set must not sink the rest
            return RunResult(v.label, True, {}, 0, 0, pools, len(outcomes), early, rejections,
                             f"settle() failed: {type(exc).__name__}: {exc}"[:120])
    else:
        amounts = [(c.predictor, c.reward) for c in state.commits.values()
                   if c is not None and c.reward]
    for who, amount in amounts:
        rewards[who] = rewards.get(who, 0) + amount
    paid = sum(x for _, x in amounts if x > 0)  # gross, award by award
    burned = -sum(x for _, x in amounts if x < 0)
    return RunResult(v.label, v.staked, rewards, paid, burned, pools, len(outcomes), early,
                     rejections)


@dataclass
class GroupResult:
    """What one worker task returns: its variants' results and, for the default stream, what
    the agents did (for the skill column)."""

    results: list[RunResult]
    errors: dict[str, list[float]] | None = None  # agent → |ln(P/F)| per committed prediction
    commits: dict[str, int] | None = None
    reveals: dict[str, int] | None = None
    markets: int = 0
    self_votes: int = 0


StreamKey = tuple[int, int, str]  # window, reveal period, bid meaning
DEFAULT_KEY: StreamKey = (1800, 6 * HOUR, "confidence")


def run_group(cfg_json: str, run: int, key: StreamKey, texts: Sequence[str]) -> GroupResult:
    """Worker entry: build the stream of run ``run`` (seed + run) once, play its variants."""
    cfg = EvalConfig.model_validate_json(cfg_json)
    cfg = cfg.model_copy(update={"evaluate": cfg.evaluate.model_copy(
        update={"seed": cfg.evaluate.seed + run})})
    stream = build_stream(cfg, *key)
    cache: dict = {}
    results = [run_on_stream(stream, parse_variant(t), cfg.evaluate.include_replies, cache)
               for t in texts]
    if key != DEFAULT_KEY:
        return GroupResult(results)
    state, outcomes = replayed(
        stream, parse_variant("seed").market_config(cfg.evaluate.include_replies), cache)
    reveals = Counter(c.predictor for c in state.commits.values()
                      if c is not None and c.prediction is not None)
    return GroupResult(results, errors(stream), dict(Counter(c[0] for c in
                                                             stream.ledger.commits)),
                       dict(reveals), len(outcomes), len(stream.ledger.votes))


def staked_registry() -> dict[str, Callable[[Sequence[Outcome]], Iterable[Award]]]:
    """name → settle(outcomes) → awards, each staked rule set with its default parameters
    (``rewards/staked.py``)."""

    def bind(rule: Any) -> Callable[[Sequence[Outcome]], Iterable[Award]]:
        return lambda outcomes: rule.settle(outcomes, rule.params).awards

    return {name: bind(rule) for name, rule in STAKED_RULES.items()}


# --- statistics -------------------------------------------------------------------------
def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's ρ (average ranks for ties); None when undefined."""
    if len(xs) < 3:
        return None
    from scipy.stats import spearmanr
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    rho = float(spearmanr(xs, ys).statistic)
    return None if math.isnan(rho) else rho


def gini(values: Sequence[int]) -> float | None:
    """Gini of non-negative amounts (burned stakes count as 0)."""
    xs = sorted(max(0, v) for v in values)
    total = sum(xs)
    if not xs or total == 0:
        return None
    n = len(xs)
    return sum((2 * i - n + 1) * x for i, x in enumerate(xs)) / (n * total)


def early_spearman(outcomes: Sequence[Outcome], window: int) -> float | None:
    """ρ between F and the median of predictions committed in the window's first half."""
    xs, ys = [], []
    for o in outcomes:
        early = sorted(f.prediction for f in o.forecasts
                       if f.commit_time - o.created <= window // 2)
        if early:
            xs.append(early[len(early) // 2])
            ys.append(o.final_payout)
    return spearman(xs, ys)


def errors(stream: Stream) -> dict[str, list[float]]:
    """|ln(P/F)| of every prediction each agent committed (revealed or not), F > 0."""
    errs: dict[str, list[float]] = defaultdict(list)
    for name, author, permlink, _, prediction in stream.ledger.commits:
        final = stream.finals.get((author, permlink), 0)
        if final > 0:
            errs[name].append(abs(math.log(max(prediction, 1) / final)))
    return dict(errs)


# --- the whole comparison ---------------------------------------------------------------
@dataclass
class Evaluation:
    cfg: EvalConfig
    results: list[RunResult]
    agents: list[Agent]
    skills: dict[str, float]
    commits: dict[str, int]
    reveals: dict[str, int]
    markets: int
    posts: int
    votes: int
    self_votes: int


def merge(parts: Sequence[RunResult]) -> RunResult:
    """Pool one variant's runs: money and counts add up, ρ is averaged over the runs."""
    first = parts[0]
    rewards: dict[str, int] = defaultdict(int)
    rejections: dict[str, int] = defaultdict(int)
    for p in parts:
        for k, x in p.rewards.items():
            rewards[k] += x
        for k, x in p.rejections.items():
            rejections[k] += x
    rhos = [p.early_spearman for p in parts if p.early_spearman is not None]
    return RunResult(first.label, first.staked, dict(rewards), sum(p.paid for p in parts),
                     sum(p.burned for p in parts), sum(p.pools for p in parts),
                     sum(p.markets for p in parts), sum(rhos) / len(rhos) if rhos else None,
                     dict(sorted(rejections.items())), next((p.note for p in parts if p.note), ""))


def evaluate(cfg: EvalConfig, workers: int | None = None,
             progress: Callable[[str, int], None] | None = None) -> Evaluation:
    """Every variant × every run, spread over a process pool; results in config order."""
    cfg_json = cfg.model_dump_json()
    texts = list(dict.fromkeys(cfg.evaluate.variants))
    groups: dict[StreamKey, list[str]] = {DEFAULT_KEY: []}
    for t in texts:
        v = parse_variant(t)
        groups.setdefault((v.window, v.reveal_period, v.bid_meaning), []).append(t)
    tasks = [(run, key, group) for run in range(cfg.evaluate.runs)
             for key, group in groups.items()]
    n = workers if workers is not None else (cfg.evaluate.workers or os.cpu_count() or 1)
    done: dict[tuple[int, StreamKey], GroupResult] = {}
    if n <= 1:
        for run, key, group in tasks:
            done[(run, key)] = run_group(cfg_json, run, key, group)
            if progress:
                progress(f"run {run + 1}: {', '.join(group) or 'agents'}", len(group))
    else:
        with ProcessPoolExecutor(max_workers=n) as pool:
            futures = {pool.submit(run_group, cfg_json, run, key, group): (run, key, group)
                       for run, key, group in tasks}
            for fut in as_completed(futures):
                run, key, group = futures[fut]
                done[(run, key)] = fut.result()
                if progress:
                    progress(f"run {run + 1}: {', '.join(group) or 'agents'}", len(group))
    by_label: dict[str, list[RunResult]] = defaultdict(list)
    for run, key, _ in tasks:
        for r in done[(run, key)].results:
            by_label[r.label].append(r)
    bases = [done[(run, DEFAULT_KEY)] for run in range(cfg.evaluate.runs)]
    errs: dict[str, list[float]] = defaultdict(list)
    commits: Counter[str] = Counter()
    reveals: Counter[str] = Counter()
    for b in bases:
        for k, e in (b.errors or {}).items():
            errs[k] += e
        commits.update(b.commits or {})
        reveals.update(b.reveals or {})
    agents = cfg.agents.population().agents()
    posts = select_posts(bundled_posts(), cfg.evaluate)
    return Evaluation(cfg, [merge(by_label[t]) for t in texts], agents,
                      {k: -sum(e) / len(e) for k, e in sorted(errs.items())}, dict(commits),
                      dict(reveals), sum(b.markets for b in bases), len(posts),
                      sum(len(p.get("active_votes") or []) for p in posts),
                      sum(b.self_votes for b in bases))


# --- the report -------------------------------------------------------------------------
def _milli(x: int) -> str:
    sign = "-" if x < 0 else ""
    x = abs(x)
    return f"{sign}{x // 1000:,}.{x % 1000:03d}"


def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _per_1000(x: int, sp: int) -> str:
    """Reward (milli-units) per 1000 SP, where ``sp`` is milli-SP."""
    return _milli(x * 1000 * 1000 // sp) if sp else "n/a"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


@dataclass
class Tables:
    """Every table of the report as (title, head, rows, note): one source for MD and HTML."""

    items: list[tuple[str, list[str], list[list[str]], str]]


def agent_types(ev: Evaluation) -> list[str]:
    return list(dict.fromkeys(agent_type(a) for a in ev.agents))


def shares(ev: Evaluation, r: RunResult) -> dict[str, float]:
    """Each type's share of the positive net rewards (burned stakes are shown apart)."""
    by_type: dict[str, int] = defaultdict(int)
    for a in ev.agents:
        by_type[agent_type(a)] += max(0, r.rewards.get(a.name, 0))
    total = sum(by_type.values())
    return {t: (by_type[t] / total if total else 0.0) for t in agent_types(ev)}


def sybil_row(ev: Evaluation, r: RunResult) -> tuple[int, int, int, int, float | None]:
    ring = [a for a in ev.agents if a.kind == "sybil"]
    twin = [a for a in ev.agents if a.kind == "twin"]
    ring_sp, twin_sp = sum(a.sp for a in ring), sum(a.sp for a in twin)
    ring_r = sum(r.rewards.get(a.name, 0) for a in ring)
    twin_r = sum(r.rewards.get(a.name, 0) for a in twin)
    ratio = None
    if ring_sp and twin_sp and twin_r > 0:
        ratio = (ring_r / ring_sp) / (twin_r / twin_sp)
    return ring_r, ring_sp, twin_r, twin_sp, ratio


def skill_spearman(ev: Evaluation, r: RunResult) -> float | None:
    names = [a.name for a in ev.agents if a.name in ev.skills and a.sp > 0]
    sp = {a.name: a.sp for a in ev.agents}
    return spearman([ev.skills[n] for n in names],
                    [r.rewards.get(n, 0) / sp[n] for n in names])


def build_tables(ev: Evaluation) -> Tables:
    items = []
    rows = [[a.name, agent_type(a), _milli(a.sp), str(ev.commits.get(a.name, 0)),
             str(ev.reveals.get(a.name, 0)), _num(ev.skills.get(a.name))] for a in ev.agents]
    items.append(("Agents", ["agent", "type", "SP", "commits (all runs)", "revealed (seed rules)",
                             "skill −mean abs ln(P/F)"], rows,
                  "Skill is measured over every committed prediction, revealed or not."))
    types = agent_types(ev)
    rows = []
    for r in ev.results:
        if r.note:
            rows.append([r.label] + ["—"] * len(types))
            continue
        s = shares(ev, r)
        rows.append([r.label] + [f"{100 * s[t]:.1f}" for t in types])
    items.append(("Share of rewards by agent type (% of the agents' positive net rewards)",
                  ["rule set"] + types, rows,
                  "Net = awards minus burned stakes per agent; an agent with a negative net "
                  "counts as 0 here. Gross burned stakes are in the summary table."))
    rows = []
    for r in ev.results:
        net: dict[str, int] = defaultdict(int)
        for a in ev.agents:
            net[agent_type(a)] += r.rewards.get(a.name, 0)
        rows.append([r.label] + (["—"] * len(types) if r.note else
                                 [_milli(net[t]) for t in types]))
    items.append(("Net reward by agent type (awards minus burned stakes)", ["rule set"] + types,
                  rows, "Milli-unit amounts shown as units, pooled over the runs."))
    rows = []
    for r in ev.results:
        if r.note:
            rows.append([r.label, "—", "—", "—", "—", r.note])
            continue
        ring_r, ring_sp, twin_r, twin_sp, ratio = sybil_row(ev, r)
        rows.append([r.label, _milli(ring_r), _milli(twin_r), _per_1000(ring_r, ring_sp),
                     _per_1000(twin_r, twin_sp),
                     "n/a (twin net ≤ 0)" if ratio is None else f"{ratio:.2f}"])
    items.append(("Sybil ring vs an honest curator with the same total SP",
                  ["rule set", "ring reward", "twin reward", "ring per 1000 SP",
                   "twin per 1000 SP", "ring/twin per SP"], rows,
                  "Ring: accounts splitting one SP budget and spraying ±40 % around one "
                  "rough guess. Twin: one account with the same total SP and the same skill "
                  "(σ of its guess), no spraying. Ratio > 1: spraying pays."))
    rows = []
    for r in ev.results:
        if r.note:
            rows.append([r.label, str(r.markets), _milli(r.pools), "—", "—", "—", "—",
                         _num(r.early_spearman), r.note])
            continue
        rows.append([r.label, str(r.markets), _milli(r.pools), _milli(r.paid),
                     _milli(r.burned), _num(gini(list(r.rewards.values()))),
                     _num(skill_spearman(ev, r)), _num(r.early_spearman),
                     ", ".join(f"{k} {v}" for k, v in r.rejections.items()) or "none"])
    items.append(("Summary per rule set",
                  ["rule set", "markets", "pools", "paid", "burned", "Gini", "ρ(skill, reward/SP)",
                   "ρ(early median, F)", "rejections"], rows,
                  "Paid and burned are gross, award by award. Gini over agents' net rewards "
                  "(negative counts as 0). ρ = Spearman. Early median: "
                  "the median revealed prediction committed in the window's first half."))
    return Tables(items)


def intro(ev: Evaluation) -> str:
    """What was replayed, in one paragraph (the same text heads the Markdown and HTML)."""
    e = ev.cfg.evaluate
    runs = e.runs
    return (f"{ev.posts} real posts ({ev.votes:,} timed votes); {runs} independent runs of "
            f"{len(ev.agents)} simulated curators (seeds {e.seed}–{e.seed + runs - 1}), "
            f"{ev.markets // runs} settled markets with predictions per run, "
            f"{ev.self_votes} self-votes in all. Money and counts are pooled over the runs; "
            f"ρ(early median, F) is the mean over the runs; ρ(skill, reward/SP) is taken on "
            f"the pooled rewards. Replies are markets: {e.include_replies}. "
            f"Pending posts older than {e.pending_min_age_hours} h settle at their cashout "
            f"with the pending value at block 17M: {e.settle_pending}. Stake per prediction: "
            f"SP × {e.stake_per_sp:g}.")


def render_markdown(ev: Evaluation, tables: Tables, plots: Sequence[str]) -> str:
    lines = ["# Rule sets compared on replayed block-17M history", "", intro(ev), ""]
    for title, head, rows, note in tables.items:
        lines += [f"## {title}", ""] + _table(head, rows) + ["", note, ""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def render_html(ev: Evaluation, tables: Tables, plots: Sequence[str]) -> str:
    from html import escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             "<title>curation-market: rule sets compared</title><style>",
             "body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:"
             "collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .5em;"
             "text-align:right}td:first-child,th:first-child{text-align:left}"
             "img{max-width:100%}</style></head><body>",
             "<h1>Rule sets compared on replayed block-17M history</h1>",
             f"<p>{escape(intro(ev))}</p>"]
    for p in plots:
        parts.append(f"<p><img src='{escape(p)}' alt='{escape(p)}'></p>")
    for title, head, rows, note in tables.items:
        parts.append(f"<h2>{escape(title)}</h2><table><tr>"
                     + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append(f"</table><p>{escape(note)}</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def plot(ev: Evaluation, out: Path) -> list[str]:
    """PNG plots (matplotlib, Agg); returns their file names.

    Legends sit below the axes (never over a bar) and every pair of bars carries its value,
    so the small bars (beat-average, numerai-2018) can still be read.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    done = [r for r in ev.results if not r.note]
    if not done:
        return []
    labels = [r.label for r in done]
    types = agent_types(ev)
    names = []
    height = 0.42 * len(done) + 2.6
    y = list(range(len(done)))

    def finish(fig: Any, ax: Any, name: str, ncol: int) -> None:
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07 if ncol > 2 else -0.06),
                  ncol=ncol, fontsize=9, frameon=False)
        fig.tight_layout()
        fig.savefig(out / name, dpi=90, metadata={"Software": None})
        plt.close(fig)
        names.append(name)

    fig, ax = plt.subplots(figsize=(11, height))
    left = [0.0] * len(done)
    cmap = plt.get_cmap("tab10")
    by_rules = [shares(ev, r) for r in done]
    # a type with no positive reward under any rule set draws no bar: no legend entry either
    # (its colour stays its own, so the colours match between runs of different configs)
    for i, t in enumerate(types):
        vals = [100 * sh[t] for sh in by_rules]
        if not any(vals):
            continue
        ax.barh(y, vals, left=left, color=cmap(i % 10), label=t, edgecolor="white",
                linewidth=0.5)
        for j, v in enumerate(vals):
            if v >= 6:
                ax.text(left[j] + v / 2, j, f"{v:.0f}", ha="center", va="center", fontsize=7,
                        color="white")
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of the agents' positive net rewards (labels: shares ≥ 6 %)")
    absent = [t for t in types if not any(sh[t] for sh in by_rules)]
    ax.set_title("Share of rewards by agent type"
                 + (f" (never rewarded: {', '.join(absent)})" if absent else ""))
    finish(fig, ax, "shares.png", ncol=5)

    fig, ax = plt.subplots(figsize=(11, height))
    ring, twin, ratios = [], [], []
    for r in done:
        ring_r, ring_sp, twin_r, twin_sp, ratio = sybil_row(ev, r)
        ring.append(ring_r * 1000 / ring_sp if ring_sp else 0)
        twin.append(twin_r * 1000 / twin_sp if twin_sp else 0)
        ratios.append("ring/twin n/a (twin net ≤ 0)" if ratio is None
                      else f"ring/twin {ratio:.2f}×")
    kinds = {a.kind for a in ev.agents}  # a legend names only agents the population has
    ax.barh([i - 0.2 for i in y], ring, height=0.4, color="tab:red",
            label="sybil ring" if "sybil" in kinds else "_nolegend_")
    ax.barh([i + 0.2 for i in y], twin, height=0.4, color="tab:blue",
            label="honest twin (same total SP)" if "twin" in kinds else "_nolegend_")
    top = max([*ring, *twin, 1e-9])
    for i, text in enumerate(ratios):
        ax.text(max(ring[i], twin[i], 0) + 0.01 * top, i, text, va="center", fontsize=8)
    ax.set_xlim(min([*ring, *twin, 0]) - 0.01 * top, top * 1.3)
    ax.axvline(0, color="black", lw=0.5)
    ax.set_xlabel("net reward per 1000 SP (milli-units, pooled over the runs)")
    ax.set_title("Sybil ring vs honest curator with the same total SP")
    finish(fig, ax, "sybil.png", ncol=2)

    fig, ax = plt.subplots(figsize=(11, height))
    g = [gini(list(r.rewards.values())) or 0 for r in done]
    s = [skill_spearman(ev, r) or 0 for r in done]
    ax.barh([i - 0.2 for i in y], g, height=0.4, label="Gini of net rewards",
            color="tab:gray")
    ax.barh([i + 0.2 for i in y], s, height=0.4,
            label="ρ(skill, reward per SP) — Spearman, on pooled rewards", color="tab:green")
    for i in y:
        ax.text(max(g[i], 0) + 0.01, i - 0.2, f"{g[i]:.2f}", va="center", fontsize=7)
        ax.text(max(s[i], 0) + 0.01, i + 0.2, f"{s[i]:.2f}", va="center", fontsize=7)
    ax.set_xlim(min([*s, 0]) - 0.05, 1.08)
    ax.axvline(0, color="black", lw=0.5)
    ax.set_xlabel("Gini coefficient (0 equal … 1 one agent takes all) and Spearman ρ "
                  "(−1 … 1), unitless")
    ax.set_title("Concentration and skill–reward rank correlation")
    finish(fig, ax, "gini_skill.png", ncol=2)
    return names


def write_report(ev: Evaluation, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    plots = plot(ev, out)
    tables = build_tables(ev)
    md, html = out / "report.md", out / "report.html"
    md.write_text(render_markdown(ev, tables, plots), encoding="utf-8")
    html.write_text(render_html(ev, tables, plots), encoding="utf-8")
    return [md, html, *(out / p for p in plots)]
