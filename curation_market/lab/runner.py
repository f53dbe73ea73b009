"""Replaying the variants: one *stream* per run and rule-timing, one replay per market config.

A stream is the bundled block-17M posts with their real timed votes and payouts, plus the
agents' commits, reveals and self-votes (:mod:`curation_market.lab.agents`), turned into engine
records once. A seed-family variant replays a stream through the pure engine
(``curation.market.Applier`` over an in-memory ``State``) with its own ``MarketConfig``; a
*staked* variant takes the settled markets of the seed replay as
:class:`rewards.outcome.Outcome` rows and applies its ``settle()``. A replay is cached per
market config, so the seed variant and every staked variant share one replay, as do variants
that differ only in what the report labels them.

Tasks (:func:`curation_market.lab.variants.plan`) run on Dask workers (a local cluster, or the
scheduler given as ``--cluster``; in-process with one worker); the evaluation is
assembled from their plain results in config order, so the same config gives the same
numbers whatever the number of workers.
"""

from __future__ import annotations

import copy
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from curation.chaintime import chain_time
from curation.market import Applier, MarketConfig
from curation.records import Block
from curation.state import Account, Globals, State
from curation_market.lab.agents import (
    Agent,
    Ledger,
    Play,
    agent_accounts,
    final_payout,
    self_votes,
    simulate,
)
from curation_market.lab.config import EvalConfig, EvalSection
from curation_market.lab.demo import bundled_posts
from curation_market.lab.history import (
    Compiled,
    compile_history,
    load_snapshots,
    replay_history,
)
from curation_market.lab.stats import early_spearman, errors, spearman
from curation_market.lab.variants import (
    DEFAULT_KEY,
    HOUR,
    StreamKey,
    Task,
    Variant,
    parse_variant,
    plan,
)
from indexer.ops import Adapter
from indexer.postdump import NEVER, STEEM_17M, Anchor, Events, import_posts
from rewards.outcome import Outcome


# --- streams: real history + agents, as engine records ----------------------------------
@dataclass
class Stream:
    """One run's history as engine records, with what the agents did and every post's F
    (the skill column needs F of predictions that were never revealed)."""

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
    ledger = simulate(voted, agents, anchor, events, play, ev.settle_pending,
                      ev.include_replies, plans)
    raw = import_posts(voted, anchor, ev.settle_pending, extra=events)
    adapter = Adapter(mc.market_id, mc.limits, mc.chain)
    blocks = [adapter.block(b) for b in raw]
    # the bundled snapshots (the one account line refused is steemd's all-zero object for
    # an unknown name)
    accounts, globals_ = load_snapshots([], None)
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
    """One variant's plain numbers on one run (picklable: it crosses to the Dask client)."""

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
    # per run: settlement unit ("@author/permlink", or "epoch:<start>" for an epoch rule set)
    # → agent → net award; every settled unit is listed, paid or not (the bootstrap of
    # lab/stats.py resamples runs and units)
    units: list[dict[str, dict[str, int]]] = field(default_factory=list)


def replay(stream: Stream, mc: MarketConfig) -> State:
    """The stream through the pure engine; accounts are copied so replays never share state."""
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
             ) -> tuple[State, list[Outcome]]:
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
            awards = list(v.settle_staked(outcomes))
            amounts = [(a.predictor, a.amount) for a in awards]
            keyed = [(unit_key(a.author, a.permlink, a.epoch), a.predictor, a.amount)
                     for a in awards]
        except AssertionError:
            raise  # a split that does not conserve its pool is a bug, never a footnote
        except Exception as exc:  # noqa: BLE001 - one broken rule set must not sink the rest
            return RunResult(v.label, True, {}, 0, 0, pools, len(outcomes), early, rejections,
                             f"settle() failed: {type(exc).__name__}: {exc}"[:120])
    else:
        amounts = [(c.predictor, c.result.reward) for c in state.commits.values()
                   if c is not None and c.result is not None and c.result.reward]
        names = {p.id: (p.author, p.permlink) for p in state.posts.values() if p is not None}
        keyed = [(unit_key(*names[pid], None), c.predictor, c.result.reward)
                 for (pid, _), c in state.commits.items()
                 if c is not None and c.result is not None and c.result.reward]
    for who, amount in amounts:
        rewards[who] = rewards.get(who, 0) + amount
    paid = sum(x for _, x in amounts if x > 0)  # gross, award by award
    burned = -sum(x for _, x in amounts if x < 0)
    units: dict[str, dict[str, int]] = {k: {} for k in settlement_units(v, outcomes)}
    for key, who, amount in keyed:
        row = units.setdefault(key, {})
        row[who] = row.get(who, 0) + amount
    return RunResult(v.label, v.staked, rewards, paid, burned, pools, len(outcomes), early,
                     rejections, units=[dict(sorted(units.items()))])


