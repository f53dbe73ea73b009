"""Simulated curators over real history: seeded, documented, and through the real path.

Agents publish real ``custom_json`` commit and reveal ops that are merged into the imported
blocks, so the demo exercises exactly what a live curator would. Skill is modelled as noise
around the real final payout: an agent of skill σ predicts ``F·exp(N(bias, σ))``.
Agents only predict posts whose payout lies inside the slice (otherwise there is no outcome).

The population (``DEMO_POPULATION``):
- ``early``: accurate curators of three skill levels committing 1–10 min after the post;
- ``late``: sharper (they have seen the first votes) but commit at 22–29 min;
- ``copier``: re-publishes an early curator's commitment hash — commit–reveal makes it
  useless: the copier cannot open a hash bound to someone else (hash_mismatch);
- ``sybil``: a ring of small accounts spraying predictions across ±40 % of a rough guess so
  one of them lands in the band.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from curation.state import Account, Globals
from curation_market.curator.ops import commit_payload, custom_json_op, reveal_payload
from indexer.amounts import DOLLAR, amount_of
from indexer.ops import chain_time
from indexer.postdump import NEVER, Anchor, Events

MINUTE = 60


@dataclass(frozen=True)
class Agent:
    name: str
    kind: str  # early | late | copier | sybil
    sp: int  # milli-units of Steem Power
    sigma: float = 0.1  # log-noise of its view of the final payout
    bias: float = -0.05  # aim a little below F: the band is 90–100 %
    participation: float = 0.8
    spray: float = 0.0  # sybil: offset of this ring member from the ring's guess
    copies: str = ""  # copier: whose commitment it re-publishes


def demo_population() -> list[Agent]:
    agents = [
        Agent("sim-oracle", "early", 40_000_000, sigma=0.04),
        Agent("sim-analyst", "early", 15_000_000, sigma=0.10),
        Agent("sim-hopeful", "early", 8_000_000, sigma=0.30),
        Agent("sim-latecomer", "late", 20_000_000, sigma=0.03),
        Agent("sim-copycat", "copier", 20_000_000, copies="sim-oracle"),
    ]
    agents += [Agent(f"sim-sybil{i}", "sybil", 2_500_000, sigma=0.5, participation=1.0,
                     spray=-0.4 + 0.1 * i) for i in range(9)]
    return agents


@dataclass(frozen=True)
class Outcome:
    author: str
    permlink: str
    created: int
    final: int


def outcomes(posts: Iterable[dict]) -> list[Outcome]:
    out = []
    for p in posts:
        if (p.get("last_payout") or NEVER) > NEVER:
            final = amount_of(p["total_payout_value"], DOLLAR) + amount_of(
                p["curator_payout_value"], DOLLAR)
            out.append(Outcome(p["author"], p["permlink"], chain_time(p["created"]), final))
    return sorted(out, key=lambda o: (o.created, o.author, o.permlink))


def simulate(posts: Iterable[dict], agents: list[Agent], anchor: Anchor, events: Events,
             chain_id: str, market_id: str, window: int, seed: int = 17) -> None:
    """Add every agent's commits and reveals to ``events``."""
    rng = random.Random(seed)
    for o in outcomes(posts):
        salts: dict[str, bytes] = {}
        commitments: dict[str, tuple[int, dict]] = {}
        ring_guess = o.final * math.exp(rng.gauss(0.0, 0.5))
        for agent in agents:
            if o.final == 0 or rng.random() > agent.participation:
                continue
            if agent.kind == "copier":
                _copy(agent, o, commitments, anchor, events, market_id, rng)
                continue
            if agent.kind == "sybil":
                prediction = int(ring_guess * (1 + agent.spray))
                t = o.created + rng.randint(1, 5) * MINUTE
            else:
                prediction = int(o.final * math.exp(rng.gauss(agent.bias, agent.sigma)))
                minutes = (1, 10) if agent.kind == "early" else (22, 29)
                t = o.created + rng.randint(*minutes) * MINUTE + rng.randint(0, 59)
            salt = rng.randbytes(32)
            salts[agent.name] = salt
            payload = commit_payload(chain_id, o.author, o.permlink, agent.name, prediction, salt)
            commitments[agent.name] = (t, payload)
            tx(events, anchor, t, agent.name, custom_json_op(market_id, agent.name, payload))
            if rng.random() < 0.05:
                continue  # forgets to reveal: a miss
            reveal_t = o.created + window + rng.randint(1, 120) * MINUTE
            tx(events, anchor, reveal_t, agent.name, custom_json_op(
                market_id, agent.name, reveal_payload(o.author, o.permlink, prediction, salt)))


def _copy(agent: Agent, o: Outcome, commitments: dict[str, tuple[int, dict]], anchor: Anchor,
          events: Events, market_id: str, rng: random.Random) -> None:
    source = commitments.get(agent.copies)
    if source is None:
        return
    t, payload = source
    t += rng.randint(3, 30)
    tx(events, anchor, t, agent.name, custom_json_op(market_id, agent.name, payload))
    guess = int(o.final * math.exp(rng.gauss(-0.05, 0.2)))  # it never learns the salt
    reveal_t = o.created + 31 * MINUTE + rng.randint(0, 600)
    tx(events, anchor, reveal_t, agent.name, custom_json_op(
        market_id, agent.name, reveal_payload(o.author, o.permlink, guess, rng.randbytes(32))))


def tx(events: Events, anchor: Anchor, t: int, who: str, op: list) -> None:
    events.tx(anchor.block_at(t), (t, 5, who), [op])


def agent_accounts(agents: Iterable[Agent], globals_: Globals) -> list[Account]:
    """Vesting that gives each agent its SP at the snapshot's VESTS→SP ratio."""
    out = []
    for a in agents:
        vests = -(-a.sp * globals_.total_vesting_shares // globals_.total_vesting_fund)
        out.append(Account(a.name, vesting_shares=vests))
    return out
