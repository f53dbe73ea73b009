"""Simulated curator agents over real history, each seeing only what the chain showed.

What an agent may read when it acts at chain time ``t`` (:class:`ChainView`):

- the post itself (author, created) and its votes cast up to ``t`` (net rshares so far);
- payouts realised before ``t``: every earlier post's F, its final rshares and its vote curve
  (so price per rshare and how rshares grow with age can be learned from public history);
- reveals published before ``t`` (other agents' revealed predictions on earlier posts).

Only the **skilled** agents touch F of the post they predict, and only through their noise
model: they predict ``F·exp(ε)`` with ``ε ~ N(bias, σ)`` drawn from a generator keyed by
(seed, agent, post) — never from F — so σ *is* their skill. It stands for private knowledge
(reading the post, knowing the audience) that the chain does not show. Every other agent's
commit is a function of chain data before its commit time; ``tests/test_evaluate.py`` checks
this by perturbing F and comparing commit payloads.

Agent types (``kind``):

- ``skilled``: early predictors of several skill levels, commit 1–10 min after the post.
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

Staked rule sets need ``stake`` and ``bid`` in the reveal (both bound by the commitment, so
they are fixed at commit time, before any votes are seen): every agent stakes
``SP × stake_per_sp`` per prediction and bids its own confidence. ``bid_meaning`` says what
the bid is: ``confidence`` (probability of landing in the band, numerai-2018) or
``accuracy`` (the benchmark accuracy score it expects, numerai-2019). Agents know the rules
they play under, so the evaluator builds one stream per bid meaning.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from curation_market.curator.ops import commit_payload, custom_json_op, reveal_payload
from curation_market.lab.simulate import MINUTE, Agent, tx
from indexer.amounts import DOLLAR, amount_of
from indexer.ops import chain_time, format_time
from indexer.postdump import NEVER, Anchor, Events, Payout, payout_of, sbd

HOUR = 3600
PRIOR_PRICE = 1e-9  # milli-units per rshare when no payout is visible yet (about 2017-11)
PRIOR_GROWTH = 8.0  # final / early rshares when no payout history is visible yet
PRIOR_PAYOUT = 1000  # milli-units: a post's payout guessed with no history at all
SKILL_AWARE = frozenset({"skilled", "sybil", "twin"})  # their noise model is centred on F


# --- what the chain shows ---------------------------------------------------------------
@dataclass(frozen=True)
class PostFacts:
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


# --- the population ---------------------------------------------------------------------
@dataclass(frozen=True)
class Population:
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


def agent_type(agent: Agent) -> str:
    """The group an agent is reported under (skill levels apart)."""
    return f"skilled σ={agent.sigma:g}" if agent.kind == "skilled" else agent.kind


@dataclass(frozen=True)
class Play:
    """How agents act: the market's timing and the staked-rule knobs."""

    chain_id: str
    market_id: str
    window: int
    reveal_period: int
    seed: int = 17
    stake_per_sp: float = 0.001
    vote_value_per_sp: float = 0.0005  # milli-units of payout per milli-SP of a full vote
    bid_meaning: str = "confidence"  # confidence | accuracy


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


def _confidence(sigma: float) -> float:
    """P(prediction in band) for log-noise N(-0.05, σ): band is ln 0.9 ≤ ε ≤ 0."""
    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf((x + 0.05) / (sigma * math.sqrt(2))))
    return max(0.01, min(0.99, cdf(0.0) - cdf(math.log(0.9))))


def _bid(play: Play, sigma: float) -> str:
    # accuracy: E[min/max] for log-noise σ, roughly
    value = math.exp(-0.8 * sigma) if play.bid_meaning == "accuracy" else _confidence(sigma)
    return f"{max(0.001, min(0.999, value)):.3f}"


def markets(posts: Sequence[dict], view: ChainView, include_replies: bool) -> list[PostFacts]:
    """Posts agents may predict: markets with an outcome in the slice, in creation order."""
    out = [view.facts[(p["author"], p["permlink"])] for p in posts]
    return sorted((f for f in out if f.paid_at is not None and (include_replies
                                                                or not f.is_reply)),
                  key=lambda f: (f.created, f.author, f.permlink))


