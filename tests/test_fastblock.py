"""The replay's fast path and kept rows change nothing but speed.

- every line the fast path (indexer/fastblock.py) decodes gives the very records the dict
  path gives (orjson → standard-library fallback → Adapter.block): on the bundled real
  hive blocks, on the bad-input generators of test_bad_input and on fuzzed lines;
- every field a handler of the adapter reads is in ``indexer.ops.FIELDS_READ``;
- a replay keeping rows between batches (``Ingester(keep_rows=True)``), through the fast
  path or not, with any batch size and however small its memory bound, writes the same
  database as the plain replay.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.market import MarketConfig
from curation.records import Block
from curation.vesting import HIVE, STEEM
from indexer.blockfile import BadLine, _reread, read_blocks
from indexer.fastblock import FastDecoder
from indexer.ingest import Ingester
from indexer.ops import FIELDS_READ, WHO_FIELDS, Adapter, BadBlock
from tests.dbdump import dump
from tests.helpers import new_store, report_json
from tests.test_bad_input import bad_block_lines, garbage_stream
from tests.test_properties import CONFIGS, random_stream

DATA = Path(__file__).parent / "data"


def dict_path(line: bytes, adapter: Adapter) -> Block | str:
    """What the ingester makes of a line without the fast path: a Block, or why not."""
    try:
        raw: Any = orjson.loads(line)
    except orjson.JSONDecodeError:
        if not line.strip():
            return "blank"
        raw = _reread(line, "f", 1, ValueError("x"))
        if isinstance(raw, BadLine):
            return "bad line"
    try:
        return adapter.block(raw)
    except BadBlock:
        return "bad block"


def same(lines: list[bytes], chain: str = STEEM, market_id: str = "curation_market") -> int:
    """Asserts the fast path agrees with the dict path on every line it decodes; returns how
    many it decoded."""
    adapter = Adapter(market_id, chain=chain)
    fast = FastDecoder(adapter)
    n = 0
    for line in lines:
        got = fast.decode(line)
        if got is not None:
            assert got == dict_path(line, adapter), line[:300]
            n += 1
    return n


def _lines(blocks: list[dict]) -> list[bytes]:
    return [json.dumps(b).encode() for b in blocks]


def test_real_hive_blocks_both_encodings() -> None:
    """hived's own recorded blocks (block_api ``{type, value}`` ops, some condenser ones
    mixed in): the lines the fast path takes agree, and it takes most of them."""
    with gzip.open(DATA / "hive5m_raw_blocks.jsonl.gz", "rb") as fh:
        lines = fh.read().splitlines()
    for chain in (STEEM, HIVE):
        assert same(lines, chain) >= 0.9 * len(lines)
    condenser = [orjson.dumps(_condenser(orjson.loads(line))) for line in lines]
    for chain in (STEEM, HIVE):
        assert same(condenser, chain) >= 0.9 * len(lines)


def _condenser(block: dict) -> dict:
    for trx in block.get("transactions") or []:
        trx["operations"] = [[op["type"].removesuffix("_operation"), op["value"]]
                             if isinstance(op, dict) else op for op in trx["operations"]]
    return block


def test_bad_input_generators_agree() -> None:
    """The garbage of test_bad_input (bad payloads, lone surrogates, NULs, bad block lines)
    read both ways."""
    stream, _, _ = garbage_stream(300, 3)
    lines = _lines(stream.blocks())
    lines += [line for line, _ in bad_block_lines(stream.blocks()[:40])]
    assert same(lines) >= len(stream.blocks()) // 2


def test_random_market_streams_agree() -> None:
    for seed in range(20):
        blocks = random_stream(seed, 6, 5).blocks()
        assert same(_lines(blocks)) == len(blocks)


# --- fuzzed lines ----------------------------------------------------------------------
TEMPLATE = {
    "block_num": 17_000_001, "block_id": "01036641" + "ab" * 16, "previous": "01036640" + "cd" * 16,
    "timestamp": "2017-11-07T01:25:12", "witness": "w",
    "transactions": [
        {"operations": [["vote", {"voter": "alice", "author": "bob", "permlink": "p",
                                  "weight": 10000}]]},
        {"operations": [["comment", {"parent_author": "", "parent_permlink": "c",
                                     "author": "bob", "permlink": "p", "title": "t",
                                     "body": "b", "json_metadata": "{}"}],
                        ["comment_options", {"author": "bob", "permlink": "p",
                                             "max_accepted_payout": "1000.000 SBD",
                                             "extensions": [[0, {"beneficiaries": [
                                                 {"account": "x", "weight": 100}]}]]}]]},
        {"operations": [["custom_json", {"required_auths": [],
                                         "required_posting_auths": ["carol"],
                                         "id": "curation_market",
                                         "json": '{"commit": {"author": "bob"}}'}],
                        ["custom_json", {"required_auths": [], "required_posting_auths": ["d"],
                                         "id": "follow", "json": "[]"}]]},
        {"operations": [["transfer", {"from": "a", "to": "b", "amount": "1.000 STEEM",
                                      "memo": "m"}],
                        ["claim_reward_balance", {"account": "alice",
                                                  "reward_steem": "0.000 STEEM",
                                                  "reward_sbd": "0.000 SBD",
                                                  "reward_vests": "1.000000 VESTS"}],
                        ["transfer_to_vesting", {"from": "a", "to": "", "amount": "1.000 STEEM"}],
                        ["delegate_vesting_shares", {"delegator": "a", "delegatee": "b",
                                                     "vesting_shares": "5.000000 VESTS"}],
                        ["account_create", {"fee": "3.000 STEEM", "creator": "a",
                                            "new_account_name": "newbie"}]]},
    ],
    "virtual_ops": [
        ["effective_comment_vote", {"voter": "alice", "author": "bob", "permlink": "p",
                                    "rshares": 123456, "weight": 1}],
        ["producer_reward", {"producer": "w", "vesting_shares": "300.000000 VESTS"}],
        ["comment_reward", {"author": "bob", "permlink": "p", "payout": "1.000 SBD"}],
        ["curation_reward", {"curator": "alice", "reward": "1.000000 VESTS",
                             "payout_must_be_claimed": False}],
        ["fill_vesting_withdraw", {"from_account": "a", "to_account": "b",
                                   "withdrawn": "1.000000 VESTS", "deposited": "1.000 STEEM"}],
        ["transfer_to_vesting_completed", {"from_account": "a", "to_account": "b",
                                           "hive_vested": "1.000 STEEM",
                                           "vesting_shares_received": "1.000000 VESTS"}],
        ["account_created", {"new_account_name": "n", "creator": "a",
                             "initial_vesting_shares": "1.000000 VESTS",
                             "initial_delegation": "0.000000 VESTS"}],
    ],
}
ODD_TEXT = ["", "a", "Bob", "a" * 257, "a\x00b", "é", "\ud800", "a b", "tab\t", "😀",
            "curation_market", "follow"]
ODD_NUMBERS = [0, -1, 1, 2**56, 2**56 + 1, -(2**56) - 1, 2**63, 2**64, 2**64 + 1, 2**70,
               -(2**70), 10**30, 1.0, 1.5, 1e300, float("nan"), float("inf")]
ODD_AMOUNTS = ["1.000 SBD", "1.000000 VESTS", "0.000000 VESTS", "1 VESTS", "1.0000000 VESTS",
               "-1.000 STEEM", " 1.000 STEEM", "1.000 HBD", "99999999999999.000000 VESTS",
               {"amount": "1000", "precision": 3, "nai": "@@000000013"},
               {"amount": 10**6, "precision": 6, "nai": "@@000000037"},
               ["1000", 3, "@@000000021"]]
KEYS = sorted({k for keys in FIELDS_READ.values() for k in keys} | set(WHO_FIELDS)
              | {"weight", "memo", "extensions"})
NAMES = sorted(FIELDS_READ) + ["transfer", "pow", "no_such_op", "vote_operation", ""]


def _odd(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(7 if depth < 2 else 5)
    if pick == 0:
        return rng.choice(ODD_TEXT)
    if pick == 1:
        return rng.choice(ODD_NUMBERS)
    if pick == 2:
        return rng.choice(ODD_AMOUNTS)
    if pick == 3:
        return rng.choice([True, False, None])
    if pick == 4:
        return rng.choice(ODD_TEXT[:4])
    if pick == 5:
        return [_odd(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice(KEYS): _odd(rng, depth + 1) for _ in range(rng.randrange(3))}


def _ops(block: dict) -> list[tuple[list, int]]:
    """(list, index) of every op of the block."""
    out = [(trx["operations"], i) for trx in block["transactions"]
           for i in range(len(trx["operations"]))]
    return out + [(block["virtual_ops"], i) for i in range(len(block["virtual_ops"]))]


def mutate(rng: random.Random) -> bytes:
    """The template block with a few of its ops, fields or header keys made odd, and
    sometimes its text: a duplicate key, an infinite number, bytes that are not UTF-8,
    deep nesting, an integer beyond 64 bits, a cut line."""
    block = json.loads(json.dumps(TEMPLATE))
    ops = _ops(block)
    wrapped = []
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(ops))
        where, j = ops[i]
        op = where[j]
        how = rng.randrange(7)
        if how == 0 and isinstance(op[1], dict):
            op[1][rng.choice(KEYS)] = _odd(rng)
        elif how == 1 and isinstance(op[1], dict) and op[1]:
            op[1].pop(rng.choice(sorted(op[1])))
        elif how == 2 and op:
            op[0] = rng.choice(NAMES)
        elif how == 3 and len(op) > 1:
            op[1] = _odd(rng)
        elif how == 4:
            op.append(_odd(rng))
        elif how == 5:
            wrapped.append(i)
        else:
            block[rng.choice(["block_num", "_block_num", "block_id", "previous", "timestamp",
                              "transactions", "virtual_ops"])] = _odd(rng)
    if wrapped and rng.random() < 0.5:  # the whole block in block_api encoding
        wrapped = list(range(len(ops)))
    for i in wrapped:  # block_api encoding for these ops
        where, j = ops[i]
        op = where[j]
        if isinstance(op, list) and len(op) == 2 and isinstance(op[0], str):
            where[j] = {"type": f"{op[0]}_operation", "value": op[1]}
    line = json.dumps(block, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    text = rng.randrange(10)
    if text == 1:  # a duplicate key: the last one counts, in both paths
        line = line.replace(b'"voter": "alice"', b'"voter": "x", "voter": "alice"', 1)
    elif text == 2:
        line = line.replace(b'"weight": 10000', b'"weight": 1e309', 1)
    elif text == 3:
        line = line.replace(b'"memo": "m"', b'"memo": "\xff"', 1)
    elif text == 4:
        line = line.replace(b'"body": "b"', b'"body": ' + b"[" * 1100 + b"]" * 1100, 1)
    elif text == 5:
        line = line[:rng.randrange(len(line) + 1)]
    elif text == 6:
        line = line.replace(b'"rshares": 123456', b'"rshares": 123456789012345678901234', 1)
    elif text == 7:
        line = line.replace(b'"weight": 10000', b'"weight": 123456789012345678901234', 1)
    return line


@settings(deadline=None, max_examples=1500)
@given(seed=st.integers(0, 2**64), chain=st.sampled_from([STEEM, HIVE]))
def test_fuzzed_lines_agree(seed: int, chain: str) -> None:
    same([mutate(random.Random(seed))], chain)


def test_the_fuzzer_reaches_both_paths() -> None:
    """Guards the property above against testing nothing: many mutated lines are decoded by
    the fast path, many are handed back, and the decoded ones hold bad ops too."""
    fast, adapter = FastDecoder(Adapter()), Adapter()
    lines = [mutate(random.Random(seed)) for seed in range(400)]
    decoded = [b for b in map(fast.decode, lines) if b is not None]
    assert 50 <= len(decoded) <= 350
    assert sum(type(r).__name__ == "BadOp" for b in decoded for r in b.records) >= 30
    assert sum(dict_path(line, adapter) in ("bad line", "bad block") for line in lines) >= 20


# --- the field table -------------------------------------------------------------------
class Reads(dict):
    """A dict that remembers every key asked of it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.asked.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)


