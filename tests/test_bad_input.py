"""Bad input never crashes, is always recorded with a reason, and never costs a valid op.

Thousands of seeded malformed ``custom_json`` payloads (and a hypothesis search over arbitrary
JSON in every field) run through Adapter+Applier in memory; a smaller garbage stream and a file
of malformed block lines run the real path (block file → Ingester → Store on SQLite). Each bad
item carries the number of rejections it must produce, so ``rejections == bad items`` is exact.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from curation.market import MarketConfig
from curation.payload import PayloadLimits, parse_payload
from curation.records import BadOp
from curation_market.curator.ops import commit_payload, reveal_payload
from indexer import schema
from indexer.blockfile import read_blocks
from indexer.ops import Adapter
from tests.helpers import (
    CHAIN_ID,
    MARKET_ID,
    REVEAL_AT,
    WINDOW,
    Stream,
    commit_op,
    ingest,
    market_stream,
    new_store,
    payout_op,
    post_op,
    report_json,
    run_memory,
    salt_of,
    settled_view,
)

SIDE = ("side", "side-post")  # the post that good items hidden in bad payloads commit to
HEX = "0123456789abcdef"
# an independent reading of spec §2's forms, to know by construction what is invalid
DECIMAL = re.compile(r"[0-9]{1,15}(\.[0-9]{1,3})?")
ACCOUNT = re.compile(r"[a-z][a-z0-9\-.]{2,15}")
PERMLINK = re.compile(r"[a-z0-9\-_.]{1,256}")


def _commit(who: str, author: str = SIDE[0], permlink: str = SIDE[1]) -> dict:
    return commit_payload(CHAIN_ID, author, permlink, who, 5000, salt_of(who, permlink))


def _reveal(who: str) -> dict:
    return reveal_payload("author0", "post-0", 5000, salt_of(who, "post-0"))


# --- wrong values, by field --------------------------------------------------------------
WRONG_TYPES: list[Any] = [None, True, False, 0, 1, -1, 1.5, 2**70, [], {}, ["x"], {"a": 1}]
BAD_NUMBERS = ["1e309", "99999999999999999999.999", "-1.000", "NaN", "nan", "Infinity",
               "-0", "+1", "1.2345", " 1.000", "1.000 ", "1,000", "0x10", "1_000", "",
               ".5", "5.", "١٢.٣٤٥", "１２", "1e3", "12.3.4", "\x00", "1\x00", "\ud800",
               "9999999999999999", "10000000.001"]
BAD_NAMES = ["", "ab", "Alice", "a" * 17, "1abc", "al ice", "al\x00ice", "al\ud800ce",
             "alicé", "ALICE", "a\nb", "é" * 5]
BAD_PERMLINKS = ["", "A", "a b", "p" * 257, "p\x00", "p\ud800", "pé", "p/q", "p?", "p\n"]
BAD_HASHES = ["", "0" * 63, "0" * 65, "A" * 64, "g" * 64, "0" * 63 + "\x00", 64 * "é"]
BAD_SALTS = ["", "0" * 62, "0" * 66, "z" * 64, "0" * 63 + "\ud800", "00" * 31 + "  "]
FIELDS = {
    "author": BAD_NAMES, "permlink": BAD_PERMLINKS, "commitment": BAD_HASHES,
    "prediction": BAD_NUMBERS, "salt": BAD_SALTS,
    "stake": ["-1", "1e3", "99999999999999999999.999", ""],
    "bid": ["1.001", "2", "-0.5", "1e0", "NaN"],
    "op": ["", "Commit", "REVEAL", "vote", "commit\x00"],
    "v": [0, 2, "1", True, None, -1, 1.5],
}


def _wrong_field(rng: random.Random, who: str, in_list: bool = False) -> dict:
    """One valid commit or reveal with exactly one field made wrong (or missing).

    Inside an ``ops`` list an item may leave out ``v`` (the envelope carries it)."""
    doc = _commit(who, "author0", "post-0") if rng.random() < 0.5 else _reveal(who)
    key = rng.choice([k for k in FIELDS if k in doc or k in ("stake", "bid")])
    if key in ("stake", "bid", "prediction", "salt") and doc["op"] == "commit":
        key = "commitment"
    if key == "commitment" and doc["op"] == "reveal":
        key = "prediction"
    roll = rng.random()
    if roll < 0.15 and key not in ("stake", "bid") and not (in_list and key == "v"):
        del doc[key]  # missing field
    elif roll < 0.45 and key != "v":  # (1 is a wrong type anywhere but in "v")
        doc[key] = rng.choice(WRONG_TYPES)
    else:
        doc[key] = rng.choice(FIELDS[key])
    if rng.random() < 0.3:
        doc["extra_" + rng.choice(HEX)] = rng.choice(WRONG_TYPES)  # extra fields never help
    return doc


def _malformed_text(rng: random.Random, who: str) -> Any:
    good = json.dumps(_commit(who, "author0", "post-0"))
    choice = rng.randrange(12)
    if choice == 0:
        return good[: rng.randrange(len(good))]  # truncated
    if choice == 1:
        return good + rng.choice(["}", "]", ",", "x", " {}"])
    if choice == 2:
        return "[" * rng.randint(1100, 3000) + "]" * 5  # deeper than any parser allows
    if choice == 3:
        return rng.choice(["NaN", "1e309", "-1e400", "99999999999999999999999", "null",
                           "true", '"x"', "[]", "[1,2]", "0"])
    if choice == 4:
        return good.replace('"v"', '"v\\ud800"')  # lone surrogate escape
    if choice == 5:
        return good[:10] + "\ud800" + good[10:]  # lone surrogate character
    if choice == 6:
        return good.replace("{", "{\x00", 1)
    if choice == 7:
        return rng.choice(WRONG_TYPES[:9])  # json field not a string at all
    if choice == 8:
        return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randint(1, 60)))
    if choice == 9:
        pad = "x" * (PayloadLimits().max_payload_bytes + rng.randint(1, 5000))
        return json.dumps({**_commit(who, "author0", "post-0"), "pad": pad})
    if choice == 10:
        return "{'v': 1}"  # python repr, not JSON
    return json.dumps({"v": 1, "ops": rng.choice([[], {}, "x", None, 5])})


def bad_market_json(rng: random.Random, i: int) -> tuple[list, int, set[str]]:
    """A custom_json op for the market → (op, rejections it must cause, signers kept).

    ``signers kept`` names junk accounts whose good item (a commit on SIDE) must survive.
    """
    who = f"junk{i}"
    roll = rng.random()
    posting, active = [who], []
    kept: set[str] = set()
    if roll < 0.30:
        payload: Any = _wrong_field(rng, who)
        n_bad = 1
    elif roll < 0.55:
        payload, n_bad = _malformed_text(rng, who), 1
    elif roll < 0.75:  # a list of ops mixing good and bad items
        n = rng.randint(1, 8)
        items: list[Any] = [_wrong_field(rng, who, in_list=True) for _ in range(n)]
        items += [rng.choice(WRONG_TYPES[:7]) for _ in range(rng.randint(0, 2))]
        n_bad = len(items)
        if rng.random() < 0.6:
            items.insert(rng.randrange(len(items) + 1), _commit(who))
            kept.add(who)
        rng.shuffle(items)
        payload = {"v": 1, "ops": items}
    elif roll < 0.80:
        payload = {"v": 1, "ops": [_commit(who)] * (PayloadLimits().max_ops_per_payload + 1)}
        n_bad = 1
    else:  # signer problems: every message of the op is refused once
        payload = rng.choice([_commit(who, "author0", "post-0"),
                              {"v": 1, "ops": [_commit(who), _reveal(who)]}])
        n_bad = len(payload.get("ops", [payload]))
        kind = rng.randrange(7)
        if kind == 0:
            posting = []
        elif kind == 1:
            posting = [who, who + "x"]
        elif kind == 2:
            posting, active = [who], [who + "y"]
        elif kind == 3:
            posting = [rng.choice([5, None, True, 1.5])]
        elif kind == 4:
            posting = [rng.choice(BAD_NAMES)]
        elif kind == 5:
            posting = [[who]]  # unhashable: the whole op is one malformed_op
            n_bad = 1
        else:
            posting, active = [], [who, who + "z", who + "w"]
    text = payload if not isinstance(payload, (dict, list)) else json.dumps(payload)
    if isinstance(text, str) and "\\ud800" in text:  # JSON parsers refuse the whole text
        n_bad, kept = 1, set()
    return (["custom_json", {"required_auths": active, "required_posting_auths": posting,
                             "id": MARKET_ID, "json": text}], n_bad, kept)


def garbage_stream(n: int, seed: int, span: int = WINDOW) -> tuple[Stream, int, set[str]]:
    """The healthy market of tests.helpers plus ``n`` bad custom_json ops at random times
    inside the commit window, and a few irrelevant ops that must not be rejected."""
    rng = random.Random(seed)
    s = Stream()
    s.post(0, *SIDE)
    market_stream(stream=s)
    bad, kept = 0, set()
    for i in range(n):
        op, n_bad, k = bad_market_json(rng, i)
        bad += n_bad
        kept |= k
        s.tx(rng.randrange(0, span), op)
        if i % 50 == 0:  # not ours: other ids are ignored, never rejected
            s.tx(rng.randrange(0, span), ["custom_json", {
                "id": "follow", "required_posting_auths": ["x"], "json": "{{{"}])
    return s, bad, kept


VALID_CURATORS = [f"curator{j}" for j in range(4)]


def test_thousands_of_bad_payloads_in_memory() -> None:
    clean = run_memory(market_stream().blocks())
    total = 0
    for seed in range(3):
        stream, n_bad, kept = garbage_stream(1000, seed)
        state = run_memory(stream.blocks())
        reasons = Counter(r.reason for r in state.rejections)
        assert sum(reasons.values()) == n_bad, reasons
        assert all(r.reason and r.kind for r in state.rejections)
        assert settled_view(state, VALID_CURATORS) == settled_view(clean)
        side_id = state.posts[SIDE].id
        committed = {who for (pid, who) in state.commits if pid == side_id}
        assert committed == kept  # good items hidden among bad ones are kept
        total += n_bad
    assert total >= 3000


def test_the_reason_codes_are_the_documented_ones() -> None:
    stream, _, _ = garbage_stream(1500, 99)
    reasons = {r.reason for r in run_memory(stream.blocks()).rejections}
    assert reasons <= {
        "malformed_json", "not_an_object", "bad_version", "bad_ops_list", "too_many_ops",
        "payload_too_large", "bad_author", "bad_permlink", "bad_commitment", "unknown_op",
        "bad_prediction", "prediction_too_large", "bad_salt", "bad_stake", "bad_bid",
        "signers", "malformed_op", "unknown_post", "hash_mismatch", "no_commitment",
        "reveal_too_early"}
    assert {"malformed_json", "bad_prediction", "signers", "bad_author",
            "payload_too_large", "too_many_ops", "bad_version"} <= reasons


# --- hypothesis: arbitrary JSON in any field -------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids,
                                                              max_size=4),
    max_leaves=12)


def _is_valid(key: str, value: Any) -> bool:
    if key == "v":
        return value == 1 and not isinstance(value, bool)
    if key == "op":
        return value in ("commit", "reveal")
    if not isinstance(value, str):
        return False
    if key == "author":
        return bool(ACCOUNT.fullmatch(value))
    if key == "permlink":
        return bool(PERMLINK.fullmatch(value))
    if key == "commitment":
        return len(value) == 64 and all(c in HEX for c in value)
    if key == "salt":
        return len(value) == 64 and all(c in HEX + "ABCDEF" for c in value)
    return bool(DECIMAL.fullmatch(value))  # prediction


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(reveal=st.booleans(), key=st.sampled_from(["v", "op", "author", "permlink",
                                                  "commitment", "prediction", "salt"]),
       value=JSON, as_text=st.booleans())
def test_any_json_in_any_field_is_rejected_with_a_reason(reveal: bool, key: str, value: Any,
                                                         as_text: bool) -> None:
    doc = _reveal("alice") if reveal else _commit("alice", "author0", "post-0")
    if key == "commitment" and reveal:
        key = "prediction"
    if key in ("prediction", "salt") and not reveal:
        key = "commitment"
    if _is_valid(key, value):
        return
    doc[key] = value
    op = ["custom_json", {"required_auths": [], "required_posting_auths": ["alice"],
                          "id": MARKET_ID, "json": json.dumps(doc) if as_text else doc}]
    s = Stream()
    s.post(0, "author0", "post-0")
    s.tx(REVEAL_AT if reveal else 60, op)
    state = run_memory(s.blocks())
    assert len(state.rejections) == 1
    assert state.commits == {}


@settings(deadline=None, max_examples=200)
@given(raw=st.text(max_size=200) | st.binary(max_size=200) | JSON)
def test_parse_payload_never_raises(raw: Any) -> None:
    msgs = parse_payload(raw, PayloadLimits())
    assert msgs and all(m is not None for m in msgs)


# --- the real path: block file → Ingester → SQLite --------------------------------------
def _report(blocks: list, path: Path, cfg: MarketConfig | None = None) -> tuple[dict, dict]:
    store = new_store(f"sqlite:///{path}", cfg)
    ingest(store, blocks, cfg, batch_blocks=7)
    doc = orjson.loads(report_json(store))
    return doc, doc.pop("rejections")


def test_garbage_through_the_real_path_loses_nothing(tmp_path: Path) -> None:
    """Block dicts (as a node client hands them over, lone surrogates and NULs included)
    through the Ingester into SQLite: same settled report, every bad item counted."""
    stream, n_bad, _ = garbage_stream(400, 7)
    clean = market_stream()
    clean.post(0, *SIDE)
    ref, ref_rej = _report(clean.blocks(), tmp_path / "clean.db")
    got, rejections = _report(stream.blocks(), tmp_path / "garbage.db")
    got["curators"] = [c for c in got["curators"] if c["curator"] in VALID_CURATORS]
    assert ref_rej == {}
    assert got == ref
    assert sum(rejections.values()) == n_bad


def _good_blocks() -> list[dict]:
    return market_stream(posts=2, curators=3).blocks()


def bad_block_lines(good: list[dict]) -> Iterator[tuple[bytes, int]]:
    """Good block lines with bad lines between them → (line, rejections it must cause)."""
    rng = random.Random(3)
    bad_ops = [
        ["vote", {"voter": 5, "author": "a", "permlink": "p"}],
        ["vote", "not an object"],
        ["comment", {"author": "a\x00", "permlink": "p", "parent_author": "",
                     "parent_permlink": "t"}],
        ["effective_comment_vote", {"voter": "v", "author": "a", "permlink": "p",
                                    "rshares": 2**60}],
        ["effective_comment_vote", {"voter": "v", "author": "a", "permlink": "p",
                                    "rshares": "1e5"}],
        ["effective_comment_vote", {"voter": "v", "author": "a", "permlink": "p",
                                    "rshares": 1.5}],
        ["effective_comment_vote", {"voter": "v", "author": "a", "permlink": "p",
                                    "rshares": "1_000"}],
        ["comment_reward", {"author": "junk", "permlink": "p", "payout": "1.0000 SBD"}],
        ["comment_reward", {"author": "junk", "permlink": "p", "payout": "-1.000 SBD"}],
        ["comment_reward", {"author": "junk", "permlink": "p", "payout": "1e3 SBD"}],
        ["comment_reward", {"author": "junk", "permlink": "p", "payout": "1.000 XYZ"}],
        ["comment_reward", {"author": "junk", "permlink": "p", "payout": "١.000 SBD"}],
        ["comment_reward", {"author": "junk", "permlink": "p",
                            "payout": "99999999999999999999.999 SBD"}],
        ["comment_reward", {"author": "junk", "permlink": "p",
                            "payout": {"amount": "9" * 24, "precision": 3,
                                       "nai": "@@000000013"}}],
        ["comment_reward", {"author": "junk", "permlink": "p",
                            "payout": {"amount": "1000", "precision": 6,
                                       "nai": "@@000000013"}}],
        ["comment_reward", {"author": "junk", "permlink": "p", "payout": 1000}],
        ["transfer_to_vesting_completed", {"to_account": "x",
                                           "vesting_shares_received": "-1.000000 VESTS"}],
        ["delegate_vesting_shares", {"delegator": "a", "delegatee": "b",
                                     "vesting_shares": "1.000 STEEM"}],
        {"type": "vote_operation", "value": []},
        ["custom_json", {"id": MARKET_ID, "required_posting_auths": [{"a": 1}], "json": "{}"}],
        ["custom_json", {"id": MARKET_ID, "required_posting_auths": ["ok\x00"],
                         "json": json.dumps(_commit("okk"))}],
        ["vote"],  # unknown shapes: neither [name, value] nor {type, value}
        [1, {"voter": "x"}],
        {"value": {"voter": "x"}},
        "vote",
        None,
    ]
    for block in good:
        out = dict(block)
        n_bad = 0
        if rng.random() < 0.7:
            ops = rng.sample(bad_ops, rng.randint(1, 4))
            out["transactions"] = [*block["transactions"], {"operations": ops}]
            n_bad += len(ops)
        if rng.random() < 0.3:
            out["transactions"] = [*out["transactions"], rng.choice([5, "x", None, {}])]
            n_bad += 1
        if rng.random() < 0.3:
            ops = rng.sample(bad_ops, 2)
            out["virtual_ops"] = [*block["virtual_ops"], *ops]
            n_bad += 2
        yield json.dumps(out).encode(), n_bad
        for _ in range(rng.randint(0, 2)):
            yield rng.choice([
                b"{", b"not json", b"\xff\xfe\x00", b"[]", b"5", b'"block"', b"null",
                b'{"timestamp": "2017-01-01T00:00:00"}',
                b'{"block_num": "12", "timestamp": "2017-01-01T00:00:00"}',
                b'{"block_num": true, "timestamp": "2017-01-01T00:00:00"}',
                b'{"block_num": 99999999, "timestamp": 5}',
                b'{"block_num": 99999999, "timestamp": "yesterday"}',
                b'{"block_num": 99999999, "timestamp": "2017-01-01T00:00:00", '
                b'"transactions": "x"}',
                b'{"block_id": "zzzzzzzz", "timestamp": "2017-01-01T00:00:00"}',
                b'{"block_num": 1, "timestamp": "2017-01-01T00:00:00"}',  # goes backwards
                b'{"block_num": 1e309}', b'{"block_num": ' + b"9" * 30 + b"}",
                b"[" * 2000,
            ]), 1


def test_malformed_block_lines(tmp_path: Path) -> None:
    good = _good_blocks()
    lines = list(bad_block_lines(good))
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(line for line, _ in lines) + b"\n")
    ref, ref_rej = _report(good, tmp_path / "ref.db")
    got, rejections = _report(list(read_blocks([path])), tmp_path / "bad.db")
    assert ref_rej == {}
    assert got == ref
    assert sum(rejections.values()) == sum(n for _, n in lines), rejections


def test_regression_repeated_backward_blocks_are_each_recorded(tmp_path: Path) -> None:
    """Was: two copies of one out-of-order block after the same block shared a database key
    (last block, -2, its number) and the second rejection vanished. Now keyed by rank."""
    good = _good_blocks()
    stale = dict(good[0])
    blocks = [*good[:3], stale, stale, *good[3:]]
    store = new_store(f"sqlite:///{tmp_path / 'dup.db'}")
    ingest(store, blocks)
    ingest(new_store(store.engine), blocks)  # re-reading the same stream adds nothing
    assert orjson.loads(report_json(store))["rejections"] == {"out_of_order_block": 2}


# --- market-level bad cases --------------------------------------------------------------
def _cj(who: str | list, payload: dict | str) -> list:
    signers = who if isinstance(who, list) else [who]
    return ["custom_json", {"required_auths": [], "required_posting_auths": signers,
                            "id": MARKET_ID,
                            "json": payload if isinstance(payload, str) else json.dumps(payload)}]


def market_abuse(s: Stream) -> Counter:
    """Well-formed ops the market must refuse, around the healthy market → expected reasons."""
    a, p = "author0", "post-0"
    s.post(0, "gone", "deleted")
    s.post(0, "author9", "reply", parent="author0")
    s.tx(3, ["delete_comment", {"author": "gone", "permlink": "deleted"}])
    s.tx(10, commit_op("mallory", "nobody", "missing", 5000))  # unknown post
    s.tx(10, commit_op("mallory", "gone", "deleted", 5000))  # deleted post
    s.tx(10, commit_op("mallory", "author9", "reply", 5000))  # a reply
    s.tx(11, commit_op("author0", a, p, 5000))  # own post
    s.tx(WINDOW + 3, commit_op("latecomer", a, p, 9000))  # after the window
    s.tx(12, commit_op("early", a, p, 9000))
    s.tx(WINDOW - 3, reveal_op_("early", a, p, 9000))  # too early
    s.tx(WINDOW + 7, reveal_op_("mallory", a, p, 9000))  # reveals a commitment it never made
    # the copycat republishes curator0's hash: it can never open it
    s.tx(70, _cj("copycat", commit_payload(CHAIN_ID, a, p, "curator0", 9000,
                                           salt_of("curator0", p))))
    s.tx(REVEAL_AT + 30, _cj("copycat", reveal_payload(a, p, 9000, salt_of("curator0", p))))
    s.tx(REVEAL_AT + 33, reveal_op_("early", a, p, 9100))  # mismatched
    s.tx(REVEAL_AT + 300, reveal_op_("curator0", a, p, 9000))  # duplicate of the valid one
    s.tx(REVEAL_AT + 6 * 3600, reveal_op_("early", a, p, 9000))  # too late
    s.tx(3 * 86400, _cj("late", {"v": 1, "ops": [
        reveal_payload(a, p, 1, salt_of("late", p)), reveal_payload(a, p, 2, bytes(32))]}))
    # absurd rshares: refused by the adapter, or by the engine when the totals would overflow
    s.vop(20, ["effective_comment_vote", {"voter": "whale", "author": a, "permlink": "x",
                                          "rshares": 2**57}])
    s.post(0, "flood", "p")
    for i in range(65):
        s.vop(30, ["effective_comment_vote", {"voter": f"bot{i}", "author": "flood",
                                              "permlink": "p", "rshares": 2**56}])
    s.tx(7 * 86400 + 100, commit_op("mallory", a, p, 5000))  # the market is settled
    return Counter({"unknown_post": 1, "deleted_post": 1, "not_a_market": 1, "own_post": 1,
                    "commit_window_closed": 1, "reveal_too_early": 1, "no_commitment": 3,
                    "hash_mismatch": 2, "already_revealed": 1, "reveal_too_late": 1,
                    "malformed_op": 1, "absurd_rshares": 1, "market_settled": 1})


def reveal_op_(who: str, author: str, permlink: str, prediction: int) -> list:
    return _cj(who, reveal_payload(author, permlink, prediction, salt_of(who, permlink)))


def test_market_abuse_is_refused_with_its_reason_and_costs_nothing(tmp_path: Path) -> None:
    s = market_stream()
    expected = market_abuse(s)
    state = run_memory(s.blocks())
    assert Counter(r.reason for r in state.rejections) == expected
    assert settled_view(state, VALID_CURATORS) == settled_view(run_memory(
        market_stream().blocks()))
    # the same through the Ingester into SQLite
    got, rejections = _report(s.blocks(), tmp_path / "abuse.db")
    ref, _ = _report(market_stream().blocks(), tmp_path / "ref.db")
    assert rejections == dict(expected)
    for m in got["markets"]:  # the abusers' unrevealed commits settle as misses, beside
        m["predictions"] = [x for x in m["predictions"] if x["predictor"] in VALID_CURATORS]
        m["n_commits"] = len(m["predictions"])  # (which n_commits counts too)
    assert [m for m in got["markets"] if m["author"] != "flood"] == ref["markets"]


def test_regression_signer_that_is_not_an_account_name(tmp_path: Path) -> None:
    """Was: a signer with a lone surrogate (or NUL, or any non-name) became a predictor row
    and the SQLite flush died with UnicodeEncodeError. Now: rejected as `signers`."""
    s = Stream()
    s.post(0, "author0", "post-0")
    for i, who in enumerate(["al\ud800ce", "al\x00ce", "ALICE", "", "x" * 40]):
        s.tx(60 + 3 * i, _cj(who, _commit(who if who.isascii() else "x", "author0", "post-0")))
    _, rejections = _report(s.blocks(), tmp_path / "signer.db")
    assert rejections == {"signers": 5}


def test_regression_absurd_amounts_and_sloppy_numbers(tmp_path: Path) -> None:
    """Was: a payout of 10^23 milli-SBD reached the INTEGER column and the flush died with
    OverflowError; "١٢.٣٤٥", float rshares and "1_000" were silently accepted."""
    s = Stream()
    s.post(0, "author0", "post-0")
    s.vop(6, ["effective_comment_vote", {"voter": "v", "author": "author0",
                                         "permlink": "post-0", "rshares": 1.5}])
    s.vop(9, ["effective_comment_vote", {"voter": "w", "author": "author0",
                                         "permlink": "post-0", "rshares": "1_000"}])
    s.tx(60, reveal_op_("alice", "author0", "post-0", 1)[:1] + [{
        **reveal_op_("alice", "author0", "post-0", 1)[1],
        "json": json.dumps({"v": 1, "op": "reveal", "author": "author0", "permlink": "post-0",
                            "prediction": "١٢.٣٤٥", "salt": "00" * 32})}])
    s.vop(7 * 86400, ["comment_reward", {"author": "author0", "permlink": "post-0",
                                         "payout": "99999999999999999999.999 SBD"}])
    s.vop(7 * 86400 + 3, payout_op("author0", "post-0", 1000))
    got, rejections = _report(s.blocks(), tmp_path / "amounts.db")
    assert rejections == {"malformed_op": 3, "bad_prediction": 1}
    assert got["markets"][0]["final_payout"] == 1000  # the readable payout still settles


def test_ops_of_unknown_shape_are_recorded() -> None:
    s = Stream()
    s.tx(0, ["vote"], [1, {}], {"value": {}}, "vote", None, post_op("author0", "post-0"))
    state = run_memory(s.blocks())
    assert [r.reason for r in state.rejections] == ["malformed_op"] * 5
    assert ("author0", "post-0") in state.posts


def test_regression_block_fields_that_cannot_be_stored(tmp_path: Path) -> None:
    """Was: a block number beyond 64 bits (OverflowError) or a block id with a lone surrogate
    (UnicodeEncodeError) reached the checkpoint row and killed the flush. Now: the block is
    recorded as malformed and the good blocks around it are kept."""
    good = _good_blocks()
    t = good[0]["timestamp"]
    bad = [{"block_num": 2**70, "timestamp": t}, {"block_num": 2**32, "timestamp": t},
           {"block_num": 5, "block_id": "00000005\ud800", "timestamp": t},
           {"block_num": 5, "previous": "\x00", "timestamp": t},
           {"block_num": 5, "block_id": {"a": 1}, "timestamp": t},
           {"block_id": "-0000001", "timestamp": t}]
    ref, _ = _report(good, tmp_path / "ref.db")
    got, rejections = _report([*bad, *good], tmp_path / "bad.db")
    assert got == ref
    assert rejections == {"malformed_block": len(bad)}


# --- hypothesis: every op the adapter reads, with arbitrary field values ------------------
NAMES = st.sampled_from(["alice", "bob", "carol", "curator0"])
AMOUNTS = st.sampled_from(["1.000 SBD", "0.000 SBD", "1.000 HBD", "3.000 STEEM", "1.000000 VESTS",
                           "999999999999.999999 VESTS", "1000000000000.000 SBD",
                           "-1.000 SBD", "1.0 SBD", "1.000 sbd", ""]) | st.builds(
    lambda a, p, n: {"amount": a, "precision": p, "nai": n},
    st.integers(-1, 10**19).map(str) | st.integers(-1, 10**19), st.sampled_from([3, 6, "3"]),
    st.sampled_from(["@@000000013", "@@000000021", "@@000000037", "@@x"]))
FIELD_VALUES = {
    "author": NAMES, "permlink": st.just("p"), "voter": NAMES, "parent_author": st.just(""),
    "parent_permlink": st.just("tag"), "rshares": st.integers(-2**60, 2**60),
    "comment_author": NAMES, "comment_permlink": st.just("p"), "delegator": NAMES,
    "delegatee": NAMES, "account": NAMES, "from_account": NAMES, "to_account": NAMES,
    "curator": NAMES, "producer": NAMES, "new_account_name": NAMES, "creator": NAMES,
    "payout_must_be_claimed": st.booleans(), "id": st.just(MARKET_ID),
    "required_posting_auths": st.lists(NAMES, max_size=2), "required_auths": st.just([]),
    "json": st.builds(lambda who, p: json.dumps(_commit(who, "bob", "p")), NAMES, NAMES),
    "extensions": st.just([[0, {"beneficiaries": [{"account": "carol", "weight": 100}]}]]),
}
OP_FIELDS = {
    "comment": ["author", "permlink", "parent_author", "parent_permlink"],
    "comment_options": ["author", "permlink", "max_accepted_payout", "extensions"],
    "delete_comment": ["author", "permlink"],
    "vote": ["voter", "author", "permlink"],
    "effective_comment_vote": ["voter", "author", "permlink", "rshares"],
    "custom_json": ["id", "required_auths", "required_posting_auths", "json"],
    "comment_reward": ["author", "permlink", "payout", "total_payout_value",
                       "curator_payout_value", "comment_author", "comment_permlink"],
    "comment_payout_update": ["author", "permlink"],
    "delegate_vesting_shares": ["delegator", "delegatee", "vesting_shares"],
    "withdraw_vesting": ["account", "vesting_shares"],
    "fill_vesting_withdraw": ["from_account", "to_account", "withdrawn", "deposited"],
    "transfer_to_vesting_completed": ["to_account", "vesting_shares_received"],
    "claim_reward_balance": ["account", "reward_vests"],
    "curation_reward": ["curator", "reward", "payout_must_be_claimed"],
    "author_reward": ["author", "vesting_payout", "payout_must_be_claimed"],
    "producer_reward": ["producer", "vesting_shares"],
    "account_created": ["new_account_name", "creator", "initial_vesting_shares",
                        "initial_delegation"],
}


@st.composite
def any_op(draw: st.DrawFn) -> list:
    name = draw(st.sampled_from(sorted(OP_FIELDS)))
    value = {}
    for key in OP_FIELDS[name]:
        roll = draw(st.integers(0, 9))
        if roll == 0:
            continue  # missing
        good = FIELD_VALUES.get(key, AMOUNTS)
        value[key] = draw(JSON if roll == 1 else good)
    if draw(st.booleans()):
        return [name, value]
    return {"type": f"{name}_operation", "value": value}


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(any_op(), min_size=1, max_size=14), t=st.sampled_from([60, REVEAL_AT]))
def test_any_op_with_any_fields_never_escapes_the_pipeline(ops: list, t: int) -> None:
    """Adapter → market → Store on in-memory SQLite, whatever the fields: nothing raises,
    every op the adapter could not read is stored as a rejection at its own position (none
    is lost), and ingesting the same blocks again changes nothing."""
    s = Stream()
    s.post(0, "bob", "p")
    for op in ops:
        s.tx(t, op)
    s.vop(t, ops[0])  # payouts and votes also arrive as virtual ops
    blocks = list(s.blocks())
    unreadable = {(rec.pos, rec.reason) for block in blocks
                  for rec in Adapter().block(block).records if isinstance(rec, BadOp)}
    store = new_store()
    ingest(store, blocks)
    first = report_json(store)
    assert isinstance(orjson.loads(first), dict)
    with store.engine.connect() as conn:
        stored = {((b, trx, op), reason) for b, trx, op, reason in conn.execute(
            select(schema.rejections.c.block, schema.rejections.c.trx, schema.rejections.c.op,
                   schema.rejections.c.reason))}
    assert unreadable <= stored
    ingest(store, blocks)
    assert report_json(store) == first


def test_regression_vesting_sums_beyond_64_bits(tmp_path: Path) -> None:
    """Was: each amount was in range, but a dozen of them summed past 2^63 and the flush died
    with OverflowError. Now: the op that would pass the limit is refused as absurd_vests."""
    huge = "999999999999.999999 VESTS"
    s = Stream()
    for i in range(12):
        s.tx(3 * i, ["transfer_to_vesting_completed", {"to_account": "bob",
                                                       "vesting_shares_received": huge}])
        s.tx(3 * i, ["delegate_vesting_shares", {"delegator": f"giver{i:02d}",
                                                 "delegatee": "bob", "vesting_shares": huge}])
        s.vop(3 * i, ["fill_vesting_withdraw", {"from_account": "carol", "to_account": "carol",
                                                "withdrawn": huge, "deposited": "1.000 STEEM"}])
    # both deltas of one op refused: two rejection rows at the same position
    s.tx(100, ["account_created", {"new_account_name": "bob", "creator": "maker",
                                   "initial_vesting_shares": huge, "initial_delegation": huge}])
    # (Hive's virtual ops: transfer_to_vesting_completed and account_created count on Hive)
    _, rejections = _report(s.blocks(), tmp_path / "vests.db", MarketConfig(chain="hive"))
    assert rejections == {"absurd_vests": 3 * 8 + 2}  # 4 fit under 2^62, the other 8 do not
