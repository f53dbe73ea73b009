"""Evaluating the rule sets on any history (``evaluate --history``): parse once, stream, replay.

Why this shape (issue 15): the bundled slice is 249 posts, a month of a live chain is tens of
thousands of posts and millions of ops. Three things change against the bundled path
(:mod:`curation_market.lab.runner`), which stays as it was for the default report:

- **Parse once.** The history (block files in either encoding, a ``fetch`` archive, or post
  dumps) is decoded once into engine records (:class:`curation.records.Block`, msgspec
  structs) and written to a cache directory as pickled frames of blocks, with a second file of
  per-post facts (:class:`~curation_market.lab.agents.PostFacts`: created, vote curve, F) in
  creation order. Every variant × run reads these files instead of decoding JSON again; the
  cache is keyed by the inputs' paths, sizes and mtimes, so a second ``evaluate`` reuses it.
- **Streaming.** A run reads the record frames in order and applies each block to one engine
  state per market config of its group; the simulated curators decide market by market, just
  ahead of the replay, and their ops wait in a heap until their block. A market that settles
  leaves the state (its post, votes and commits) once its result is taken; a post that never
  pays leaves 30 days after creation. The agents' view of the chain is a rolling one
  (:class:`RollingView`: the last ``RECENT`` payouts and each author's last ``PER_AUTHOR``),
  so memory follows the posts alive at once, not the length of the history. What does grow:
  the authors seen (a dict of small deques) and, for groups with staked rule sets (which settle
  over every market at the end), the Outcome rows those rule sets judge.
- **Real posts, real F.** Agents predict the history's own posts: skilled kinds from its real
  F (through their noise), the others from votes so far and payouts before their commit time.
  Their commits and reveals are real ``custom_json`` ops decoded by the same
  :class:`indexer.ops.Adapter`, merged into the block at their chain time.
"""

from __future__ import annotations

import bisect
import copy
import hashlib
import heapq
import math
import os
import pickle
import statistics
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from curation.chaintime import HF17_TIME, chain_time, format_time
from curation.market import Applier, MarketConfig
from curation.records import (
    VOP_TRX,
    Block,
    Comment,
    CommentOptions,
    EffectiveVote,
    Payout,
    PostVotes,
    Vote,
)
from curation.state import Account, Globals, State
from curation_market.lab.agents import (
    HOUR,
    KINDS,
    MINUTE,
    PRIOR_GROWTH,
    PRIOR_PAYOUT,
    PRIOR_PRICE,
    Agent,
    Ledger,
    Memory,
    Play,
    PostFacts,
    Turn,
    _draws,
    _publish,
    _ring_noise,
    agent_accounts,
    rng_for,
)
from curation_market.lab.config import EvalConfig
from indexer.accounts import read_accounts, read_globals
from indexer.blockfile import BadLine, open_text, read_blocks
from indexer.ops import Adapter
from indexer.postdump import NEVER, STEEM_17M, Anchor, Events, import_posts
from indexer.readmodel import OutcomeMarket, outcome_table
from rewards.outcome import Outcome

CACHE_VERSION = "history-cache/2"
FRAME_BLOCKS = 2000  # blocks per pickled frame: large enough to amortise, small to stream
RECENT = 2000  # payouts the rolling view keeps for the price and growth medians
PER_AUTHOR = 20  # payouts kept per author for the history estimate
GROWTH_STEP = 5 * MINUTE  # the growth curve's resolution in the rolling view
GROWTH_STEPS = 8 * HOUR // GROWTH_STEP  # ages up to 8 h (the window and reveal period)
ZOMBIE_AGE = 30 * 24 * HOUR  # an unpaid post leaves the replay state this long after creation
# ... unless the history itself paid posts later than that: before HF17 the second payout came
# 30 days after the first (steemd STEEMIT_SECOND_CASHOUT_WINDOW), and before HF12 votes could
# push a cashout further (Hive's first 5 M blocks pay up to 147 days after creation). Such a
# history's own longest created→paid span (Compiled.max_delay, plus a day) is the age instead.
SWEEP_BLOCKS = 2000  # blocks between sweeps of the votes of posts that left the state
AGENT_TRX = 1_000_000  # agents' transactions sit after the block's own (positions stay unique)


# --- inputs -----------------------------------------------------------------------------
def history_files(paths: Sequence[str | Path]) -> list[Path]:
    """Files in replay order: a ``fetch`` archive's chunks (manifest order), a directory's
    ``*.jsonl``/``*.jsonl.gz`` files by name, or the files as given."""
    from curation_market.lab.fetch import MANIFEST, Archive

    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            if (p / MANIFEST).exists():
                archive = Archive.load(p / MANIFEST)
                if not archive.complete:
                    raise ValueError(f"{p}: the archive is incomplete (blocks up to "
                                     f"{archive.next_block - 1:,} of {archive.last:,}); run "
                                     "fetch again to finish it")
                out += archive.files(p)
            else:
                found = sorted(f for f in p.iterdir() if f.name.endswith((".jsonl", ".jsonl.gz")))
                if not found:
                    raise ValueError(f"{p}: no .jsonl or .jsonl.gz file")
                out += found
        elif p.exists():
            out.append(p)
        else:
            raise ValueError(f"{p}: no such file or directory")
    return out