@settings(deadline=None, max_examples=300)
@given(chain=st.sampled_from([STEEM, HIVE]), data=st.data())
def test_every_field_a_handler_reads_is_in_the_table(chain: str, data: st.DataObject) -> None:
    adapter = Adapter(chain=chain)
    name = data.draw(st.sampled_from(sorted(adapter.handlers)))
    keys = sorted(set(FIELDS_READ[name]) | set(WHO_FIELDS) | {"extra", "nested"})
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    value = Reads({k: _odd(rng) for k in keys if rng.random() < 0.7})
    records: list = []
    adapter._op((1, 0, 0), [name, value], records)
    assert value.asked <= set(FIELDS_READ[name]) | set(WHO_FIELDS), (name, value.asked)


def test_every_handled_op_has_a_table_entry() -> None:
    for chain in (STEEM, HIVE):
        assert set(Adapter(chain=chain).handlers) <= set(FIELDS_READ)


# --- kept rows -------------------------------------------------------------------------
_trims: list[int] = []


def _replay(path: Path, cfg: MarketConfig, batch: int, keep: bool, fast: bool,
            max_rows: int | None = None) -> tuple[bytes, dict]:
    store = new_store(cfg=cfg)
    ing = Ingester(store, cfg, batch_blocks=batch, keep_rows=keep)
    if max_rows is not None:
        assert ing.kept is not None
        ing.kept.max_rows = max_rows
    ing.run(read_blocks([path], ing.adapter if fast else None))
    if ing.kept is not None and max_rows is not None:
        assert ing.kept.evicted + ing.kept.trims > 0  # the bound was really exercised
        _trims.append(ing.kept.trims)
    return report_json(store), dump(store.engine)


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 2**32), posts=st.integers(1, 8), curators=st.integers(1, 5),
       cfg=st.sampled_from(CONFIGS), batch=st.integers(1, 40),
       max_rows=st.sampled_from([None, 2, 6]))