def self_votes(posts: Sequence[dict], agents: Sequence[Agent], play: Play, settle_pending: bool,
               include_replies: bool) -> tuple[list[dict], dict]:
    """The self-voters' votes, applied to copies of the posts (their payouts move too).

    Returns the new posts and {(agent, author, permlink): (prediction, vote time, rshares)}.
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


def simulate_agents(posts: Sequence[dict], agents: Sequence[Agent], anchor: Anchor,
                    events: Events, play: Play, settle_pending: bool, include_replies: bool,
                    plans: dict | None = None) -> Ledger:
    """Add every agent's commits, reveals and votes to ``events``; return what they did.

    ``posts`` are the posts as the chain will show them (self-votes already applied).
    """
    view = ChainView(post_facts(p, settle_pending) for p in posts)
    plans = plans or {}
    ledger = Ledger()
    revealed: dict[tuple[str, str], list[tuple[int, int]]] = {}  # (agent, author) → reveals
    for f in markets(posts, view, include_replies):
        assert f.final is not None
        ring_rng = rng_for(play.seed, "ring", f.author, f.permlink)
        ring_eps = ring_rng.gauss(-0.05, _ring_sigma(agents))
        for a in agents:
            rng = rng_for(play.seed, a.name, f.author, f.permlink)
            if rng.random() > a.participation:
                continue
            act = _decide(a, f, view, play, rng, ring_eps, revealed, plans)
            if act is None:
                continue
            t_commit, prediction, t_reveal = act
            salt = rng.randbytes(32)
            stake, bid = int(a.sp * play.stake_per_sp), _bid(play, _self_sigma(a))
            tx(events, anchor, t_commit, a.name, custom_json_op(
                play.market_id, a.name,
                commit_payload(play.chain_id, f.author, f.permlink, a.name, prediction, salt,
                               stake, bid)))
            ledger.commits.append((a.name, f.author, f.permlink, t_commit, prediction))
            if t_reveal is None:
                continue
            tx(events, anchor, t_reveal, a.name, custom_json_op(
                play.market_id, a.name,
                reveal_payload(f.author, f.permlink, prediction, salt, stake, bid)))
            revealed.setdefault((a.name, f.author), []).append((t_reveal, prediction))
        for a in agents:
            plan = plans.get((a.name, f.author, f.permlink))
            if plan and plan[2]:
                assert f.paid_at is not None
                ledger.votes.append((a.name, f.author, f.permlink, f.paid_at - 13 * HOUR,
                                     plan[2]))
    return ledger


def _ring_sigma(agents: Sequence[Agent]) -> float:
    return next((a.sigma for a in agents if a.kind in ("sybil", "twin")), 0.5)


def _self_sigma(a: Agent) -> float:
    """The noise an agent believes it has (for its bid)."""
    return a.sigma if a.kind in SKILL_AWARE else 0.6


def _decide(a: Agent, f: PostFacts, view: ChainView, play: Play, rng: random.Random,
            ring_eps: float, revealed: dict, plans: dict
            ) -> tuple[int, int, int | None] | None:
    """(commit time, prediction, reveal time or None) for one agent on one post."""
    w = play.window
    normal_reveal = f.created + w + rng.randint(1, max(1, min(120, play.reveal_period // 60
                                                              - 1))) * MINUTE
    assert f.final is not None
    if a.kind == "skilled":
        t = f.created + rng.randint(MINUTE, max(MINUTE, w // 3))
        return t, int(f.final * math.exp(rng.gauss(a.bias, a.sigma))), normal_reveal
    if a.kind in ("sybil", "twin"):
        t = f.created + rng.randint(MINUTE, max(MINUTE, w // 6))
        eps = ring_eps if a.kind == "sybil" else rng.gauss(-0.05, a.sigma)
        guess = f.final * math.exp(eps)
        return t, int(guess * (1 + a.spray)), normal_reveal
    if a.kind == "late":
        t = f.created + rng.randint(int(w * 0.8), int(w * 0.97))
        return t, int(view.extrapolate(f, t) * 0.95), normal_reveal
    if a.kind == "copier":
        t = f.created + rng.randint(MINUTE, 3 * MINUTE)
        seen = [p for tr, p in revealed.get((a.copies, f.author), []) if tr < t]
        return (t, seen[-1], normal_reveal) if seen else None
    if a.kind == "whale":
        t = f.created + rng.randint(MINUTE, 2 * MINUTE)
        return t, int(view.history_estimate(f.author, t) * 0.95), normal_reveal
    if a.kind == "selfvoter":
        plan = plans.get((a.name, f.author, f.permlink))
        if plan is None:
            return None
        return plan[1], plan[0], normal_reveal
    if a.kind == "selective":
        t = f.created + rng.randint(MINUTE, 5 * MINUTE)
        prediction = int(view.history_estimate(f.author, t) * math.exp(rng.gauss(0, 0.5)))
        t_reveal = f.created + w + play.reveal_period - rng.randint(10, 30) * MINUTE
        looks = view.extrapolate(f, t_reveal)
        good = looks > 0 and prediction > 0 and abs(math.log(prediction / looks)) <= 0.5
        return t, prediction, (t_reveal if good else None)
    raise ValueError(f"unknown agent kind {a.kind!r}")