def unit_key(author: str, permlink: str, epoch: int | None) -> str:
    return f"epoch:{epoch}" if epoch is not None else f"@{author}/{permlink}"


def settlement_units(v: Variant, outcomes: Sequence[Outcome]) -> list[str]:
    """Every unit the variant settles: its markets, or the epochs of an epoch rule set."""
    from rewards.outcome import by_epoch
    from rewards.staked import STAKED_RULES

    rule = STAKED_RULES.get(v.base) if v.staked else None
    if rule is not None and rule.per == "epoch":
        return [unit_key("", "", start)
                for start, _ in by_epoch(outcomes, rule.params.epoch_seconds)]
    return [unit_key(o.author, o.permlink, None) for o in outcomes]


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
    peak_posts: int = 0  # history replays: the most posts alive in one engine state


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
    return GroupResult(results, errors(stream.ledger, stream.finals),
                       dict(Counter(c[0] for c in stream.ledger.commits)),
                       dict(reveals), len(outcomes), len(stream.ledger.votes))


# --- the whole comparison ---------------------------------------------------------------
@dataclass
class Evaluation:
    """The pooled comparison: what the report is rendered from, and nothing that depends on
    how the work was spread (so the report does not either)."""

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
    source: str = ""  # a history's description ("" for the bundled slice)
    peak_posts: int = 0  # history replays: the most posts alive in one engine state at once


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
                     dict(sorted(rejections.items())), next((p.note for p in parts if p.note), ""),
                     [u for p in parts for u in p.units])


@dataclass(frozen=True)
class HistorySpec:
    """``evaluate --history``: the inputs, where their decoded form is cached, the chain they
    come from and the account and globals snapshots (plain strings: it crosses to workers)."""

    paths: tuple[str, ...]
    cache: str
    chain: str
    accounts: tuple[str, ...] = ()
    globals: str | None = None

    def compiled(self, cfg: EvalConfig) -> Compiled:
        mc = MarketConfig()
        return compile_history(self.paths, self.cache, self.chain, mc.market_id,
                               cfg.evaluate.settle_pending)


def run_history_group(spec: HistorySpec, cfg_json: str, run: int, key: StreamKey,
                      texts: Sequence[str]) -> GroupResult:
    """Worker entry for a history: one streaming pass of run ``run`` plays every market
    config of the group at once (the decoded history is read from the cache, compiled here
    only when this worker cannot see the driver's)."""
    cfg = EvalConfig.model_validate_json(cfg_json)
    inc = cfg.evaluate.include_replies
    variants = [parse_variant(t) for t in texts]
    seed_mc = parse_variant("seed").market_config(inc)
    configs = list(dict.fromkeys([*(v.market_config(inc) for v in variants),
                                  *([seed_mc] if key == DEFAULT_KEY else [])]))
    judged = [v.market_config(inc) for v in variants if v.staked]
    done = replay_history(spec.compiled(cfg), cfg, run, *key, configs, judged, spec.accounts,
                          spec.globals)
    agents = cfg.agents.population().agents()
    results = []
    for v in variants:
        h = done.harvests[v.market_config(inc)]
        rejections = dict(sorted(h.rejections.items()))
        early = spearman([x for x, _ in h.early], [y for _, y in h.early])
        rewards = dict.fromkeys((a.name for a in agents), 0)
        paid, burned, note = h.paid, h.burned, ""
        if v.staked:
            try:
                awards = list(v.settle_staked(h.outcomes))
                amounts = [(a.predictor, a.amount) for a in awards]
                units: dict[str, dict[str, int]] = {k: {} for k in
                                                    settlement_units(v, h.outcomes)}
                for a in awards:
                    row = units.setdefault(unit_key(a.author, a.permlink, a.epoch), {})
                    row[a.predictor] = row.get(a.predictor, 0) + a.amount
            except AssertionError:
                raise
            except Exception as exc:  # noqa: BLE001 - one broken rule set must not sink the rest
                results.append(RunResult(v.label, True, {}, 0, 0, h.pools, h.markets, early,
                                         rejections, f"settle() failed: {type(exc).__name__}: "
                                         f"{exc}"[:120]))
                continue
            paid = sum(x for _, x in amounts if x > 0)
            burned = -sum(x for _, x in amounts if x < 0)
        else:
            amounts = sorted(h.rewards.items())
            units = h.units
        for who, amount in amounts:
            rewards[who] = rewards.get(who, 0) + amount
        results.append(RunResult(v.label, v.staked, rewards, paid, burned, h.pools, h.markets,
                                 early, rejections, note, units=[dict(sorted(units.items()))]))
    if key != DEFAULT_KEY:
        return GroupResult(results, peak_posts=done.peak_posts)
    base = done.harvests[seed_mc]
    return GroupResult(results, done.errors, done.commits, dict(base.reveals), base.markets,
                       done.self_votes, peak_posts=done.peak_posts)


