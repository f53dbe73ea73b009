"""Simulated curators over real history: the one model used by the demo, the evaluation and the
dev node's demo chain.

An agent is an account with Steem Power (:func:`agent_accounts` gives it vesting at the
snapshot's VESTS→SP ratio) and a *kind*: how it picks a commit time, a prediction and whether
and when to reveal. :func:`simulate` runs every agent over every market and publishes what they
do as real ``custom_json`` commit and reveal ops (``curator/ops.py``), merged into the imported
blocks, so a simulated curator goes through exactly the path a live one does. Agents only
predict posts whose payout the importer will emit (:func:`final_payout`, the same
``payout_of`` the importer uses): without an outcome there is nothing to learn.

**What an agent may read** when it acts at chain time ``t`` (:class:`ChainView`): the post
(author, created) and its votes cast up to ``t``; payouts realised before ``t`` (every earlier
post's F, its final rshares and its vote curve); reveals published before ``t``. Only the kinds
in :data:`SKILL_AWARE` touch F of the post they predict, and only through their noise model:
``F·exp(ε)`` with ``ε ~ N(bias, σ)``, so σ *is* their skill. It stands for private knowledge
(reading the post, knowing the audience) that the chain does not show. Every other kind's
commit is a function of chain data before its commit time; ``tests/test_evaluate.py`` checks
this by perturbing F and comparing commit payloads.

**The evaluation's kinds** (:class:`Population`, ``ev-…`` accounts):

- ``skilled``: early predictors of several skill levels, commit 1 min … window/3 after the post.
- ``late``: extrapolates the post's rshares curve at 80–97 % of the window: net rshares so
  far × the median growth (final/at-this-age) of posts paid before × the median price per
  rshare of posts paid before (priors when nothing has paid yet).
- ``copier``: cannot copy a commitment (it is bound to the committer and hidden until the
  window closes), so it copies what *is* public: the source agent's most recent revealed
  prediction on an earlier post of the same author, committed 1–3 min after the post.
- ``sybil``: a ring of accounts splitting one SP budget; they spray predictions across
  ±40 % around one rough guess (the ring's own information: a skilled draw of σ 0.5) so that
  one member lands in the band. ``twin`` is the control: one honest account with the ring's
  total SP and the ring's information quality (its own draw of σ 0.5): same SP, same skill,
  no spraying. (Sharing the ring's exact guess would make it a copy of the central member,
  which the prose closeness rule zeroes.)
- ``selfvoter``: commits 1.5× its history estimate, then 13 h before payout (votes in the
  last 12 h are locked) reads the pending payout and, if its own vote can reach, votes just
  enough rshares to land F inside its band (F = P/0.95). Its vote is a real ``vote`` plus
  ``effective_comment_vote`` and raises F by its rshares × the post's price per rshare
  (linear reward curve, HF19). Its vote value is SP × ``vote_value_per_sp``.
- ``selective``: commits a rough estimate (author history) on every market, then late in
  the reveal period reveals only the commitments that the votes so far make look good
  (within a factor e^0.5 of the payout the votes extrapolate to); others stay hidden. On
  this slice the extrapolation runs about 30 % high 6 h in (the price per rshare learned
  from September–October payouts drifted), so a tighter test would reveal almost nothing.
- ``whale``: predicts every market from the author's history (median of the author's paid
  posts; else the median of all paid posts; else a prior), 1–2 min after the post, big SP.

**The demo's kinds** (:func:`demo_population`, ``sim-…`` accounts) are the first, simpler
showcase of the mechanism, kept exactly as they were so that the demo chain, its report and
the docs' examples drawn from it do not move: they all see F through their noise and skip
posts that paid nothing; they draw from one sequential generator (``Play.draws``); each
forgets 5 % of its reveals.

- ``demo-early``: three skill levels, commit 1–10 min after the post.
- ``demo-late``: sharper (it has seen the first votes), commits at 22–29 min.
- ``demo-copier``: re-publishes an early curator's commitment as is. Commit–reveal makes it
  useless: the copier cannot open a hash bound to someone else (``hash_mismatch``).
- ``demo-sybil``: a ring of small accounts spraying ±40 % around one rough guess.

**Stake and bid.** Staked rule sets need ``stake`` and ``bid`` in the reveal (both bound by
the commitment, so fixed at commit time, before any votes are seen): every agent stakes
``SP × stake_per_sp`` per prediction and bids its own confidence. ``bid_meaning`` says what
the bid is: ``confidence`` (probability of landing in the band, numerai-2018) or
``accuracy`` (the benchmark accuracy score it expects, numerai-2019). Agents know the rules
they play under, so the evaluator builds one stream per bid meaning. The demo stakes nothing
(``stake_per_sp=None``): its payloads carry neither field.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from curation.chaintime import chain_time, format_time
from curation.payload import parse_milli
from curation.state import Account, Globals
from curation_market.curator.ops import commit_payload, custom_json_op, reveal_payload
from indexer.amounts import DOLLAR, amount_of
from indexer.postdump import NEVER, Anchor, Events, Payout, payout_of, sbd

MINUTE = 60
HOUR = 3600
PRIOR_PRICE = 1e-9  # milli-units per rshare when no payout is visible yet (about 2017-11)
PRIOR_GROWTH = 8.0  # final / early rshares when no payout history is visible yet
PRIOR_PAYOUT = 1000  # milli-units: a post's payout guessed with no history at all
RING = frozenset({"sybil", "twin", "demo-sybil"})  # kinds that share the ring's information


# --- the agents -------------------------------------------------------------------------
@dataclass(frozen=True)
class Agent:
    name: str
    kind: str  # a key of KINDS
    sp: int  # milli-units of Steem Power
    sigma: float = 0.1  # log-noise of its view of the final payout
    bias: float = -0.05  # aim a little below F: the band is 90–100 %
    participation: float = 0.8
    spray: float = 0.0  # sybil: offset of this ring member from the ring's guess
    copies: str = ""  # copier: whose commitment (demo) or reveals (evaluation) it copies


@dataclass(frozen=True)
class Population:
    """The evaluation's population; SP in milli-units (``lab/config.py`` converts from SP)."""

    skilled_sigmas: tuple[float, ...] = (0.03, 0.1, 0.3)
    skilled_sp: int = 15_000_000
    late: int = 1
    late_sp: int = 15_000_000
    copiers: int = 1
    copier_sp: int = 15_000_000
    ring_size: int = 9
    ring_total_sp: int = 22_500_000
    ring_sigma: float = 0.5
    selfvoters: int = 1
    selfvoter_sp: int = 15_000_000
    selective: int = 1
    selective_sp: int = 15_000_000
    whales: int = 1
    whale_sp: int = 200_000_000

    def agents(self) -> list[Agent]:
        out = [Agent(f"ev-skilled{i}", "skilled", self.skilled_sp, sigma=s, participation=0.8)
               for i, s in enumerate(self.skilled_sigmas)]
        out += [Agent(f"ev-late{i}", "late", self.late_sp, participation=0.9)
                for i in range(self.late)]
        out += [Agent(f"ev-copier{i}", "copier", self.copier_sp, copies="ev-skilled0")
                for i in range(self.copiers)]
        share = self.ring_total_sp // max(1, self.ring_size)
        n = self.ring_size
        out += [Agent(f"ev-sybil{i}", "sybil", share, sigma=self.ring_sigma, participation=1.0,
                      spray=(-0.4 + 0.8 * i / (n - 1)) if n > 1 else 0.0) for i in range(n)]
        if n:
            out.append(Agent("ev-twin", "twin", share * n, sigma=self.ring_sigma,
                             participation=1.0))
        out += [Agent(f"ev-selfvoter{i}", "selfvoter", self.selfvoter_sp, participation=1.0)
                for i in range(self.selfvoters)]
        out += [Agent(f"ev-selective{i}", "selective", self.selective_sp, participation=1.0)
                for i in range(self.selective)]
        out += [Agent(f"ev-whale{i}", "whale", self.whale_sp, participation=1.0)
                for i in range(self.whales)]
        return out