def is_post_dump(path: Path) -> bool:
    """A post dump's lines are posts (author, permlink, active_votes); a block file's are
    blocks (transactions, timestamp)."""
    with open_text(path) as fh:
        for line in fh:
            if line.strip():
                try:
                    first = orjson.loads(line)
                except orjson.JSONDecodeError:
                    return False
                return isinstance(first, dict) and "permlink" in first \
                    and "transactions" not in first
    return False


def cache_key(files: Sequence[Path], chain: str, market_id: str, settle_pending: bool) -> str:
    h = hashlib.sha256(f"{CACHE_VERSION}|{chain}|{market_id}|{settle_pending}".encode())
    for f in files:
        st = f.stat()
        h.update(f"|{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


@dataclass
class Compiled:
    """A history decoded once: where its frames are and what it holds."""

    root: str  # the cache directory (a string: it crosses to workers)
    chain: str
    first_block: int
    first_time: int
    last_block: int
    last_time: int
    blocks: int = 0
    ops: int = 0
    records: int = 0
    posts: int = 0  # posts created inside the history
    votes: int = 0
    paid: int = 0  # posts created inside the history and paid inside it: the real outcomes
    bad_lines: int = 0
    refused_posts: int = 0
    files: list[str] = field(default_factory=list)
    max_delay: int = 0  # the longest created→paid span of a post paid inside the history (s)

    @property
    def zombie_age(self) -> int:
        """How long an unpaid post stays in a replay's state: never less than a payout the
        history itself made took."""
        return max(ZOMBIE_AGE, self.max_delay + 24 * HOUR)

    @property
    def records_path(self) -> Path:
        return Path(self.root) / "records.pkl"

    @property
    def facts_path(self) -> Path:
        return Path(self.root) / "facts.pkl"


def _frames(path: Path) -> Iterator[Any]:
    with open(path, "rb") as fh:
        while True:
            try:
                yield pickle.load(fh)
            except EOFError:
                return


def compile_history(paths: Sequence[str | Path], cache_root: str | Path, chain: str,
                    market_id: str = "curation_market", settle_pending: bool = True,
                    ) -> Compiled:
    """Decode the history once into the cache (or find it there)."""
    files = history_files(paths)
    key = cache_key(files, chain, market_id, settle_pending)
    root = Path(cache_root) / key
    meta_path = root / "meta.json"
    if meta_path.exists():
        return Compiled(**orjson.loads(meta_path.read_bytes()))
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    adapter = Adapter(market_id, chain=chain)
    facts = FactsBuilder()
    info: dict[str, int] = Counter()
    first: tuple[int, int] | None = None
    last = (0, 0)
    with open(tmp / "records.pkl", "wb") as rec_fh, open(tmp / "facts.pkl", "wb") as facts_fh:
        frame: list[Block] = []
        for item in _decoded(files, adapter, settle_pending, info):
            if isinstance(item, BadLine):
                info["bad_lines"] += 1
                continue
            if item.num <= last[0]:
                info["bad_lines"] += 1  # out of order or repeated: never replayed twice
                continue
            first = first or (item.num, item.time)
            last = (item.num, item.time)
            info["blocks"] += 1
            info["ops"] += item.n_ops
            info["records"] += len(item.records)
            frame.append(item)
            done = facts.block(item)
            if done:
                pickle.dump(done, facts_fh, protocol=pickle.HIGHEST_PROTOCOL)
            if len(frame) >= FRAME_BLOCKS:
                pickle.dump(frame, rec_fh, protocol=pickle.HIGHEST_PROTOCOL)
                frame = []
        if frame:
            pickle.dump(frame, rec_fh, protocol=pickle.HIGHEST_PROTOCOL)
        rest = facts.finish()
        if rest:
            pickle.dump(rest, facts_fh, protocol=pickle.HIGHEST_PROTOCOL)
    if facts.unordered:
        _sort_facts(tmp / "facts.pkl")
    if first is None:
        raise ValueError("the history holds no readable block")
    out = Compiled(str(root), chain, first[0], first[1], last[0], last[1], info["blocks"],
                   info["ops"], info["records"], facts.posts, facts.votes, facts.paid,
                   info["bad_lines"], info["refused"], [str(f) for f in files],
                   facts.max_delay)
    (tmp / "meta.json").write_bytes(orjson.dumps(out.__dict__))
    try:
        os.replace(tmp, root)
    except OSError:  # another process compiled it first: use theirs
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return Compiled(**{**out.__dict__, "root": str(root)})


def _sort_facts(path: Path) -> None:
    """Put the facts back in creation order when some post was paid later than the emission
    horizon (pre-HF17 payout rules): the agents decide each market at its creation, so a fact
    that came late would have them commit after the window. Only such histories pay for this
    pass (it holds every fact at once)."""
    every = sorted((f for frame in _frames(path) for f in frame),
                   key=lambda f: (f.created, f.author, f.permlink))
    with open(path, "wb") as fh:
        for i in range(0, len(every), FRAME_BLOCKS):
            pickle.dump(every[i:i + FRAME_BLOCKS], fh, protocol=pickle.HIGHEST_PROTOCOL)


def _decoded(files: Sequence[Path], adapter: Adapter, settle_pending: bool,
             info: Counter) -> Iterator[Block | BadLine]:
    for f in files:
        if is_post_dump(f):
            with open_text(f) as fh:
                posts = [orjson.loads(line) for line in fh if line.strip()]
            refused: list[str] = []
            raw = import_posts(posts, Anchor.of(*STEEM_17M), settle_pending, refused=refused)
            info["refused"] += len(refused)
            for b in raw:
                yield adapter.block(b)
            continue
        for item in read_blocks([f], adapter):
            if isinstance(item, dict):
                try:
                    item = adapter.block(item)
                except Exception as exc:  # noqa: BLE001 - a bad block is counted, not fatal
                    item = BadLine(str(f), 0, f"{type(exc).__name__}: {exc}"[:160])
            yield item


class FactsBuilder:
    """Per-post facts from the record stream: created at the post's first comment, every
    vote at its time (effective votes, or a Steem payout's final votes), F at its payout.
    Emitted in creation order (a heap holds paid posts until nothing created earlier can
    still be paid: 8 days, one more than the chains' cashout window). A post paid later than
    that (pre-HF17 rules) comes out of order: ``unordered`` says so, and the compile sorts the
    facts afterwards. Posts created before HF17 are never forgotten unpaid, for the same
    reason (their payouts came up to months later)."""

    HORIZON = 8 * 24 * HOUR

    def __init__(self) -> None:
        self.live: dict[tuple[str, str], list] = {}  # key → [created, is_reply, votes, declined]
        self.heap: list[tuple[int, str, str, PostFacts]] = []
        self.posts = self.votes = self.paid = 0
        self.max_delay = 0
        self.unordered = False
        self._last_out = -1

    def block(self, b: Block) -> list[PostFacts]:
        live = self.live
        paid: list[Payout] = []
        for r in b.records:
            t = type(r)
            if t is Comment:
                key = (r.author, r.permlink)
                if key not in live:
                    live[key] = [b.time, bool(r.parent_author), [], False]
                    self.posts += 1
            elif t is EffectiveVote:
                p = live.get((r.author, r.permlink))
                if p is not None:
                    p[2].append((b.time, r.voter, r.rshares))
                    self.votes += 1
            elif t is Vote:
                pass
            elif t is PostVotes:
                p = live.get((r.author, r.permlink))
                if p is not None:
                    p[2] = [(vt, v, rs) for vt, v, rs in r.votes if vt <= b.time]
                    self.votes += len(p[2])
            elif t is CommentOptions:
                p = live.get((r.author, r.permlink))
                if p is not None and r.max_accepted_payout == 0:
                    p[3] = True
            elif t is Payout:
                paid.append(r)
        for r in paid:  # after the block's records: a Steem payout's votes come after it
            p = live.pop((r.author, r.permlink), None)
            if p is not None:
                final = 0 if p[3] or r.amount is None else r.amount
                f = _facts(r.author, r.permlink, p, b.time, final)
                heapq.heappush(self.heap, (f.created, f.author, f.permlink, f))
                self.paid += 1
                self.max_delay = max(self.max_delay, b.time - f.created)
                if f.created < self._last_out:
                    self.unordered = True
        out = []
        while self.heap and self.heap[0][0] < b.time - self.HORIZON:
            out.append(heapq.heappop(self.heap)[3])
        if out:
            self._last_out = out[-1].created
        if len(live) > 1000 and b.num % 1000 == 0:  # forget posts too old to be paid
            for key in [k for k, p in live.items()
                        if HF17_TIME <= p[0] < b.time - ZOMBIE_AGE]:
                del live[key]
        return out

    def finish(self) -> list[PostFacts]:
        return [heapq.heappop(self.heap)[3] for _ in range(len(self.heap))]


def _facts(author: str, permlink: str, p: list, paid_at: int, final: int) -> PostFacts:
    """The net rshares curve counts a re-vote at its last value, as the chain does
    (the same rule as :func:`curation_market.lab.agents.post_facts`)."""
    times, curve, by_voter, net = [], [], {}, 0
    for t, voter, rshares in sorted(p[2]):
        net += rshares - by_voter.get(voter, 0)
        by_voter[voter] = rshares
        times.append(t)
        curve.append(net)
    return PostFacts(author, permlink, p[0], p[1], tuple(times), tuple(curve), paid_at, final)


def read_facts(c: Compiled) -> Iterator[PostFacts]:
    for frame in _frames(c.facts_path):
        yield from frame


def read_records(c: Compiled) -> Iterator[Block]:
    for frame in _frames(c.records_path):
        yield from frame


# --- the agents' rolling view -----------------------------------------------------------
class RollingView:
    """What the chain shows at time ``t``, kept bounded: the last :data:`RECENT` payouts (for
    the price per rshare and the growth curve) and each author's last :data:`PER_AUTHOR`.

    The medians are taken over payouts before the start of ``t``'s hour (cached per hour): an
    agent never sees a payout at or after its own decision time, and a market does not cost a
    pass over every earlier payout (which made the bundled view quadratic in the history).
    """

    def __init__(self) -> None:
        self.recent: deque[PostFacts] = deque(maxlen=RECENT)  # in payout order
        self.recent_times: deque[int] = deque(maxlen=RECENT)
        self.growth_rows: deque[tuple[float | None, ...]] = deque(maxlen=RECENT)
        self.by_author: dict[str, deque[tuple[int, int]]] = {}
        self._price: dict[int, float] = {}
        self._growth: dict[tuple[int, int], float] = {}
        self._median: dict[int, int | None] = {}

    def add(self, f: PostFacts) -> None:
        assert f.paid_at is not None and f.final is not None
        self.recent.append(f)
        self.recent_times.append(f.paid_at)
        final = f.net_final
        row = []
        for k in range(GROWTH_STEPS):
            early = f.net_at(f.created + k * GROWTH_STEP)
            row.append(final / early if early > 0 and final > 0 else None)
        self.growth_rows.append(tuple(row))
        self.by_author.setdefault(f.author, deque(maxlen=PER_AUTHOR)).append((f.paid_at,
                                                                              f.final))

    def _before(self, t: int) -> list[PostFacts]:
        return list(islice(self.recent, bisect.bisect_left(self.recent_times, t)))

    def history_estimate(self, author: str, t: int) -> int:
        own = [x for pt, x in self.by_author.get(author, ()) if pt < t and x]
        if own:
            return int(statistics.median(own))
        hour = t // HOUR
        if hour not in self._median:
            every = [f.final for f in self._before(hour * HOUR) if f.final]
            self._median[hour] = int(statistics.median(every)) if every else None
        m = self._median[hour]
        return PRIOR_PAYOUT if m is None else m

    def price(self, t: int) -> float:
        hour = t // HOUR
        if hour not in self._price:
            ratios = [f.final / f.net_final for f in self._before(hour * HOUR)
                      if f.final and f.net_final > 0]
            self._price[hour] = statistics.median(ratios) if ratios else PRIOR_PRICE
        return self._price[hour]

    def growth(self, age: int, t: int) -> float:
        """Median final/early net rshares, early taken at ``age`` rounded down to a
        :data:`GROWTH_STEP` (each payout's ratios are computed once, when it is added)."""
        key = (t // HOUR, min(GROWTH_STEPS - 1, max(0, age) // GROWTH_STEP))
        if key not in self._growth:
            n = bisect.bisect_left(self.recent_times, key[0] * HOUR)
            k = key[1]
            ratios = [x for row in islice(self.growth_rows, n) if (x := row[k]) is not None]
            self._growth[key] = statistics.median(ratios) if ratios else PRIOR_GROWTH
        return self._growth[key]

    def extrapolate(self, f: PostFacts, t: int) -> int:
        net = f.net_at(t)
        if net <= 0:
            return 0
        return int(net * self.growth(t - f.created, t) * self.price(t))

    def forget_before(self, hour: int) -> None:
        for cache in (self._price, self._median):
            for h in [h for h in cache if h < hour]:
                del cache[h]
        for k in [k for k in self._growth if k[0] < hour]:
            del self._growth[k]


# --- the agents, market by market -------------------------------------------------------
@dataclass
class Patch:
    """A self-vote's effect on the real records: its rshares, and F moved by ``gained``."""

    voter: str
    time: int
    rshares: int
    gained: int


class Driver:
    """The simulated curators over the history's markets, one market at a time, in creation
    order; their ops are queued by chain time for the replay to merge (:meth:`due`)."""

    def __init__(self, facts: Iterator[PostFacts], agents: Sequence[Agent], play: Play,
                 include_replies: bool):
        self.facts, self.agents, self.play = facts, list(agents), play
        self.include_replies = include_replies
        self.view = RollingView()
        self.pending_paid: list[tuple[int, str, str, PostFacts]] = []  # by paid_at
        self.ops: list[tuple[int, tuple, int, list]] = []  # (t, order, seq, ops)
        self.seq = 0
        self.draw = _draws(play)
        self.memory = Memory()
        self.ledger = Ledger()
        self.ring = _ring_noise(agents)
        self.voters = [a for a in agents if a.kind == "selfvoter"]
        self.patches: dict[tuple[str, str], list[Patch]] = {}
        self.errors: dict[str, list[float]] = {}
        self.commits: Counter[str] = Counter()
        self.self_votes = 0
        self.markets = 0
        self._plans: dict = {}
        self._next: PostFacts | None = None
        self._done = False

    def _peek(self) -> PostFacts | None:
        if self._next is None and not self._done:
            self._next = next(self.facts, None)
            self._done = self._next is None
        return self._next

    def until(self, t: int) -> None:
        """Decide every market created at or before ``t`` (their ops all come later)."""
        while (f := self._peek()) is not None and f.created <= t:
            self._next = None
            if f.paid_at is not None and (self.include_replies or not f.is_reply):
                f = self._market(f)  # with its self-votes: later views show the F they made
            heapq.heappush(self.pending_paid, (f.paid_at or 0, f.author, f.permlink, f))

    def _see_payouts(self, t: int) -> None:
        """Payouts before ``t`` become public (the rolling view bisects by time)."""
        while self.pending_paid and self.pending_paid[0][0] < t:
            self.view.add(heapq.heappop(self.pending_paid)[3])

    def _market(self, f: PostFacts) -> PostFacts:
        play, memory = self.play, self.memory
        # a decision may look up to the reveal period past creation: payouts up to then
        self._see_payouts(f.created + play.window + play.reveal_period)
        self.view.forget_before(f.created // HOUR - 2)
        f = self._self_votes(f)
        self.markets += 1
        ring_eps = self.draw("ring", f.author, f.permlink).gauss(*self.ring)
        events = Events.empty()
        anchor = Anchor(0, 0)  # block = seconds / 3: the ops are re-timed by chain time below
        plans = self._plans
        for a in self.agents:
            kind = KINDS[a.kind]
            rng = self.draw(a.name, f.author, f.permlink)
            if (kind.skips_unpaid and f.final == 0) or rng.random() > a.participation:
                continue
            act = kind.decide(a, f, Turn(self.view, play, rng, ring_eps, memory, plans))  # type: ignore[arg-type]
            if act is not None:
                _publish(a, f, act, play, anchor, events, memory, self.ledger)
        for txs in events.txs.values():
            for order, ops in txs:
                self.seq += 1
                heapq.heappush(self.ops, (order[0], order, self.seq, ops))
        for name, _, _, _, prediction in self.ledger.commits:
            self.commits[name] += 1
            if f.final:
                self.errors.setdefault(name, []).append(
                    abs(math.log(max(prediction, 1) / f.final)))
        self.ledger.commits.clear()
        memory.commitments.clear()  # only the demo's copier reads them
        for a in self.agents:  # the copier reads the latest reveals of an author: keep 8
            v = memory.revealed.get((a.name, f.author))
            if v is not None and len(v) > 8:
                del v[:-8]
        return f

    def _self_votes(self, f: PostFacts) -> PostFacts:
        """The self-voters' plans (as :func:`curation_market.lab.agents.self_votes`); a vote
        changes the post's F and curve, which every later view shows."""
        self._plans = {}
        patches = []
        for a in self.voters:
            rng = rng_for(self.play.seed, a.name, f.author, f.permlink)
            t_commit = f.created + rng.randint(2, 8) * MINUTE
            estimate = max(self.view.history_estimate(f.author, t_commit),
                           self.view.extrapolate(f, t_commit))
            prediction = int(estimate * 1.5)
            self._plans[(a.name, f.author, f.permlink)] = (prediction, t_commit, 0)
            assert f.paid_at is not None and f.final is not None
            t_vote = f.paid_at - 13 * HOUR
            pending, need = f.final, int(prediction / 0.95) - f.final
            if pending <= 0 or f.net_final <= 0 or not 0 < need <= a.sp * \
                    self.play.vote_value_per_sp or t_vote <= t_commit:
                continue
            rshares = int(need * f.net_final / pending)
            self._plans[(a.name, f.author, f.permlink)] = (prediction, t_commit, rshares)
            patches.append(Patch(a.name, t_vote, rshares, need))
        if not patches:
            return f
        self.patches[f.key] = patches
        self.self_votes += len(patches)
        for p in patches:
            self.seq += 1
            heapq.heappush(self.ops, (p.time, (p.time, 4, p.voter), self.seq, [["vote", {
                "voter": p.voter, "author": f.author, "permlink": f.permlink,
                "weight": 10000}]]))
        votes = sorted([*zip(f.vote_times, _deltas(f), strict=True),
                        *((p.time, p.rshares) for p in patches)])
        times, curve, net = [], [], 0
        for t, d in votes:
            net += d
            times.append(t)
            curve.append(net)
        assert f.final is not None
        return PostFacts(f.author, f.permlink, f.created, f.is_reply, tuple(times),
                         tuple(curve), f.paid_at, f.final + sum(p.gained for p in patches))

    def due(self, t: int) -> list[tuple[int, list]]:
        """Queued transactions at chain time ≤ ``t``, in (time, order)."""
        out = []
        while self.ops and self.ops[0][0] <= t:
            when, _, _, ops = heapq.heappop(self.ops)
            out.append((when, ops))
        return out


def _deltas(f: PostFacts) -> list[int]:
    prev, out = 0, []
    for x in f.net_curve:
        out.append(x - prev)
        prev = x
    return out


# --- one run's replay -------------------------------------------------------------------
@dataclass
class Harvest:
    """One market config's results, taken block by block as its markets settle."""

    mc: MarketConfig
    state: State
    keep_outcomes: bool
    rewards: Counter = field(default_factory=Counter)
    outcomes: list[Outcome] = field(default_factory=list)
    rejections: Counter = field(default_factory=Counter)
    pools: int = 0
    paid: int = 0  # Σ positive awards (gross)
    burned: int = 0
    markets: int = 0
    reveals: Counter = field(default_factory=Counter)
    early: list[tuple[float, float]] = field(default_factory=list)
    ids: dict[int, tuple[str, str]] = field(default_factory=dict)  # posts alive, by id
    created: deque = field(default_factory=deque)
    peak_posts: int = 0
    next_id: int = -1
    blocks: int = 0
    votes_kept: int = 1000
    zombie_age: int = ZOMBIE_AGE  # Compiled.zombie_age of the history replayed
    # settlement unit ("@author/permlink") → agent → net award, every settled market listed,
    # paid or not: what the bootstrap of lab/stats.py resamples (one small dict per market)
    units: dict[str, dict[str, int]] = field(default_factory=dict)


def _new_state(accounts: dict[str, Account], globals_: Globals) -> State:
    return State(globals=globals_, accounts={k: copy.copy(v) for k, v in accounts.items()})


def harvest_block(h: Harvest, now: int) -> None:
    """Take what settled in the block just applied, then let it leave the state.

    Runs after every block of every config, so it touches only what the block changed: new
    posts (the post counter moved), settlements, rejections; the votes of settled posts are
    swept every :data:`SWEEP_BLOCKS` blocks rather than indexed vote by vote.
    """
    s = h.state
    if s.meta.next_post_id != h.next_id:
        h.next_id = s.meta.next_post_id
        for key in s.dirty_posts:
            post = s.posts.get(key)
            if post is not None and post.id not in h.ids:
                h.ids[post.id] = key
                h.created.append((post.created, post.id))
    if s.settled:
        _take_settled(h)
    if s.rejections:
        for r in s.rejections:
            h.rejections[r.reason] += 1
        s.rejections.clear()
    while h.created and h.created[0][0] < now - h.zombie_age:
        _, pid = h.created.popleft()
        key = h.ids.get(pid)
        if key is not None:
            _evict(h, pid, key)
    if s.new_author_entries:
        aw = h.mc.rules.author_window
        for _, author, is_reply, _ in s.new_author_entries:
            entries = s.author_history.get((author, is_reply))
            if entries and entries[0].time < now - aw:
                s.author_history[(author, is_reply)] = [e for e in entries
                                                        if e.time >= now - aw]
        s.new_author_entries.clear()
    h.blocks += 1
    if h.blocks % SWEEP_BLOCKS == 0:
        sweep(h)
    for d in (s.dirty_posts, s.dirty_votes, s.dirty_commits, s.dirty_curators,
              s.dirty_accounts, s.dirty_delegations, s.dirty_returns):
        if d:
            d.clear()


def sweep(h: Harvest, force: bool = False) -> None:
    """Votes of posts that left the state go too (and the peak is measured here)."""
    s = h.state
    h.peak_posts = max(h.peak_posts, len(s.posts))
    live = h.ids
    if force or 4 * len(s.votes) > 5 * h.votes_kept:  # a quarter more than the live ones
        s.votes = {k: v for k, v in s.votes.items() if k[0] in live}
        h.votes_kept = len(s.votes)


def _take_settled(h: Harvest) -> None:
    s, window = h.state, h.mc.window
    for m in s.settled:
        key = h.ids[m.post_id]
        post = s.posts[key]
        assert post is not None
        commits = sorted((c for c in (s.commits.get((post.id, n))
                                      for n in s.commits_of_post.get(post.id, ()))
                          if c is not None and c.status == "settled"), key=lambda c: c.order)
        rows = outcome_table([OutcomeMarket(post.id, post.author, post.permlink, post.created,
                                            m.time, m.final_payout, m.pool)], commits)
        unit = h.units.setdefault(f"@{post.author}/{post.permlink}", {}) if rows else {}
        for c in commits:
            reward = c.result.reward if c.result is not None else 0
            if reward:
                h.rewards[c.predictor] += reward
                unit[c.predictor] = unit.get(c.predictor, 0) + reward
                if reward > 0:
                    h.paid += reward
                else:
                    h.burned -= reward
            if c.prediction is not None:
                h.reveals[c.predictor] += 1
        for o in rows:
            h.markets += 1
            h.pools += o.pool
            early = sorted(fc.prediction for fc in o.forecasts
                           if fc.commit_time - o.created <= window // 2)
            if early:
                h.early.append((early[len(early) // 2], o.final_payout))
            if h.keep_outcomes:
                h.outcomes.append(o)
        h.peak_posts = max(h.peak_posts, len(s.posts))
        _evict(h, post.id, key)
    s.settled.clear()


def _evict(h: Harvest, pid: int, key: tuple[str, str]) -> None:
    s = h.state
    s.posts.pop(key, None)
    h.ids.pop(pid, None)
    for n in s.commits_of_post.pop(pid, ()):
        s.commits.pop((pid, n), None)


@dataclass
class HistoryRun:
    """What one run over the history gives back, per market config, and its agents' figures."""

    harvests: dict[MarketConfig, Harvest]
    errors: dict[str, list[float]]
    commits: dict[str, int]
    self_votes: int
    markets_offered: int
    dropped_ops: int
    peak_posts: int


def load_snapshots(accounts: Sequence[str | Path], globals_path: str | Path | None
                   ) -> tuple[dict[str, Account], Globals]:
    from importlib import resources

    data = resources.files("curation_market") / "data"
    gpath = Path(str(globals_path)) if globals_path else Path(str(data / "steem17m_globals.json"))
    globals_ = Globals(*read_globals(gpath))
    table: dict[str, Account] = {}
    paths = [Path(str(p)) for p in accounts] if accounts else \
        ([Path(str(data / "steem17m_accounts.jsonl.gz"))] if globals_path is None else [])
    for a in read_accounts(paths, []):
        table[a.name] = a
    return table, globals_


def replay_history(c: Compiled, cfg: EvalConfig, run: int, window: int, reveal_period: int,
                   bid_meaning: str, configs: Sequence[MarketConfig],
                   staked: bool | Sequence[MarketConfig],
                   accounts: Sequence[str] = (), globals_path: str | None = None) -> HistoryRun:
    """One run (seed + run) over the compiled history, every market config in one pass."""
    ev = cfg.evaluate
    agents = cfg.agents.population().agents()
    mc0 = MarketConfig()
    play = Play(mc0.chain_id, mc0.market_id, window, reveal_period, ev.seed + run,
                ev.stake_per_sp, ev.vote_value_per_sp, bid_meaning)
    table, globals_ = load_snapshots(accounts, globals_path)
    for a in agent_accounts(agents, globals_):
        table[a.name] = a
    # Outcome rows are kept only for the replays staked rule sets judge (they settle over every
    # market at the end): True keeps them for every config
    judged = set(configs) if staked is True else set(staked or ())
    harvests = {mc: Harvest(mc, _new_state(table, globals_), mc in judged,
                            zombie_age=c.zombie_age) for mc in configs}
    appliers = [(Applier(h.state, mc), h) for mc, h in harvests.items()]
    driver = Driver(read_facts(c), agents, play, ev.include_replies)
    adapter = Adapter(mc0.market_id, mc0.limits, c.chain)
    dropped = 0
    prev: Block | None = None
    for block in read_records(c):
        driver.until(block.time)
        for extra in _agent_blocks(driver, adapter, prev, block):
            for applier, h in appliers:
                applier.apply(extra)
                harvest_block(h, extra.time)
        merged = _merge(block, driver, adapter)
        for applier, h in appliers:
            applier.apply(merged)
            harvest_block(h, block.time)
        prev = block
    for h in harvests.values():
        sweep(h, force=True)
    dropped = len(driver.ops)
    return HistoryRun(harvests, driver.errors, dict(driver.commits), driver.self_votes,
                      driver.markets, dropped, max(h.peak_posts for h in harvests.values()))


def _agent_blocks(driver: Driver, adapter: Adapter, prev: Block | None,
                  block: Block) -> Iterator[Block]:
    """Agent ops due before ``block`` in a gap of the history get blocks of their own, at
    the block numbers their chain times fall on (never at or past ``block``)."""
    if prev is None or block.num - prev.num <= 1 or not driver.ops:
        return
    while driver.ops and driver.ops[0][0] < block.time:
        t = driver.ops[0][0]
        num = min(block.num - 1, prev.num + max(1, (t - prev.time) // 3))
        if num <= prev.num:
            return
        when = min(block.time - 1, prev.time + (num - prev.num) * 3)
        due = driver.due(max(t, when))
        yield _agent_block(num, when, due, adapter, driver, Block(num, when))
        prev = Block(num, when)


def _merge(block: Block, driver: Driver, adapter: Adapter) -> Block:
    due = driver.due(block.time)
    patches = driver.patches
    records = block.records
    if patches:
        records = [_patched(r, patches) if type(r) in (Payout, PostVotes) else r
                   for r in records]
        for r in records:  # the post is paid: its self-votes are in its F now
            if type(r) is Payout:
                patches.pop((r.author, r.permlink), None)
    if not due:
        return block if records is block.records else Block(
            block.num, block.time, block.block_id, block.previous, records, block.n_ops)
    return _agent_block(block.num, block.time, due, adapter, driver,
                        Block(block.num, block.time, block.block_id, block.previous, records,
                              block.n_ops))


def _agent_block(num: int, when: int, due: list[tuple[int, list]], adapter: Adapter,
                 driver: Driver, into: Block) -> Block:
    """The agents' transactions through the real adapter, placed after the block's own."""
    raw = {"block_num": num, "timestamp": format_time(when),
           "transactions": [{"operations": ops} for _, ops in due], "virtual_ops": []}
    for _, ops in due:
        for name, value in ops:
            if name == "vote":
                patch = next(p for p in driver.patches[(value["author"], value["permlink"])]
                             if p.voter == value["voter"])
                raw["virtual_ops"].append(["effective_comment_vote", {
                    "voter": patch.voter, "author": value["author"],
                    "permlink": value["permlink"], "rshares": patch.rshares}])
    extra = adapter.block(raw)
    own_tx = [r for r in into.records if r.pos[1] != VOP_TRX]
    own_vop = [r for r in into.records if r.pos[1] == VOP_TRX]
    agent_tx, agent_vop = [], []
    for r in extra.records:
        b, trx, op = r.pos
        if trx == VOP_TRX:
            agent_vop.append(_moved(r, (num, VOP_TRX, AGENT_TRX + op)))
        else:
            agent_tx.append(_moved(r, (num, AGENT_TRX + trx, op)))
    return Block(num, when, into.block_id, into.previous,
                 own_tx + agent_tx + own_vop + agent_vop, into.n_ops + extra.n_ops)


def _moved(r: Any, pos: tuple[int, int, int]) -> Any:
    import msgspec

    return msgspec.structs.replace(r, pos=pos)


def _patched(r: Any, patches: dict[tuple[str, str], list[Patch]]) -> Any:
    import msgspec

    ps = patches.get((r.author, r.permlink))
    if not ps:
        return r
    if type(r) is Payout:
        if r.amount is None:
            return r
        return msgspec.structs.replace(r, amount=r.amount + sum(p.gained for p in ps))
    return msgspec.structs.replace(r, votes=(*r.votes, *((p.time, p.voter, p.rshares)
                                                         for p in ps)))


def resample_posts(posts: Sequence[dict], n: int, seed: int, start: int, spacing: int,
                   scale: float = 1.0) -> list[dict]:
    """``n`` real paid posts drawn with replacement, each re-timed to start ``spacing`` s after
    the one before (votes and payout keep their offsets from creation, times ``scale``) under
    a permlink of its own: real vote curves and payouts at any size, for tests and the
    benchmark. ``scale`` < 1 compresses the 7-day cashout (tests) and is then not a real
    chain's timing."""
    import random

    paid = [p for p in posts if (p.get("last_payout") or NEVER) > NEVER]
    rng = random.Random(seed)
    out = []
    for i in range(n):
        p = rng.choice(paid)
        created = chain_time(p["created"])
        new = start + i * spacing

        def at(t: str, created: int = created, new: int = new) -> str:
            return format_time(new + int((chain_time(t) - created) * scale))

        q = {**p, "permlink": f"{p['permlink'][:200]}-r{i}", "created": at(p["created"]),
             "last_payout": at(p["last_payout"]),
             "active_votes": [{**v, "time": at(v["time"])} for v in p.get("active_votes") or []
                              if v.get("time")]}
        out.append(q)
    return out
