"""Properties (hypothesis) of the split, the settlement and the replay pipeline.

- Σ rewards + returned = pool exactly, for any weights, pools and settled markets;
- reordering what the spec does not order (transactions of different accounts on different
  posts, payout virtual ops of different posts) inside a block leaves the report unchanged;
- replaying twice = replaying once; stopping at any block and resuming = one run.

Streams are generated from a seed with ``random.Random`` (hypothesis draws the seed and the
shape), small enough that the whole file runs in seconds.
"""

from __future__ import annotations

import json
import random
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from curation.market import MarketConfig
from rewards.rules import CLOSENESS, named
from rewards.settle import Entry, settle
from rewards.split import split
from tests.dbdump import dump
from tests.helpers import (
    PAYOUT_AT,
    REVEAL_AT,
    WINDOW,
    Stream,
    ingest,
    new_store,
    report_json,
)

FEW = settings(deadline=None, max_examples=150)
SOME = settings(deadline=None, max_examples=30)

weights = st.lists(st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_subnormal=True)
                   | st.just(0.0), max_size=30)


@FEW
@given(pool=st.integers(0, 10**15), w=weights)
def test_split_conserves_the_pool(pool: int, w: list[float]) -> None:
    rewards, returned = split(pool, w)
    assert sum(rewards) + returned == pool
    assert all(r >= 0 for r in rewards) and returned >= 0
    assert returned == (0 if any(x > 0 for x in w) else pool)
    for r, x in zip(rewards, w, strict=True):
        assert x > 0 or r == 0  # a zero weight never earns


entries = st.lists(st.builds(
    Entry, prediction=st.none() | st.integers(0, 10**10), prior_n=st.integers(0, 50),
    prior_hits=st.integers(0, 50), sp=st.integers(0, 10**13),
    abs_at_commit=st.integers(0, 2**62), voted=st.booleans()), max_size=25)


@FEW
@given(es=entries, final=st.integers(0, 10**10), abs_final=st.integers(0, 2**62),
       closeness=st.sampled_from(CLOSENESS), ia=st.booleans(),
       underdog=st.sampled_from(["off", "curve", "beat-average"]),
       f=st.fractions(Fraction(0), Fraction(1, 2)))
def test_settle_conserves_the_pool(es: list[Entry], final: int, abs_final: int,
                                   closeness: str, ia: bool, underdog: str,
                                   f: Fraction) -> None:
    es = [Entry(e.prediction, e.prior_n, min(e.prior_hits, e.prior_n), e.sp, e.abs_at_commit,
                e.voted) for e in es]
    rules = named("seed", closeness=closeness, information_added=ia, underdog=underdog)
    result = settle(es, final, abs_final, rules, f if underdog != "off" else None,
                    Fraction(1, 2))
    paid = sum(fac.reward for fac in result.factors)
    assert paid + result.returned == result.pool
    assert 0 <= result.pool <= final
    assert all(fac.reward == 0 for fac in result.factors if not fac.qualified)


# --- generated block streams ------------------------------------------------------------
def random_stream(seed: int, posts: int, curators: int) -> Stream:
    """Posts by a few authors (two may share one), votes and vote changes, commits in and
    out of the window, good and bad reveals, deletes, payouts (several in one block)."""
    rng = random.Random(seed)
    s = Stream()
    authors = [f"author{i}" for i in range(max(1, posts - 1))]
    who = [f"curator{j}" for j in range(curators)]
    for i in range(posts):
        author, permlink = authors[i % len(authors)], f"post-{i}"
        t0 = 3 * rng.randrange(0, 40)
        s.post(t0, author, permlink)
        final = rng.choice([0, 999, 10_000, 123_456, 5_000_000])
        for _ in range(rng.randrange(0, 5)):
            s.vote(t0 + 3 * rng.randrange(0, 900), f"voter{rng.randrange(4)}", author,
                   permlink, rng.randrange(-10**6, 10**9))
        for c in rng.sample(who, rng.randrange(0, curators + 1)):
            prediction = int(final * rng.uniform(0.85, 1.02)) if final else rng.randrange(5000)
            t = t0 + rng.choice([0, 3, 60, 600, WINDOW, WINDOW + 3])
            s.commit(t, c, author, permlink, prediction)
            if rng.random() < 0.3:  # a replacing commit
                s.commit(t + 30, c, author, permlink, prediction + 1)
                prediction += 1
            tr = t0 + rng.choice([WINDOW - 3, REVEAL_AT, REVEAL_AT + 90, WINDOW + 6 * 3600 + 3])
            s.reveal(tr, c, author, permlink, prediction + rng.choice([0, 0, 0, 1]))
        if rng.random() < 0.1:
            s.tx(t0 + 30, ["delete_comment", {"author": author, "permlink": permlink}])
        pay = PAYOUT_AT + 3 * rng.randrange(0, 3)  # payouts of different posts share blocks
        s.payout(pay, author, permlink, final)
        s.vop(pay, ["comment_payout_update", {"author": author, "permlink": permlink}])
    return s