def test_kept_rows_and_the_fast_path_change_nothing(tmp_path_factory: Any, seed: int,
                                                    posts: int, curators: int,
                                                    cfg: MarketConfig, batch: int,
                                                    max_rows: int | None) -> None:
    path = tmp_path_factory.mktemp("kept") / "blocks.jsonl"
    path.write_bytes(b"\n".join(_lines(random_stream(seed, posts, curators).blocks())) + b"\n")
    plain = _replay(path, cfg, 3, keep=False, fast=False)
    kept = _replay(path, cfg, batch, keep=True, fast=True,
                   max_rows=max_rows if max_rows and posts > 2 else None)
    assert kept == plain


def test_kept_rows_trimmed_to_the_oldest_half(tmp_path: Path) -> None:
    """The hard bound (``max_rows``) lets the oldest posts go, with their votes and commits,
    before they are paid: still the same database."""
    path = tmp_path / "blocks.jsonl"
    path.write_bytes(b"\n".join(_lines(random_stream(7, 8, 5).blocks())) + b"\n")
    cfg = CONFIGS[2]
    _trims.clear()
    assert _replay(path, cfg, 1, keep=True, fast=True, max_rows=3) == \
        _replay(path, cfg, 3, keep=False, fast=False)
    assert _trims and _trims[0] >= 3