def _execute(tasks: Sequence[Task], call: Callable[..., GroupResult],
             args: Callable[[Task], tuple], n: int, cluster: str | None,
             progress: Callable[[str, int], None] | None
             ) -> dict[tuple[int, StreamKey], GroupResult]:
    """Every task, in this process (one worker, no cluster) or on a Dask cluster: a local one
    of ``n`` worker processes, or the scheduler at ``cluster``. Results are keyed by task, so
    the order they finish in never reaches the report."""
    done: dict[tuple[int, StreamKey], GroupResult] = {}

    def told(t: Task) -> None:
        if progress:
            progress(f"run {t.run + 1}: {', '.join(t.variants) or 'agents'}", len(t.variants))

    if n <= 1 and cluster is None:
        for t in tasks:
            done[(t.run, t.key)] = call(*args(t))
            told(t)
        return done
    import logging

    from dask.distributed import Client, LocalCluster, as_completed

    local = None
    if cluster is None:
        local = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                             dashboard_address=None, silence_logs=logging.ERROR)
    client = Client(local if local is not None else cluster)
    try:
        futures = {client.submit(call, *args(t), pure=False): t for t in tasks}
        for fut in as_completed(futures):
            t = futures[fut]
            done[(t.run, t.key)] = fut.result()
            told(t)
    finally:
        client.close()
        if local is not None:
            local.close()
    return done


def evaluate(cfg: EvalConfig, workers: int | None = None,
             progress: Callable[[str, int], None] | None = None,
             history: HistorySpec | None = None, cluster: str | None = None) -> Evaluation:
    """Every variant × every run, on Dask workers (or in-process with one worker); results in
    config order. With ``history``, the replay is of that history instead of the bundled
    slice (:mod:`curation_market.lab.history`)."""
    cfg_json = cfg.model_dump_json()
    texts = list(dict.fromkeys(cfg.evaluate.variants))
    tasks = plan(texts, cfg.evaluate.runs)
    n = workers if workers is not None else (cfg.evaluate.workers or os.cpu_count() or 1)
    compiled = history.compiled(cfg) if history is not None else None  # parse once, here
    if history is None:
        done = _execute(tasks, run_group, lambda t: (cfg_json, t.run, t.key, t.variants), n,
                        cluster, progress)
    else:
        done = _execute(tasks, run_history_group,
                        lambda t: (history, cfg_json, t.run, t.key, t.variants), n, cluster,
                        progress)
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
    source = ""
    if compiled is None:
        posts = select_posts(bundled_posts(), cfg.evaluate)
        n_posts, n_votes = len(posts), sum(len(p.get("active_votes") or []) for p in posts)
    else:
        n_posts, n_votes = compiled.posts, compiled.votes
        source = (f"History: {compiled.blocks:,} blocks of {compiled.chain} "
                  f"({compiled.first_block:,}–{compiled.last_block:,}), {compiled.ops:,} ops; "
                  f"the findings rest on {compiled.paid:,} real payouts (posts created and "
                  f"paid inside it).")
    return Evaluation(cfg, [merge(by_label[t]) for t in texts], agents,
                      {k: -sum(e) / len(e) for k, e in sorted(errs.items())}, dict(commits),
                      dict(reveals), sum(b.markets for b in bases), n_posts, n_votes,
                      sum(b.self_votes for b in bases), source,
                      max((g.peak_posts for g in done.values()), default=0))