def _touches(op: list) -> set:
    """What an op reads or writes that the spec orders by position."""
    name, v = op
    if name == "comment":
        return {"comment", (v["author"], v["permlink"])}  # post ids follow comment order
    if name == "custom_json":
        doc = json.loads(v["json"])
        return {v["required_posting_auths"][0], (doc["author"], doc["permlink"])}
    keys: set = {(v["author"], v["permlink"])}
    if "voter" in v:
        keys.add(v["voter"])
    return keys


def permuted(blocks: list[dict], rng: random.Random) -> list[dict]:
    """Each block's transactions and virtual ops in a random order that keeps every pair
    touching the same post or account in its original order."""
    out = []
    for b in blocks:
        b = dict(b)
        b["transactions"] = _shuffle(b["transactions"], lambda tx: set().union(
            *(_touches(op) for op in tx["operations"])), rng)
        b["virtual_ops"] = _shuffle(b["virtual_ops"], _touches, rng)
        out.append(b)
    return out


def _shuffle(items: list, keys, rng: random.Random) -> list:
    touched = [keys(x) for x in items]
    placed: list[int] = []
    left = list(range(len(items)))
    while left:
        ready = [i for i in left if not any(touched[i] & touched[j] for j in left if j < i)]
        pick = rng.choice(ready)
        placed.append(pick)
        left.remove(pick)
    return [items[i] for i in placed]


def _report(blocks: list[dict], cfg: MarketConfig) -> bytes:
    store = new_store(cfg=cfg)
    ingest(store, blocks, cfg=cfg, batch_blocks=5)
    return report_json(store)


CONFIGS = [MarketConfig(), MarketConfig(rules=named("commit-reveal", underdog="curve")),
           MarketConfig(rules=named("seed", underdog="beat-average"), include_replies=True)]


@SOME
@given(seed=st.integers(0, 2**32), posts=st.integers(1, 6), curators=st.integers(1, 5),
       cfg=st.sampled_from(CONFIGS))
def test_permuting_what_the_spec_does_not_order_changes_nothing(
        seed: int, posts: int, curators: int, cfg: MarketConfig) -> None:
    blocks = random_stream(seed, posts, curators).blocks()
    shuffled = permuted(blocks, random.Random(seed + 1))
    assert _report(shuffled, cfg) == _report(blocks, cfg)


def test_the_permutation_really_reorders() -> None:
    """Guards the property above against testing nothing."""
    moved = 0
    for seed in range(30):
        blocks = random_stream(seed, 6, 5).blocks()
        moved += permuted(blocks, random.Random(seed + 1)) != blocks
    assert moved >= 10


def test_regression_same_author_payouts_in_one_block_are_order_free() -> None:
    """Was: the second of two posts by one author paid in the same block was judged against
    an author average that already held the first (x and the underdog pool depended on the
    order of the payout vops). Now both see the average of strictly earlier blocks."""
    s = Stream()
    s.post(0, "bob", "old")
    s.vote(3, "v", "bob", "old", 1000)
    s.payout(PAYOUT_AT - 3000, "bob", "old", 1000)
    s.post(30, "bob", "a")
    s.vote(33, "v", "bob", "a", 200)
    s.post(60, "bob", "b")
    s.vote(63, "v", "bob", "b", 5000)
    s.payout(PAYOUT_AT + 90, "bob", "a", 10_000)
    s.payout(PAYOUT_AT + 90, "bob", "b", 10_000)
    blocks = s.blocks()
    swapped = [dict(b, virtual_ops=b["virtual_ops"][::-1]) for b in blocks]
    cfg = MarketConfig(rules=named("seed", underdog="curve"))
    assert _report(swapped, cfg) == _report(blocks, cfg)
    xs = {m["permlink"]: m["settlement"]["x"] for m in json.loads(_report(blocks, cfg))["markets"]}
    assert xs == {"old": 1.0, "a": 0.04, "b": 25.0}


@SOME
@given(seed=st.integers(0, 2**32), posts=st.integers(1, 5), batch=st.integers(1, 20))
def test_replay_twice_is_replay_once(seed: int, posts: int, batch: int) -> None:
    blocks = random_stream(seed, posts, 4).blocks()
    once = new_store()
    ingest(once, blocks, batch_blocks=batch)
    twice = new_store()
    ingest(twice, blocks, batch_blocks=batch)
    ingest(twice, blocks, batch_blocks=batch)
    assert dump(twice.engine) == dump(once.engine)


@SOME
@given(seed=st.integers(0, 2**32), posts=st.integers(1, 5), data=st.data())
def test_stop_anywhere_and_resume_is_one_run(seed: int, posts: int, data: st.DataObject) -> None:
    blocks = random_stream(seed, posts, 4).blocks()
    cuts = sorted(data.draw(st.sets(st.integers(0, len(blocks)), max_size=4)))
    whole = new_store()
    ingest(whole, blocks, batch_blocks=4)
    engine = create_engine("sqlite://")
    for end in [*cuts, len(blocks)]:
        # nothing survives a restart but the database: a fresh Store and Ingester each time;
        # the source restarts from the beginning and the checkpoint skips what is done
        store = new_store(engine)
        ingest(store, blocks[:end], batch_blocks=data.draw(st.integers(1, 9)))
    assert dump(engine) == dump(whole.engine)