def demo_population() -> list[Agent]:
    """The demo's curators (the README's "The demo's simulated curators")."""
    agents = [
        Agent("sim-oracle", "demo-early", 40_000_000, sigma=0.04),
        Agent("sim-analyst", "demo-early", 15_000_000, sigma=0.10),
        Agent("sim-hopeful", "demo-early", 8_000_000, sigma=0.30),
        Agent("sim-latecomer", "demo-late", 20_000_000, sigma=0.03),
        Agent("sim-copycat", "demo-copier", 20_000_000, copies="sim-oracle"),
    ]
    # the ring's guess is unbiased (bias 0): the spray, not the aim, is what it plays on
    agents += [Agent(f"sim-sybil{i}", "demo-sybil", 2_500_000, sigma=0.5, bias=0.0,
                     participation=1.0, spray=-0.4 + 0.1 * i) for i in range(9)]
    return agents


def agent_type(agent: Agent) -> str:
    """The group an agent is reported under (skill levels apart)."""
    return f"skilled σ={agent.sigma:g}" if agent.kind == "skilled" else agent.kind


def agent_accounts(agents: Iterable[Agent], globals_: Globals) -> list[Account]:
    """Vesting that gives each agent its SP at the snapshot's VESTS→SP ratio (rounded up, so no
    agent falls a micro-VEST short of its SP)."""
    out = []
    for a in agents:
        vests = -(-a.sp * globals_.total_vesting_shares // globals_.total_vesting_fund)
        out.append(Account(a.name, vesting_shares=vests))
    return out


# --- what the chain shows ---------------------------------------------------------------
@dataclass(frozen=True)
class PostFacts:
    """One post as the chain shows it over time: its vote curve and, once paid, its F."""

    author: str
    permlink: str
    created: int
    is_reply: bool
    vote_times: tuple[int, ...]  # sorted
    net_curve: tuple[int, ...]  # net rshares after each vote (last voter's value counts)
    paid_at: int | None  # chain time of payout (cashout for pending posts when settled)
    final: int | None  # F, milli-units

    @property
    def key(self) -> tuple[str, str]:
        return self.author, self.permlink

    def net_at(self, t: int) -> int:
        i = bisect.bisect_right(self.vote_times, t)
        return self.net_curve[i - 1] if i else 0

    @property
    def net_final(self) -> int:
        return self.net_curve[-1] if self.net_curve else 0


def final_payout(post: dict, settle_pending: bool) -> tuple[int, int] | None:
    """(paid_at, F) as the importer will emit them, or None (no outcome in the slice)."""
    paid = payout_of(post, settle_pending)
    return (paid.time, paid.final) if isinstance(paid, Payout) else None


def post_facts(post: dict, settle_pending: bool) -> PostFacts:
    """The net rshares curve counts a re-vote at its last value, as the chain does."""
    votes = sorted((chain_time(v["time"]), v["voter"], int(v["rshares"]))
                   for v in post.get("active_votes") or [] if v.get("time"))
    times, curve, by_voter, net = [], [], {}, 0
    for t, voter, rshares in votes:
        net += rshares - by_voter.get(voter, 0)
        by_voter[voter] = rshares
        times.append(t)
        curve.append(net)
    paid = final_payout(post, settle_pending)
    return PostFacts(post["author"], post["permlink"], chain_time(post["created"]),
                     bool(post.get("parent_author")), tuple(times), tuple(curve),
                     None if paid is None else paid[0], None if paid is None else paid[1])


class ChainView:
    """Public chain data, queried as of a chain time."""

    def __init__(self, facts: Iterable[PostFacts]):
        self.facts = {f.key: f for f in facts}
        self.paid = sorted((f for f in self.facts.values() if f.paid_at is not None),
                           key=lambda f: (f.paid_at, f.author, f.permlink))
        self.paid_times = [f.paid_at for f in self.paid]

    def paid_before(self, t: int) -> list[PostFacts]:
        return self.paid[:bisect.bisect_left(self.paid_times, t)]

    def author_payouts(self, author: str, t: int) -> list[int]:
        return [f.final for f in self.paid_before(t) if f.author == author and f.final]

    def history_estimate(self, author: str, t: int) -> int:
        """Median payout of the author's paid posts, else of all paid posts, else a prior
        (zero payouts, mostly declined ones, are left out: they say nothing about demand)."""
        own = self.author_payouts(author, t)
        if own:
            return int(statistics.median(own))
        every = [f.final for f in self.paid_before(t) if f.final]
        return int(statistics.median(every)) if every else PRIOR_PAYOUT

    def price(self, t: int) -> float:
        """Median milli-units per net rshare over posts paid before ``t``."""
        ratios = [f.final / f.net_final for f in self.paid_before(t)
                  if f.final and f.net_final > 0]
        return statistics.median(ratios) if ratios else PRIOR_PRICE

    def growth(self, age: int, t: int) -> float:
        """Median final/at-``age`` net rshares over posts paid before ``t``."""
        ratios = []
        for f in self.paid_before(t):
            early = f.net_at(f.created + age)
            if early > 0 and f.net_final > 0:
                ratios.append(f.net_final / early)
        return statistics.median(ratios) if ratios else PRIOR_GROWTH

    def extrapolate(self, f: PostFacts, t: int) -> int:
        """The payout the votes so far point to, with growth and price learned before ``t``."""
        net = f.net_at(t)
        if net <= 0:
            return 0
        return int(net * self.growth(t - f.created, t) * self.price(t))


def markets(posts: Sequence[dict], view: ChainView, include_replies: bool) -> list[PostFacts]:
    """Posts agents may predict: markets with an outcome in the slice, in creation order."""
    out = [view.facts[(p["author"], p["permlink"])] for p in posts]
    return sorted((f for f in out if f.paid_at is not None and (include_replies
                                                                or not f.is_reply)),
                  key=lambda f: (f.created, f.author, f.permlink))


# --- how they play ----------------------------------------------------------------------
@dataclass(frozen=True)
class Play:
    """How agents act: the market's timing, the staked-rule knobs and the draws."""

    chain_id: str
    market_id: str
    window: int
    reveal_period: int
    seed: int = 17
    stake_per_sp: float | None = 0.001  # None: payloads carry no stake and no bid (the demo)
    vote_value_per_sp: float = 0.0005  # milli-units of payout per milli-SP of a full vote
    bid_meaning: str = "confidence"  # confidence | accuracy
    # keyed: one generator per (seed, agent, post), so adding an agent or a post never shifts
    # another's draws (the evaluation); sequential: one generator for the whole run in market
    # and agent order (the demo's, kept so its chain stays byte-identical)
    draws: str = "keyed"


@dataclass
class Ledger:
    """What the agents did (the simulation's own record, for the report)."""

    commits: list[tuple[str, str, str, int, int]] = field(default_factory=list)
    # (agent, author, permlink, commit time, prediction)
    votes: list[tuple[str, str, str, int, int]] = field(default_factory=list)
    # (agent, author, permlink, vote time, rshares)


def rng_for(seed: int, *keys: object) -> random.Random:
    """A generator per (seed, keys): one agent's draw never shifts another's."""
    digest = hashlib.sha256("\x1f".join(map(str, (seed, *keys))).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _draws(play: Play) -> Callable[..., random.Random]:
    if play.draws == "sequential":
        shared = random.Random(play.seed)
        return lambda *keys: shared
    if play.draws != "keyed":
        raise ValueError(f"draws must be keyed or sequential, got {play.draws!r}")
    return lambda *keys: rng_for(play.seed, *keys)


@dataclass(frozen=True)
class Act:
    """One agent's move on one market: a commit and, unless it stays hidden, its reveal."""

    commit_time: int
    prediction: int  # what it reveals (and, unless ``copied``, what it committed to)
    salt: bytes
    reveal_time: int | None  # None: never revealed
    copied: dict | None = None  # a commit payload re-published as is (its opening is unknown)


@dataclass
class Memory:
    """What earlier moves left in public (or, for the demo's copier, in the mempool)."""

    commitments: dict[tuple[str, str, str], tuple[int, dict]] = field(default_factory=dict)
    # (agent, author, permlink) → (commit time, commit payload)
    revealed: dict[tuple[str, str], list[tuple[int, int]]] = field(default_factory=dict)
    # (agent, author) → [(reveal time, prediction)]


@dataclass(frozen=True)
class Turn:
    """Everything one agent may use to decide on one market."""

    view: ChainView
    play: Play
    rng: random.Random
    ring_eps: float  # the ring's log-error on this post (one draw shared by its members)
    memory: Memory
    plans: dict  # self-voters: (agent, author, permlink) → (prediction, commit t, rshares)

    def act(self, t: int, prediction: int, t_reveal: int | None) -> Act:
        """The move, with its salt drawn last (the evaluation's draw order)."""
        return Act(t, prediction, self.rng.randbytes(32), t_reveal)

    def normal_reveal(self, f: PostFacts) -> int:
        """A reveal 1–120 min after the window closes, inside the reveal period."""
        return f.created + self.play.window + self.rng.randint(
            1, max(1, min(120, self.play.reveal_period // 60 - 1))) * MINUTE


Decide = Callable[[Agent, PostFacts, Turn], Act | None]


@dataclass(frozen=True)
class Kind:
    """A strategy: how its agents decide, and what they are allowed to know."""

    decide: Decide
    sees_final: bool = False  # its noise model is centred on F (private knowledge)
    skips_unpaid: bool = False  # does not predict a post whose F is 0


def _final(f: PostFacts) -> int:
    assert f.final is not None  # markets() keeps only posts with an outcome
    return f.final


def _skilled(a: Agent, f: PostFacts, turn: Turn) -> Act:
    reveal, w = turn.normal_reveal(f), turn.play.window
    t = f.created + turn.rng.randint(MINUTE, max(MINUTE, w // 3))
    return turn.act(t, int(_final(f) * math.exp(turn.rng.gauss(a.bias, a.sigma))), reveal)


def _ring(a: Agent, f: PostFacts, turn: Turn) -> Act:
    reveal, w = turn.normal_reveal(f), turn.play.window
    t = f.created + turn.rng.randint(MINUTE, max(MINUTE, w // 6))
    eps = turn.ring_eps if a.kind == "sybil" else turn.rng.gauss(-0.05, a.sigma)
    guess = _final(f) * math.exp(eps)
    return turn.act(t, int(guess * (1 + a.spray)), reveal)


def _late(a: Agent, f: PostFacts, turn: Turn) -> Act:
    reveal, w = turn.normal_reveal(f), turn.play.window
    t = f.created + turn.rng.randint(int(w * 0.8), int(w * 0.97))
    return turn.act(t, int(turn.view.extrapolate(f, t) * 0.95), reveal)


def _copier(a: Agent, f: PostFacts, turn: Turn) -> Act | None:
    reveal = turn.normal_reveal(f)
    t = f.created + turn.rng.randint(MINUTE, 3 * MINUTE)
    seen = [p for tr, p in turn.memory.revealed.get((a.copies, f.author), []) if tr < t]
    return turn.act(t, seen[-1], reveal) if seen else None


def _whale(a: Agent, f: PostFacts, turn: Turn) -> Act:
    reveal = turn.normal_reveal(f)
    t = f.created + turn.rng.randint(MINUTE, 2 * MINUTE)
    return turn.act(t, int(turn.view.history_estimate(f.author, t) * 0.95), reveal)


def _selfvoter(a: Agent, f: PostFacts, turn: Turn) -> Act | None:
    reveal = turn.normal_reveal(f)
    plan = turn.plans.get((a.name, f.author, f.permlink))
    if plan is None:
        return None
    return turn.act(plan[1], plan[0], reveal)


def _selective(a: Agent, f: PostFacts, turn: Turn) -> Act:
    turn.normal_reveal(f)  # drawn and unused: keeps the draws in step with the other kinds
    w, rng = turn.play.window, turn.rng
    t = f.created + rng.randint(MINUTE, 5 * MINUTE)
    prediction = int(turn.view.history_estimate(f.author, t) * math.exp(rng.gauss(0, 0.5)))
    t_reveal = f.created + w + turn.play.reveal_period - rng.randint(10, 30) * MINUTE
    looks = turn.view.extrapolate(f, t_reveal)
    good = looks > 0 and prediction > 0 and abs(math.log(prediction / looks)) <= 0.5
    return turn.act(t, prediction, t_reveal if good else None)


def _demo_reveal(f: PostFacts, turn: Turn) -> int | None:
    """The demo's reveal: forgotten 5 % of the time, else 1–120 min after the window."""
    if turn.rng.random() < 0.05:
        return None
    return f.created + turn.play.window + turn.rng.randint(1, 120) * MINUTE


def _demo_curator(minutes: tuple[int, int]) -> Decide:
    def decide(a: Agent, f: PostFacts, turn: Turn) -> Act:
        rng = turn.rng
        prediction = int(_final(f) * math.exp(rng.gauss(a.bias, a.sigma)))
        t = f.created + rng.randint(*minutes) * MINUTE + rng.randint(0, 59)
        salt = rng.randbytes(32)
        return Act(t, prediction, salt, _demo_reveal(f, turn))
    return decide


def _demo_sybil(a: Agent, f: PostFacts, turn: Turn) -> Act:
    prediction = int(_final(f) * math.exp(turn.ring_eps) * (1 + a.spray))
    t = f.created + turn.rng.randint(1, 5) * MINUTE
    salt = turn.rng.randbytes(32)
    return Act(t, prediction, salt, _demo_reveal(f, turn))


def _demo_copier(a: Agent, f: PostFacts, turn: Turn) -> Act | None:
    source = turn.memory.commitments.get((a.copies, f.author, f.permlink))
    if source is None:
        return None
    rng = turn.rng
    t = source[0] + rng.randint(3, 30)
    guess = int(_final(f) * math.exp(rng.gauss(-0.05, 0.2)))  # it never learns the salt
    reveal_t = f.created + 31 * MINUTE + rng.randint(0, 600)
    return Act(t, guess, rng.randbytes(32), reveal_t, copied=source[1])


KINDS: dict[str, Kind] = {
    "skilled": Kind(_skilled, sees_final=True),
    "sybil": Kind(_ring, sees_final=True),
    "twin": Kind(_ring, sees_final=True),
    "late": Kind(_late),
    "copier": Kind(_copier),
    "whale": Kind(_whale),
    "selfvoter": Kind(_selfvoter),
    "selective": Kind(_selective),
    "demo-early": Kind(_demo_curator((1, 10)), sees_final=True, skips_unpaid=True),
    "demo-late": Kind(_demo_curator((22, 29)), sees_final=True, skips_unpaid=True),
    "demo-sybil": Kind(_demo_sybil, sees_final=True, skips_unpaid=True),
    "demo-copier": Kind(_demo_copier, sees_final=True, skips_unpaid=True),  # its guess
}
SKILL_AWARE = frozenset(k for k, kind in KINDS.items() if kind.sees_final)


def _confidence(sigma: float) -> float:
    """P(prediction in band) for log-noise N(-0.05, σ): band is ln 0.9 ≤ ε ≤ 0."""
    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf((x + 0.05) / (sigma * math.sqrt(2))))
    return max(0.01, min(0.99, cdf(0.0) - cdf(math.log(0.9))))


def _bid(play: Play, sigma: float) -> int:
    """The agent's bid in thousandths, as a curator writes it ("0.600" → 600)."""
    # accuracy: E[min/max] for log-noise σ, roughly
    value = math.exp(-0.8 * sigma) if play.bid_meaning == "accuracy" else _confidence(sigma)
    milli = parse_milli(f"{max(0.001, min(0.999, value)):.3f}")
    assert milli is not None
    return milli


def _self_sigma(a: Agent) -> float:
    """The noise an agent believes it has (for its bid)."""
    return a.sigma if a.kind in SKILL_AWARE else 0.6


def _ring_noise(agents: Sequence[Agent]) -> tuple[float, float]:
    """(bias, σ) of the ring's shared guess: its members' information."""
    return next(((a.bias, a.sigma) for a in agents if a.kind in RING), (-0.05, 0.5))


def tx(events: Events, anchor: Anchor, t: int, who: str, op: list) -> None:
    """One op in its own transaction, in the block the anchor puts at chain time ``t``."""
    events.tx(anchor.block_at(t), (t, 5, who), [op])


def self_votes(posts: Sequence[dict], agents: Sequence[Agent], play: Play, settle_pending: bool,
               include_replies: bool) -> tuple[list[dict], dict]:
    """The self-voters' votes, applied to copies of the posts (their payouts move too).

    Planned before :func:`simulate` because the votes change F, which every later view of the
    chain must show; the plans use keyed draws of their own. Returns the new posts and
    {(agent, author, permlink): (prediction, commit time, rshares)}.
    """
    voters = [a for a in agents if a.kind == "selfvoter"]
    view = ChainView(post_facts(p, settle_pending) for p in posts)
    plans: dict[tuple[str, str, str], tuple[int, int, int]] = {}
    extra: dict[tuple[str, str], list[tuple[str, int, int, int]]] = {}
    for f in markets(posts, view, include_replies):
        for a in voters:
            rng = rng_for(play.seed, a.name, f.author, f.permlink)
            t_commit = f.created + rng.randint(2, 8) * MINUTE
            estimate = max(view.history_estimate(f.author, t_commit),
                           view.extrapolate(f, t_commit))
            prediction = int(estimate * 1.5)
            plans[(a.name, f.author, f.permlink)] = (prediction, t_commit, 0)
            assert f.paid_at is not None and f.final is not None
            t_vote = f.paid_at - 13 * HOUR
            pending = f.final  # all real votes are in by now: the pending payout is public
            target = int(prediction / 0.95)
            need = target - pending
            capacity = a.sp * play.vote_value_per_sp
            if pending <= 0 or f.net_final <= 0 or not 0 < need <= capacity or t_vote <= t_commit:
                continue
            rshares = int(need * f.net_final / pending)
            plans[(a.name, f.author, f.permlink)] = (prediction, t_commit, rshares)
            extra.setdefault(f.key, []).append((a.name, t_vote, rshares, target - pending))
    out = []
    for p in posts:
        adds = extra.get((p["author"], p["permlink"]))
        if not adds:
            out.append(p)
            continue
        q = dict(p)
        q["active_votes"] = list(p.get("active_votes") or []) + [
            {"voter": name, "time": format_time(t), "rshares": str(r), "percent": 10000,
             "weight": 0}
            for name, t, r, _ in adds]
        gained = sum(g for *_, g in adds)
        if (p.get("last_payout") or NEVER) > NEVER:
            q["total_payout_value"] = sbd(amount_of(p["total_payout_value"], DOLLAR) + gained)
        else:
            q["pending_payout_value"] = sbd(amount_of(p["pending_payout_value"], DOLLAR)
                                             + gained)
        out.append(q)
    return out, plans


def simulate(posts: Sequence[dict], agents: Sequence[Agent], anchor: Anchor, events: Events,
             play: Play, settle_pending: bool = False, include_replies: bool = True,
             plans: dict | None = None) -> Ledger:
    """Add every agent's commits, reveals and votes to ``events``; return what they did.

    ``posts`` are the posts as the chain will show them (self-votes already applied, see
    :func:`self_votes`, whose ``plans`` the self-voters follow here).
    """
    view = ChainView(post_facts(p, settle_pending) for p in posts)
    plans = plans or {}
    ledger, memory, draw = Ledger(), Memory(), _draws(play)
    ring_bias, ring_sigma = _ring_noise(agents)
    for f in markets(posts, view, include_replies):
        # drawn for every market, before its agents, whatever the population
        ring_eps = draw("ring", f.author, f.permlink).gauss(ring_bias, ring_sigma)
        for a in agents:
            kind = KINDS[a.kind]
            rng = draw(a.name, f.author, f.permlink)
            if (kind.skips_unpaid and f.final == 0) or rng.random() > a.participation:
                continue
            act = kind.decide(a, f, Turn(view, play, rng, ring_eps, memory, plans))
            if act is not None:
                _publish(a, f, act, play, anchor, events, memory, ledger)
        for a in agents:
            plan = plans.get((a.name, f.author, f.permlink))
            if plan and plan[2]:
                assert f.paid_at is not None
                ledger.votes.append((a.name, f.author, f.permlink, f.paid_at - 13 * HOUR,
                                     plan[2]))
    return ledger


def _publish(a: Agent, f: PostFacts, act: Act, play: Play, anchor: Anchor, events: Events,
             memory: Memory, ledger: Ledger) -> None:
    """The act as real custom_json ops: what a live curator would broadcast."""
    stake = bid = None
    if play.stake_per_sp is not None:
        stake, bid = int(a.sp * play.stake_per_sp), _bid(play, _self_sigma(a))
    commit = act.copied or commit_payload(play.chain_id, f.author, f.permlink, a.name,
                                          act.prediction, act.salt, stake, bid)
    tx(events, anchor, act.commit_time, a.name, custom_json_op(play.market_id, a.name, commit))
    memory.commitments[(a.name, f.author, f.permlink)] = (act.commit_time, commit)
    ledger.commits.append((a.name, f.author, f.permlink, act.commit_time, act.prediction))
    if act.reveal_time is None:
        return
    tx(events, anchor, act.reveal_time, a.name, custom_json_op(
        play.market_id, a.name,
        reveal_payload(f.author, f.permlink, act.prediction, act.salt, stake, bid)))
    memory.revealed.setdefault((a.name, f.author), []).append((act.reveal_time, act.prediction))