def test_kept_rows_resume_and_rerun(tmp_path: Path, db_url: Any) -> None:
    """Stopping anywhere and resuming, or replaying the same file again, with kept rows:
    the database is the one a single plain run writes (a resumed run's rows come from the
    database, the held ones from memory)."""
    blocks = random_stream(11, 8, 5).blocks()
    whole = tmp_path / "all.jsonl"
    whole.write_bytes(b"\n".join(_lines(blocks)) + b"\n")
    cfg = CONFIGS[2]
    ref = _replay(whole, cfg, 4, keep=False, fast=False)
    store = new_store(db_url("resumed"), cfg)
    for cut in (len(blocks) // 3, 2 * len(blocks) // 3, len(blocks)):
        part = tmp_path / f"part{cut}.jsonl"
        part.write_bytes(b"\n".join(_lines(blocks[:cut])) + b"\n")
        ing = Ingester(new_store(store.engine, cfg), cfg, batch_blocks=5, keep_rows=True)
        ing.run(read_blocks([part], ing.adapter))
    ing = Ingester(new_store(store.engine, cfg), cfg, batch_blocks=5, keep_rows=True)
    ing.run(read_blocks([whole], ing.adapter))  # the whole file again: nothing changes
    assert (report_json(store), dump(store.engine)) == ref
