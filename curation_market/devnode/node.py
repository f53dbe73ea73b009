"""A small Steem/Hive node for tests and demos: recorded blocks over real JSON-RPC 2.0 on loopback.

Why: the daemon, the curator client and the catch-up benchmark must talk to something that
behaves like ``hived`` through beem's real code paths (appbase detection, batched calls, the
``call`` wrapper of condenser_api, TaPoS, signatures), without a 400 GB node. This server serves
blocks recorded from the real chain (or produced by ``import-posts``), advances its head and its
last irreversible block (LIB) over time, includes broadcast transactions in its next block, and
can serve micro-forks.

Python API (for tests; the daemon engineer's tests use this)::

    from curation_market.devnode.node import TestNode

    node = TestNode.from_files(["tests/data/hive5m_raw_blocks.jsonl.gz"],
                               ops=["tests/data/hive5m_ops.jsonl.gz"],
                               head=1000, lag=20, interval=None)   # None: only explicit steps
    with node:                      # binds 127.0.0.1 on an ephemeral port, serves in a thread
        url = node.url              # "http://127.0.0.1:PORT"
        node.advance(5)             # produce 5 blocks now (head += 5, LIB follows at head - lag)
        node.set_irreversible(990)  # LIB jumps forward (never beyond head, never backwards)
        node.fork(depth=2)          # the next 2 produced blocks are provisional siblings that
                                    # the block after them replaces (see "Micro-forks")
        key = node.add_account("alice")        # a throwaway key pair; returns the posting WIF
        node.head, node.irreversible, node.block(n)   # state and the block as served now
        node.included                            # [(block_num, trx_index, trx_id)] of broadcasts
        node.serve_as("steemd", batch_limit=50, history_lag=30, posts=dump)  # see Server

``interval=S`` (seconds) starts a producer thread: one block every S seconds (0.05 in tests,
3 in a demo). ``fork_every=N`` makes the producer start a ``fork(fork_depth)`` at every block
number divisible by N.

The same controls over HTTP (for a node in another process), as JSON-RPC methods:
``testnode_api.advance {"count": n}``, ``testnode_api.set_irreversible {"block_num": n}``,
``testnode_api.fork {"depth": d}``, ``testnode_api.pause {}``, ``testnode_api.resume {}``,
``testnode_api.state {}`` (head, irreversible, head time, included broadcasts) and
``testnode_api.add_account {"name": a, "posting_key": "STM..."}``. hived's own
``debug_node_api.debug_generate_blocks {"count": n}`` advances the head too.

Command line:
``curation-market devnode --blocks FILE [--ops FILE] --port N [--interval S]`` (or
``python -m curation_market.devnode``, the same options)
(``--port 0`` picks a free port; the first line printed is the URL). ``--demo`` serves the
demo's chain instead (the real block-17M Steem posts with simulated curators, with their
accounts and the 17M globals); ``--step K`` produces K blocks per interval (fast-forward).

What it serves (the methods beem calls, read from beem 0.24's source):

- ``database_api.get_config`` / ``get_dynamic_global_properties`` / ``get_version`` /
  ``find_accounts``; ``condenser_api.*`` equivalents (``get_config``, ``get_version``,
  ``get_dynamic_global_properties``, ``get_block``, ``get_block_header``, ``get_ops_in_block``,
  ``get_accounts``, ``get_key_references``, ``broadcast_transaction``,
  ``broadcast_transaction_synchronous``), whether sent as ``condenser_api.x`` with a list or as
  ``call`` with ``[api, method, args]``;
- ``block_api.get_block`` / ``get_block_header`` / ``get_block_range``;
- ``account_history_api.get_ops_in_block`` (``include_reversible`` honoured, as in hived: without
  it a block above the LIB has no ops) and ``enum_virtual_ops`` (ranges, ``group_by_block``,
  paging by ``operation_begin``/``limit``; the op-type ``filter`` is refused, not ignored);
- ``account_history_api.get_account_history`` and ``condenser_api.get_account_history``: each
  account's history over the recorded blocks and virtual ops (not broadcasts), with hived's
  operation filter (``operation_filter_low``/``_high``, at most 2000 entries scanned per call,
  then ``set start=N``) and limits; a Steem node answers as steemd 0.23 does (no filter: the
  fields are ignored, numbering from 1, ``start >= limit``, limit up to 10000);
- ``network_broadcast_api.broadcast_transaction``; ``account_by_key_api.get_key_references``;
  ``jsonrpc.get_methods``.

Batched requests (a JSON array) are answered in order. Unknown APIs and methods get hived's
error texts (``Could not find API x`` / ``Could not find method y``, code -32601), which beem
turns into ``ApiNotSupported`` / ``NoMethodWithName``.

Encodings: ``block_api``/``database_api``/``account_history_api`` answer in the appbase
encoding (``{"type": "vote_operation", "value": ...}``, NAI amounts), ``condenser_api`` in the
legacy one (``["vote", {...}]``, ``"1.000 HIVE"``), whatever the block file holds. The
conversion is structural (op name suffix and amounts); that is all the two encodings differ in
for the ops the market reads.

The chain: blocks from ``first`` (the lowest recorded number) up to ``head`` exist. Numbers the
block file skips are served as empty blocks whose ids keep the ``previous`` links intact (a
skipped block's id is taken from the next recorded block's ``previous`` where it names it), with
timestamps interpolated at 3 s per block; virtual ops from ``--ops`` are served for them too.
Beyond the last recorded block the node produces empty blocks, 3 s of chain time apart.
Timestamps are chain time from the recording, never wall-clock time.

Notes for followers (the daemon): blocks below ``first`` do not exist here (``get_block``
answers ``{}``), unlike a real chain that starts at block 1, so start following at ``first``
(``testnode_api.state`` and the startup line tell it; the demo chain starts at 15,249,310).
Timestamps being recorded chain time, a wall-clock staleness check sees this node's head as
years old; ``account_history_api.get_ops_in_block`` needs ``include_reversible`` above the LIB.

Virtual ops of a block: the ``virtual_ops`` list on its line (``trx_in_block`` 4294967295, in
line order) plus the virtual ops of ``--ops`` files (account-history records). Listed after the
block's transaction ops, in that order. A block whose recording has no ``producer_reward`` gets
one at the end (its witness; the amount of the nearest earlier recorded one, else 0 VESTS):
every real block has one, and the daemon refuses a block's ops without it.

Node programs and deployments (``serve_as``, ``--server/--posts/--batch-limit/--history-lag``):
``hived`` (the default) or ``steemd`` 0.23 answers (see :class:`Server`), a jussi front with its
batch limit and its error, an account-history backend lagging the block backend, and
``condenser_api.get_active_votes`` from a post dump (optionally cleared at payout, as steemd's
CLEAR_VOTES build does). ``node.requests``, ``node.calls``, ``node.largest_batch`` and
``node.refused_batches`` count what was asked.

Broadcasts are checked the way hived does for what the market needs: decodable with beembase,
TaPoS (``ref_block_num``/``ref_block_prefix`` name a served block), expiration after the head
time and at most an hour ahead, no duplicate, ``custom_json`` shape (id at most 32 chars, json
valid, at most 8192 bytes, at least one authority), and the signatures: the keys recovered from
them (with the node's chain id) must satisfy the posting (or active/owner) authority of every
required account in the node's account table. A valid transaction goes into the next produced
block, after that block's recorded transactions, with its real transaction id.

A faulty node: ``misreport(num)`` serves block ``num`` under a wrong id (the blocks around it
unchanged, so the next block's ``previous`` names the true one) until ``misreport(num, False)``:
what a follower stores from it is wrong, and an honest node later disagrees.

Micro-forks: ``fork(depth)`` makes the next ``depth`` produced blocks provisional: served with
other ids (the ``previous`` chain stays consistent inside the branch) and without their last
recorded transaction. Producing the block after them switches to the canonical branch at once:
the canonical versions of those blocks plus the new one (head moves by ``depth + 1``, as when a
node switches to a longer fork). The LIB never enters an open fork. Broadcast transactions
included in a provisional block are in its canonical version too.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import os
import random
import re
import signal
import struct
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from curation.chains import CHAIN_IDS, STEEM_CHAIN_ID
from indexer.amounts import NAIS, SYMBOLS
from indexer.blockfile import BadLine, read_blocks
from indexer.ops import block_number, chain_time, format_time, op_name_value
from indexer.postdump import block_id

VOP_TRX = 4294967295
ZERO_ID = "0" * 40
ZERO_CHAIN_ID = STEEM_CHAIN_ID
CHAIN_BLOCK_SECONDS = 3
MAX_EXPIRATION = 3600
CUSTOM_JSON_MAX = 8192
HEADER_DEFAULTS = {
    "witness": "initminer", "transaction_merkle_root": ZERO_ID, "extensions": [],
    "witness_signature": "00" * 65,
    "signing_key": "STM8GC13uCZbP44HzMLV6zPZGwVQ8Nt4Kji8PapsPiNq1BK153XTX",
}
DATA = Path(__file__).resolve().parent.parent / "data"  # packaged with the wheel

# ------------------------------------------------------------------ encodings


@dataclass(frozen=True)
class Flavour:
    """What differs between a Steem and a Hive node in the answers."""

    name: str  # "HIVE" or "STEEM"
    core: str  # HIVE / STEEM
    dollar: str  # HBD / SBD
    version: str

    @property
    def legacy_symbols(self) -> dict[str, tuple[str, int]]:
        return {"@@000000021": (self.core, 3), "@@000000013": (self.dollar, 3),
                "@@000000037": ("VESTS", 6)}


HIVE = Flavour("HIVE", "HIVE", "HBD", "1.27.5")
STEEM = Flavour("STEEM", "STEEM", "SBD", "0.23.1")


@dataclass(frozen=True)
class Server:
    """Which node program answers: the methods it serves and the shapes of its answers.

    ``hived`` (current Hive): ``block_api.get_block_range`` (count <= 1000), virtual ops with
    ``effective_comment_vote``, account-history records with a boolean ``virtual_op``,
    ``op_in_trx`` and ``operation_id`` (the recorded hived patterns), ``include_reversible``.
    ``steemd`` 0.23: block_api has only ``get_block_header``/``get_block``
    (libraries/plugins/apis/block_api/.../block_api.hpp); no ``effective_comment_vote`` (not a
    Steem virtual op); ``comment_reward`` is ``(author)(permlink)(payout)``; account-history
    records (``api_operation_object``) carry an integer ``virtual_op`` and ``op_in_trx`` 0,
    no ``operation_id``, and the rocksdb history holds a block only once it is irreversible
    (no ``include_reversible``).
    """

    name: str
    block_range: bool = True
    effective_votes: bool = True
    include_reversible: bool = True
    account_history: bool = True


HIVED = Server("hived")
STEEMD = Server("steemd", block_range=False, effective_votes=False, include_reversible=False)
SERVERS = {s.name: s for s in (HIVED, STEEMD)}
NAI_OF = {symbol: nai for nai, kind in NAIS.items() for symbol, k in SYMBOLS.items()
          if k == kind}
AMOUNT_RE = re.compile(r"^(\d+)\.(\d+) ([A-Z]{3,5})$")


def to_nai(value: Any) -> Any:
    """Legacy amount strings → NAI objects, recursively (other strings untouched)."""
    if isinstance(value, str):
        m = AMOUNT_RE.match(value)
        if m and m.group(3) in NAI_OF:
            return {"amount": str(int(m.group(1) + m.group(2))), "precision": len(m.group(2)),
                    "nai": NAI_OF[m.group(3)]}
        return value
    if isinstance(value, dict):
        return {k: to_nai(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_nai(v) for v in value]
    return value


def to_legacy_amounts(value: Any, flavour: Flavour) -> Any:
    """NAI objects → legacy amount strings, recursively."""
    if isinstance(value, dict):
        if set(value) == {"amount", "precision", "nai"} and value["nai"] in NAIS:
            symbol, _ = flavour.legacy_symbols[value["nai"]]
            digits = str(int(value["amount"])).rjust(int(value["precision"]) + 1, "0")
            cut = len(digits) - int(value["precision"])
            return f"{digits[:cut]}.{digits[cut:]} {symbol}"
        return {k: to_legacy_amounts(v, flavour) for k, v in value.items()}
    if isinstance(value, list):
        return [to_legacy_amounts(v, flavour) for v in value]
    return value


def appbase_op(op: Any) -> Any:
    if isinstance(op, list) and len(op) == 2 and isinstance(op[0], str):
        return {"type": op[0] + "_operation", "value": to_nai(op[1])}
    if isinstance(op, dict) and "type" in op:
        return {"type": op["type"], "value": to_nai(op.get("value"))}
    return op


def legacy_op(op: Any, flavour: Flavour) -> Any:
    if isinstance(op, dict) and isinstance(op.get("type"), str):
        return [op["type"].removesuffix("_operation"), to_legacy_amounts(op.get("value"), flavour)]
    if isinstance(op, list) and len(op) == 2:
        return [op[0], to_legacy_amounts(op[1], flavour)]
    return op


def tapos_prefix(block_id: str) -> int:
    return struct.unpack_from("<I", bytes.fromhex(block_id), 4)[0]


# ------------------------------------------------------------------ errors


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def body(self) -> dict:
        err: dict = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


def invalid(message: str) -> RpcError:
    return RpcError(-32602, f"Invalid parameters: {message}")


def assert_failed(message: str) -> RpcError:
    """hived's wording for a failed check: beem reads the text after the last colon."""
    return RpcError(-32003, f"Assert Exception:{message}")


# ------------------------------------------------------------------ accounts


def make_account(name: str, posting: str, active: str | None = None, owner: str | None = None,
                 vests: str = "0.000000 VESTS", created: str = "2016-03-24T16:05:00") -> dict:
    """A get_accounts object (legacy encoding) with the fields beem and the market read."""
    def auth(key: str) -> dict:
        return {"weight_threshold": 1, "account_auths": [], "key_auths": [[key, 1]]}

    return {
        "id": 0, "name": name, "owner": auth(owner or active or posting),
        "active": auth(active or posting), "posting": auth(posting), "memo_key": posting,
        "json_metadata": "", "posting_json_metadata": "", "proxy": "", "created": created,
        "last_owner_update": "1970-01-01T00:00:00", "last_account_update": created,
        "recovery_account": "", "reputation": 0, "post_count": 0, "can_vote": True,
        "voting_manabar": {"current_mana": 0, "last_update_time": 0},
        "downvote_manabar": {"current_mana": 0, "last_update_time": 0},
        "balance": "0.000 HIVE", "savings_balance": "0.000 HIVE", "hbd_balance": "0.000 HBD",
        "savings_hbd_balance": "0.000 HBD", "reward_hbd_balance": "0.000 HBD",
        "reward_hive_balance": "0.000 HIVE", "reward_vesting_balance": "0.000000 VESTS",
        "reward_vesting_hive": "0.000 HIVE", "vesting_shares": vests,
        "delegated_vesting_shares": "0.000000 VESTS",
        "received_vesting_shares": "0.000000 VESTS",
        "vesting_withdraw_rate": "0.000000 VESTS", "next_vesting_withdrawal":
        "1969-12-31T23:59:59", "withdrawn": 0, "to_withdraw": 0, "withdraw_routes": 0,
        "proxied_vsf_votes": [0, 0, 0, 0], "witnesses_voted_for": 0,
        "last_post": "1970-01-01T00:00:00", "last_root_post": "1970-01-01T00:00:00",
        "last_vote_time": "1970-01-01T00:00:00",
    }


# ------------------------------------------------------------------ the chain


@dataclass
class Included:
    block_num: int
    trx_index: int
    trx_id: str


@dataclass
class ChainState:
    """Recorded blocks plus what the node did since it started (produced, broadcast, forked)."""

    recorded: dict[int, dict]
    vops: dict[int, list[dict]]
    globals_: dict
    flavour: Flavour = HIVE
    chain_id: str = ZERO_CHAIN_ID
    accounts: dict[str, dict] = field(default_factory=dict)
    first: int = 1
    head: int = 0
    irreversible: int = 0
    lag: int = 20
    numbers: list[int] = field(default_factory=list)
    extra: dict[int, list[tuple[dict, str]]] = field(default_factory=dict)
    pending: list[tuple[dict, str]] = field(default_factory=list)
    included: list[Included] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)  # every transaction accepted so far
    variants: dict[int, dict] = field(default_factory=dict)
    fork_open: tuple[int, int] | None = None  # (first block of the branch, depth)
    fork_requested: int = 0
    fork_every: int = 0
    fork_depth: int = 2
    variant_of: Callable[[dict], dict] | None = None
    history: dict[str, list[HistoryEntry]] | None = None  # built at the first history call
    comments: dict[tuple[str, str], dict] | None = None  # built at the first find_comments
    server: Server = HIVED
    history_lag: int = 0  # the account-history backend's LIB and head are this far behind
    posts: dict[tuple[str, str], dict] = field(default_factory=dict)  # for get_active_votes
    clear_votes: bool = False  # steemd's default build: a post's votes go at its payout
    producer_rewards: bool = True  # every served block has a producer_reward virtual op
    wrong_ids: dict[int, str] = field(default_factory=dict)  # a faulty node's ids (misreport)

    def __post_init__(self) -> None:
        self.numbers = sorted(self.recorded)
        if self.numbers:
            self.first = self.numbers[0]
        self._cache: dict[tuple[int, str], Any] = {}
        rewards = sorted((num, i) for num, ops in self.vops.items()
                         for i, v in enumerate(ops) if _op_name(v["op"]) == "producer_reward")
        self._reward_blocks = [num for num, _ in rewards]
        self._reward_ops = [self.vops[num][i]["op"] for num, i in rewards]

    # ---- ids, times, blocks
    def canonical_id(self, num: int) -> str:
        rec = self.recorded.get(num)
        if rec is not None and isinstance(rec.get("block_id"), str):
            return rec["block_id"]
        nxt = self.recorded.get(num + 1)
        if nxt is not None and str(nxt.get("previous", "")).startswith(f"{num:08x}"):
            return nxt["previous"]
        return block_id(num, "testnode:")

    def block_id(self, num: int) -> str:
        var = self.variants.get(num)
        return var["block_id"] if var is not None else self.canonical_id(num)

    def timestamp(self, num: int) -> str:
        rec = self.recorded.get(num)
        if rec is not None:
            return str(rec["timestamp"])[:19]
        i = bisect.bisect_left(self.numbers, num)
        prev_n = self.numbers[i - 1] if i > 0 else None
        next_n = self.numbers[i] if i < len(self.numbers) else None
        step = CHAIN_BLOCK_SECONDS
        if prev_n is None:
            return format_time(chain_time(self.recorded[next_n]["timestamp"])
                               - step * (next_n - num))
        prev_t = chain_time(self.recorded[prev_n]["timestamp"])
        t = prev_t + step * (num - prev_n)
        if next_n is not None:
            t = max(prev_t, min(t, chain_time(self.recorded[next_n]["timestamp"])
                                - step * (next_n - num)))
        return format_time(t)

    def canonical_block(self, num: int) -> dict:
        """The block in the file's own encoding, with the node's broadcasts appended."""
        rec = self.recorded.get(num)
        prev_id = self.canonical_id(num - 1)
        block = {"previous": prev_id, "timestamp": self.timestamp(num), **HEADER_DEFAULTS}
        txs: list[dict] = []
        ids: list[str] = []
        if rec is not None:
            block.update({k: v for k, v in rec.items() if k in HEADER_DEFAULTS})
            block["previous"] = rec.get("previous") or prev_id
            rec_ids = rec.get("transaction_ids") or []
            for i, tx in enumerate(rec.get("transactions") or []):
                tx = dict(tx)
                tid = tx.get("transaction_id") or (rec_ids[i] if i < len(rec_ids) else None)
                if not tid:
                    tid = hashlib.sha1(orjson.dumps(tx) + f":{num}:{i}".encode()).hexdigest()
                tx.setdefault("ref_block_num", (num - 1) & 0xFFFF)
                tx.setdefault("ref_block_prefix", tapos_prefix(prev_id))
                tx.setdefault("expiration", format_time(chain_time(block["timestamp"]) + 60))
                tx.setdefault("extensions", [])
                tx.setdefault("signatures", [])
                txs.append(tx)
                ids.append(tid)
        for tx, tid in self.extra.get(num, []):
            txs.append(tx)
            ids.append(tid)
        block.update(block_id=self.canonical_id(num), transactions=txs, transaction_ids=ids)
        return block

    def block(self, num: int) -> dict | None:
        """The block as served now (a provisional sibling while a fork is open)."""
        if num < self.first or num > self.head:
            return None
        var = self.variants.get(num)
        block = var if var is not None else self.canonical_block(num)
        wrong = self.wrong_ids.get(num)
        return block if wrong is None else {**block, "block_id": wrong}

    def virtual_ops(self, num: int) -> list[dict]:
        """The recorded virtual ops, and the producer_reward every real block has when the
        recording lacks it (hived and steemd push one per block in database::process_funds):
        to the block's witness, of the amount of the nearest earlier recorded one (0 VESTS
        when there is none)."""
        ops = self.vops.get(num, [])
        if not self.producer_rewards or any(_op_name(v["op"]) == "producer_reward"
                                            for v in ops):
            return ops
        i = bisect.bisect_right(self._reward_blocks, num)
        ref = self._reward_ops[i - 1] if i else None
        vests = (op_name_value(ref)[1] or {}).get("vesting_shares") if ref is not None else None
        rec = self.recorded.get(num) or {}
        witness = self.variants[num]["witness"] if num in self.variants else \
            rec.get("witness", HEADER_DEFAULTS["witness"])
        reward = ["producer_reward", {"producer": witness,
                                      "vesting_shares": vests or "0.000000 VESTS"}]
        return [*ops, {"op": reward, "trx_in_block": VOP_TRX, "op_in_trx": 0,
                       "trx_id": ZERO_ID}]

    # ---- encoded answers (cached; a block's answer changes only when it is produced/forked)
    def encoded(self, num: int, kind: str) -> Any:
        key = (num, kind)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        block = self.block(num)
        if block is None:
            return None
        if kind == "appbase":
            out = dict(block)
            out["transactions"] = [
                {k: (v if k != "operations" else [appbase_op(op) for op in v])
                 for k, v in tx.items()
                 if k not in ("transaction_id", "block_num", "transaction_num")}
                for tx in block["transactions"]]
            value: Any = orjson.dumps(out)
        elif kind == "legacy":
            out = dict(block)
            out["transactions"] = [
                {**{k: (v if k != "operations" else [legacy_op(op, self.flavour) for op in v])
                    for k, v in tx.items()},
                 "transaction_id": tid, "block_num": num, "transaction_num": i}
                for i, (tx, tid) in enumerate(zip(block["transactions"],
                                                  block["transaction_ids"], strict=True))]
            value = out
        else:  # header
            value = {k: block[k] for k in ("previous", "timestamp", "witness",
                                            "transaction_merkle_root", "extensions")}
        if self._worth_caching(num):
            self._cache[key] = value
        return value

    def _worth_caching(self, num: int) -> bool:
        """Blocks with content only: a catch-up over the demo chain's 1.75 M mostly empty
        blocks would otherwise keep gigabytes of cheap-to-make answers."""
        return num in self.recorded or num in self.extra or num in self.vops

    def forget(self, num: int) -> None:
        for kind in ("appbase", "legacy", "header", "ops", "vops", "ops-steemd",
                     "vops-steemd"):
            self._cache.pop((num, kind), None)

    def ops_answer(self, num: int, only_virtual: bool) -> bytes:
        """``{"ops": [...]}`` serialized as this node's program answers, cached like the
        blocks."""
        steemd = self.server.name == "steemd"
        key = (num, ("vops" if only_virtual else "ops") + ("-steemd" if steemd else ""))
        hit = self._cache.get(key)
        if hit is None:
            ops = self.ops_in_block(num, only_virtual)
            hit = orjson.dumps({"ops": steemd_records(ops) if steemd else ops})
            if self._worth_caching(num):
                self._cache[key] = hit
        return hit

    def served_ops(self, ops: list[dict]) -> list[dict]:
        """Account-history records as this node's program answers them."""
        return steemd_records(ops) if self.server.name == "steemd" else ops

    def history_top(self, include_reversible: bool) -> int:
        """The last block the account-history backend has ops for (0: none)."""
        if include_reversible and self.server.include_reversible:
            return self.head - self.history_lag
        return self.irreversible - self.history_lag

    def active_votes(self, author: str, permlink: str) -> list[dict]:
        """condenser_api.get_active_votes: the post's votes cast by the head's time."""
        post = self.posts.get((author, permlink))
        if post is None:  # steemd: database::get_comment on a missing key
            raise RpcError(-32003, "unknown key:unknown key: ")
        now = self.timestamp(self.head)
        paid = str(post.get("last_payout") or "1970-01-01T00:00:00")[:19]
        if self.clear_votes and "1970-01-01T00:00:00" < paid <= now:
            return []  # CLEAR_VOTES: database::cashout_comment_helper removed them
        return [v for v in post.get("active_votes") or [] if str(v.get("time", ""))[:19] <= now]

    def ops_in_block(self, num: int, only_virtual: bool) -> list[dict]:
        """Account-history records of a block, in the appbase encoding."""
        block = self.block(num)
        if block is None:
            return []
        ts = block["timestamp"]
        out: list[dict] = []
        if not only_virtual:
            for ti, (tx, tid) in enumerate(zip(block["transactions"], block["transaction_ids"],
                                               strict=True)):
                for oi, op in enumerate(tx.get("operations") or []):
                    out.append({"trx_id": tid, "block": num, "trx_in_block": ti, "op_in_trx": oi,
                                "virtual_op": False, "timestamp": ts, "op": appbase_op(op)})
        for v in self.virtual_ops(num):
            out.append({"trx_id": v.get("trx_id", ZERO_ID), "block": num,
                        "trx_in_block": v.get("trx_in_block", VOP_TRX),
                        "op_in_trx": v.get("op_in_trx", 0), "virtual_op": True,
                        "timestamp": ts, "op": appbase_op(v["op"])})
        for seq, rec in enumerate(out):
            rec["operation_id"] = (num << 32) | seq
        return out

    # ---- production
    def produce(self) -> int:
        """Make the next block the head (or switch a finished fork); returns the new head."""
        num = self.head + 1
        if self.fork_open is None and (self.fork_requested or (
                self.fork_every and num % self.fork_every == 0)):
            self.fork_open = (num, self.fork_requested or self.fork_depth)
            self.fork_requested = 0
        txs, self.pending = self.pending, []
        if txs:
            self.extra.setdefault(num, []).extend(txs)
            base = len((self.recorded.get(num) or {}).get("transactions") or [])
            for i, (_, tid) in enumerate(self.extra[num][-len(txs):]):
                self.included.append(Included(num, base + len(self.extra[num]) - len(txs) + i,
                                              tid))
        self.forget(num)
        if txs:
            self._index_broadcasts(num, txs)
        if self.fork_open is not None:
            start, depth = self.fork_open
            if num < start + depth:  # a provisional sibling
                canon = self.canonical_block(num)
                var = (self.variant_of or drop_last_recorded(self))(canon)
                var["block_id"] = block_id(num, "fork:")
                var["previous"] = self.block_id(num - 1)
                self.variants[num] = var
            else:  # the canonical branch wins: all of it at once
                for n in range(start, num):
                    self.variants.pop(n, None)
                    self.forget(n)
                self.fork_open = None
        self.head = num
        self.irreversible = max(self.irreversible, self.head - self.lag)
        if self.fork_open is not None:
            self.irreversible = min(self.irreversible, self.fork_open[0] - 1)
        return num

    def _index_broadcasts(self, num: int, txs: list[tuple[dict, str]]) -> None:
        """Broadcast transactions included in block ``num`` join the account histories and
        the comment index already built (built later, they read them from ``extra``)."""
        base = len((self.recorded.get(num) or {}).get("transactions") or []) + \
            len(self.extra.get(num, [])) - len(txs)
        for i, (tx, tid) in enumerate(txs):
            for oi, op in enumerate(tx.get("operations") or []):
                if self.history is not None:
                    entry = HistoryEntry(num, base + i, oi, False, op, tid)
                    for name in impacted(op):
                        entries = self.history.setdefault(name, [])
                        at = bisect.bisect_right([e.block for e in entries], num)
                        entries.insert(at, entry)
                if self.comments is not None:
                    index_comment(self.comments, num, op)

    def comment(self, author: str, permlink: str) -> dict | None:
        """The post or reply as written by its first ``comment`` op in a block up to the
        head (None before it appears), with the payout seen up to the head."""
        if self.comments is None:
            self.comments = build_comments(self)
        found = self.comments.get((author, permlink))
        if found is None or found["block"] > self.head:
            return None
        paid = found.get("paid_block")
        return {**found, "paid": paid is not None and paid <= self.head}

    def add_live(self, plan: Any) -> None:
        """Future blocks carrying live posts (:mod:`curation_market.devnode.live`):
        served as the head reaches them, like recorded ones."""
        for num, block in plan.blocks.items():
            if num <= self.head or num in self.recorded:
                raise ValueError(f"live block {num} is not in the future of the node")
            self.recorded[num] = block
        for num, ops in plan.vops.items():
            if num <= self.head:
                raise ValueError(f"live block {num} is not in the future of the node")
            self.vops.setdefault(num, []).extend(
                {"op": op, "trx_in_block": VOP_TRX, "op_in_trx": i, "trx_id": ZERO_ID}
                for i, op in enumerate(ops))
        self.numbers = sorted(self.recorded)
        self.posts.update({(p["author"], p["permlink"]): p for p in plan.posts})
        self.history = None  # rebuilt with the new blocks at the next call
        self.comments = None

    def dgp(self) -> dict:
        props = dict(self.globals_)
        props.update(head_block_number=self.head, head_block_id=self.block_id(self.head),
                     time=self.timestamp(self.head), last_irreversible_block_num=self.irreversible,
                     current_aslot=self.head)
        return props


def drop_last_recorded(state: ChainState) -> Callable[[dict], dict]:
    """The default provisional sibling: the block without its last recorded transaction."""
    def variant(block: dict) -> dict:
        num = int(block["block_id"][:8], 16)
        n_rec = len((state.recorded.get(num) or {}).get("transactions") or [])
        out = dict(block)
        if n_rec:
            keep = [i for i in range(len(block["transactions"])) if i != n_rec - 1]
            out["transactions"] = [block["transactions"][i] for i in keep]
            out["transaction_ids"] = [block["transaction_ids"][i] for i in keep]
        return out
    return variant


def _op_name(op: Any) -> str:
    return op_name_value(op)[0]


def steemd_records(ops: list[dict]) -> list[dict]:
    """hived's account-history records → steemd 0.23's ``api_operation_object``: integer
    ``virtual_op`` (the block's virtual-op counter, 0 for transaction ops), ``op_in_trx`` 0
    (never set from the stored op), no ``operation_id``; no ``effective_comment_vote`` and
    ``comment_reward`` as steemd reflects it, ``(author)(permlink)(payout)``."""
    out = []
    counter = 0
    for rec in ops:
        name, value = op_name_value(rec["op"])
        if name == "effective_comment_vote":
            continue
        op = rec["op"]
        if name == "comment_reward" and isinstance(value, dict):
            op = {"type": "comment_reward_operation",
                  "value": {k: value[k] for k in ("author", "permlink", "payout") if k in value}}
        virtual = 0
        if rec.get("virtual_op"):
            counter += 1
            virtual = counter
        out.append({"trx_id": rec["trx_id"], "block": rec["block"],
                    "trx_in_block": rec["trx_in_block"], "op_in_trx": 0, "virtual_op": virtual,
                    "timestamp": rec["timestamp"], "op": op})
    return out


# ------------------------------------------------------------------ loading


def load_blocks(paths: Iterable[str | Path]) -> tuple[dict[int, dict], dict[int, list[dict]]]:
    """Block lines → (blocks by number, virtual ops by number); bad lines are skipped."""
    blocks: dict[int, dict] = {}
    vops: dict[int, list[dict]] = {}
    for raw in read_blocks(paths):
        if isinstance(raw, BadLine) or not isinstance(raw, dict):
            continue
        num = block_number(raw)
        line_vops = raw.get("virtual_ops") or []
        block = {k: v for k, v in raw.items()
                 if not k.startswith("_") and k not in ("virtual_ops", "block_num")}
        blocks[num] = block
        if line_vops:
            vops.setdefault(num, []).extend(
                {"op": op, "trx_in_block": VOP_TRX, "op_in_trx": i, "trx_id": ZERO_ID}
                for i, op in enumerate(line_vops))
    return blocks, vops


def load_ops(paths: Iterable[str | Path], vops: dict[int, list[dict]]) -> None:
    """Account-history records (``block``, ``op``, ``virtual_op`` ...): keep the virtual ones."""
    for rec in read_blocks(paths):
        if not isinstance(rec, dict) or "op" not in rec or "block" not in rec:
            continue
        flag = rec.get("virtual_op")
        virtual = flag is True or (type(flag) is int and flag > 0) or (
            flag is None and rec.get("trx_in_block") == VOP_TRX)
        if virtual:
            vops.setdefault(int(rec["block"]), []).append(
                {"op": rec["op"], "trx_in_block": rec.get("trx_in_block", VOP_TRX),
                 "op_in_trx": rec.get("op_in_trx", 0), "trx_id": rec.get("trx_id", ZERO_ID)})


# the posting key of accounts that never sign on this node: the public key of
# sha256("curation-market testnode placeholder"), a secret anyone can derive (test node only)
DUMMY_KEY = "STM8EsoGTPLq1FSkspCUipooU9x95JXsNDrLq47BoysqgPuNxekFL"


def full_account(rec: dict) -> dict:
    """A recorded account object, completed with defaults for the fields it lacks."""
    keys = (rec.get("posting") or {}).get("key_auths") or [[DUMMY_KEY, 1]]
    return {**make_account(rec["name"], keys[0][0]), **rec}


def load_accounts(path: str | Path) -> dict[str, dict]:
    out = {}
    for rec in read_blocks([path]):
        if isinstance(rec, dict) and isinstance(rec.get("name"), str):
            out[rec["name"]] = full_account(rec)
    return out


def demo_chain(workdir: Path) -> dict[str, Any]:
    """The demo's chain (real block-17M posts + simulated curators) as test-node inputs."""
    from curation_market.lab.agents import agent_accounts
    from curation_market.lab.demo import DATA as DEMO_DATA
    from curation_market.lab.demo import build_demo_blocks, demo_population

    blocks = workdir / "demo-blocks.jsonl.gz"
    build_demo_blocks(blocks)
    globals_path = Path(str(DEMO_DATA / "steem17m_globals.json"))
    accounts = load_accounts(Path(str(DEMO_DATA / "steem17m_accounts.jsonl.gz")))
    from curation.state import Globals
    from indexer.accounts import read_globals

    fund, shares = read_globals(globals_path)
    for a in agent_accounts(demo_population(), Globals(fund, shares)):
        accounts.setdefault(a.name, make_account(
            a.name, DUMMY_KEY, vests=f"{a.vesting_shares // 10**6}."
                                     f"{a.vesting_shares % 10**6:06d} VESTS"))
    return {"blocks": [blocks], "globals_path": globals_path, "accounts": accounts,
            "chain": "steem"}


# ------------------------------------------------------------------ broadcasts

AUTH_FIELDS = {  # op → [(field holding account(s), authority level)]
    "custom_json": [("required_posting_auths", "posting"), ("required_auths", "active")],
    "vote": [("voter", "posting")], "comment": [("author", "posting")],
    "comment_options": [("author", "posting")], "delete_comment": [("author", "posting")],
    "transfer": [("from", "active")], "claim_reward_balance": [("account", "posting")],
}


def _required(op_name: str, value: dict) -> list[tuple[str, str]]:
    if op_name not in AUTH_FIELDS:
        raise assert_failed(f"operation {op_name!r} is not supported by the test node")
    out = []
    for key, level in AUTH_FIELDS[op_name]:
        who = value.get(key)
        for name in (who if isinstance(who, list) else [who] if who else []):
            out.append((str(name), level))
    return out


def _check_custom_json(value: dict) -> None:
    cid, body = value.get("id"), value.get("json")
    if not isinstance(cid, str) or len(cid) > 32:
        raise assert_failed("id.size() <= HIVE_CUSTOM_OP_ID_MAX_LENGTH: id is too long")
    if not isinstance(body, str) or len(body.encode()) > CUSTOM_JSON_MAX:
        raise assert_failed("json.size() <= HIVE_CUSTOM_OP_DATA_MAX_LENGTH: json is too long")
    try:
        json.loads(body)
    except ValueError:
        raise assert_failed("fc::json::is_valid(json): JSON data not valid JSON") from None
    if not (value.get("required_auths") or value.get("required_posting_auths")):
        raise assert_failed("(required_auths.size() + required_posting_auths.size()) > 0: "
                            "at least one account must be specified")


# ------------------------------------------------------------------ the node


class TestNode:
    """The chain state behind a JSON-RPC HTTP server, with the controls tests need."""

    __test__ = False  # not a pytest test class

    def __init__(self, state: ChainState, interval: float | None = None,
                 host: str = "127.0.0.1", port: int = 0, step: int = 1):
        self.state = state
        self.interval, self.step = interval, step
        self.host, self.port = host, port
        self.lock = threading.RLock()
        self.produced = threading.Condition(self.lock)
        self.paused = False
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.methods = self._method_table()
        self.batch_limit: int | None = None  # a jussi front: batches above it are refused
        self.largest_batch = 0  # the most calls in one request answered
        self.refused_batches = 0
        self.requests = 0  # HTTP requests answered (batches and single calls)
        self.calls: dict[str, int] = {}  # JSON-RPC calls answered, by method

    @classmethod
    def from_files(cls, blocks: Iterable[str | Path], ops: Iterable[str | Path] = (),
                   head: int | None = None, lag: int = 20, interval: float | None = None,
                   globals_path: str | Path | None = None,
                   accounts: str | Path | dict[str, dict] | None = None,
                   chain: str = "hive", chain_id: str | None = None, fork_every: int = 0,
                   fork_depth: int = 2, port: int = 0) -> TestNode:
        recorded, vops = load_blocks(blocks)
        if not recorded:
            raise ValueError("the block files hold no readable block")
        load_ops(ops, vops)
        gpath = Path(globals_path) if globals_path else DATA / "hive5m_globals.json"
        globals_ = json.loads(gpath.read_text(encoding="utf-8"))
        globals_ = globals_.get("dynamic_global_properties", globals_)  # a wrapped snapshot
        flavour = STEEM if chain.lower() == "steem" else HIVE
        if flavour is STEEM:
            globals_ = {k.replace("hive", "steem").replace("hbd", "sbd"):
                        (v.replace(" HIVE", " STEEM").replace(" HBD", " SBD")
                         if isinstance(v, str) else v) for k, v in globals_.items()}
        table = dict(accounts) if isinstance(accounts, dict) else \
            load_accounts(accounts) if accounts else {}
        chain_id = chain_id or CHAIN_IDS[flavour.name.lower()]  # each chain's own by default
        state = ChainState(recorded, vops, globals_, flavour=flavour, chain_id=chain_id,
                           accounts=table, lag=lag,
                           fork_every=fork_every, fork_depth=fork_depth)
        start = max(recorded) if head is None else head
        if start < state.first:
            raise ValueError(f"head {start} is below the first block {state.first}")
        state.head = start
        state.irreversible = max(state.first - 1, start - lag)
        return cls(state, interval=interval, port=port)

    # ---- lifecycle
    def start(self) -> TestNode:
        node = self

        class Handler(_Handler):
            pass

        Handler.node = node
        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        t = threading.Thread(target=self._server.serve_forever, name="testnode-http",
                             daemon=True)
        t.start()
        self._threads.append(t)
        if self.interval:
            p = threading.Thread(target=self._producer, name="testnode-producer", daemon=True)
            p.start()
            self._threads.append(p)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> TestNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _producer(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.paused:
                self.advance(self.step)

    # ---- controls
    @property
    def head(self) -> int:
        return self.state.head

    @property
    def irreversible(self) -> int:
        return self.state.irreversible

    @property
    def included(self) -> list[Included]:
        with self.lock:
            return list(self.state.included)

    def advance(self, count: int = 1) -> int:
        with self.lock:
            for _ in range(max(0, count)):
                self.state.produce()
            self.produced.notify_all()
            return self.state.head

    def set_irreversible(self, num: int) -> int:
        with self.lock:
            limit = self.state.head
            if self.state.fork_open is not None:
                limit = min(limit, self.state.fork_open[0] - 1)
            self.state.irreversible = max(self.state.irreversible, min(num, limit))
            return self.state.irreversible

    def fork(self, depth: int = 2) -> None:
        if depth < 1:
            raise ValueError("a fork needs depth >= 1")
        with self.lock:
            self.state.fork_requested = depth

    def misreport(self, num: int, wrong: bool = True) -> str:
        """Be a faulty node for block ``num``: serve it under another id (its content and the
        next block's ``previous`` unchanged), until ``misreport(num, False)``. Returns the id
        now served."""
        with self.lock:
            if wrong:
                self.state.wrong_ids[num] = block_id(num, "faulty:")
            else:
                self.state.wrong_ids.pop(num, None)
            self.state.forget(num)
            return self.state.wrong_ids.get(num) or self.state.block_id(num)

    def add_account(self, name: str, posting_key: str | None = None,
                    vests: str = "0.000000 VESTS") -> str | None:
        """Add an account; without a key a fresh one is made and its private WIF returned."""
        wif = None
        if posting_key is None:
            from beemgraphenebase.account import PrivateKey

            priv = PrivateKey()
            wif, posting_key = str(priv), str(priv.pubkey)
        with self.lock:
            self.state.accounts[name] = make_account(name, posting_key, vests=vests)
        return wif

    def block(self, num: int) -> dict | None:
        with self.lock:
            return self.state.block(num)

    def add_live_posts(self, posts: Iterable[dict], lead: int = 60,
                       spacing: int | None = None, payout_after: int | None = None) -> Any:
        """Make ``posts`` (a post dump) appear in the blocks this node will produce, shifted
        to its chain time (see :mod:`curation_market.devnode.live`); returns the plan."""
        from curation_market.devnode.live import plan as live_plan
        from indexer.postdump import Anchor

        with self.lock:
            st = self.state
            last = max(st.head, st.numbers[-1])
            if st.comments is None:
                st.comments = build_comments(st)
            planned = live_plan(posts, Anchor(last, chain_time(st.timestamp(last))), lead,
                                spacing, payout_after, taken=st.comments)
            st.add_live(planned)
            return planned

    def serve_as(self, server: str = "hived", batch_limit: int | None = None,
                 history_lag: int = 0, posts: Iterable[dict] = (),
                 clear_votes: bool = False, account_history: bool = True) -> TestNode:
        """Answer as another node program or deployment (see :class:`Server`):

        ``server`` "hived" or "steemd"; ``batch_limit`` puts a jussi front before it (jussi's
        ``--jsonrpc_batch_size_limit``, 50 by default: a larger batch gets jussi's error);
        ``history_lag`` makes the account-history backend lag the block backend by that many
        blocks (``{"ops": []}`` above its own LIB, as hived and steemd answer); ``posts`` (a
        post dump, ``get_content`` objects with ``active_votes``) are what
        ``condenser_api.get_active_votes`` answers; ``clear_votes`` removes a post's votes at
        its payout, as steemd's default build (CLEAR_VOTES) does; ``account_history=False``
        is a node without the account_history plugin.
        """
        if server not in SERVERS:
            raise ValueError(f"unknown server {server!r}; expected one of {sorted(SERVERS)}")
        with self.lock:
            st = self.state
            st.server = replace(SERVERS[server], account_history=account_history)
            st.history_lag, st.clear_votes = history_lag, clear_votes
            st.posts.update({(p["author"], p["permlink"]): p for p in posts})
            st._cache.clear()  # noqa: SLF001 - answers are shaped per server
            self.batch_limit = batch_limit
            self.methods = self._method_table()
        return self

    def prewarm(self) -> None:
        """Encode every served block and its ops now, so reads measure the reader, not us.

        A real node reads its block log natively; without this the first read of each block
        pays for this Python server's encoding, which a catch-up benchmark must not count.
        """
        with self.lock:
            for num in range(self.state.first, self.state.head + 1):
                self.state.encoded(num, "appbase")
                self.state.ops_answer(num, True)
                self.state.ops_answer(num, False)

    # ---- broadcast
    def broadcast(self, trx: dict, wait: bool = False, timeout: float = 30.0) -> dict:
        from beembase.signedtransactions import Signed_Transaction
        from beemgraphenebase.account import PublicKey

        if not isinstance(trx, dict) or not isinstance(trx.get("operations"), list):
            raise invalid("trx must be a transaction object with operations")
        st = self.state
        legacy = dict(trx)
        legacy["operations"] = [legacy_op(op, st.flavour) for op in trx["operations"]]
        try:
            signed = Signed_Transaction(**{k: legacy[k] for k in (
                "ref_block_num", "ref_block_prefix", "expiration", "operations", "extensions",
                "signatures") if k in legacy})
            trx_id = signed.id
        except Exception as exc:  # noqa: BLE001 - anything beembase cannot decode
            raise assert_failed(f"transaction cannot be decoded: {exc}"[:300]) from None
        with self.lock:
            head_time = chain_time(st.timestamp(st.head))
            exp = chain_time(str(legacy.get("expiration")))
            if exp <= head_time:
                raise assert_failed(f"now < trx.expiration: transaction expired "
                                    f"({legacy['expiration']} <= {format_time(head_time)})")
            if exp > head_time + MAX_EXPIRATION:
                raise assert_failed("trx.expiration <= now + HIVE_MAX_TIME_UNTIL_EXPIRATION")
            ref = self._tapos_block(int(legacy["ref_block_num"]))
            if ref is None or tapos_prefix(st.block_id(ref)) != int(legacy["ref_block_prefix"]):
                raise assert_failed("trx.ref_block_prefix == tapos_block_summary: "
                                    "transaction tapos exception")
            if trx_id in st.seen_ids:
                raise assert_failed("Duplicate transaction check failed")
            required: list[tuple[str, str]] = []
            for op in legacy["operations"]:
                if not (isinstance(op, list) and len(op) == 2 and isinstance(op[1], dict)):
                    raise assert_failed("operation cannot be decoded")
                if op[0] == "custom_json":
                    _check_custom_json(op[1])
                required += _required(op[0], op[1])
            if not required:
                raise assert_failed("transaction has no required authority")
            recovered = self._recovered_keys(signed)
            for name, level in required:
                acc = st.accounts.get(name)
                if acc is None:
                    raise assert_failed(f"missing required {level} authority: "
                                        f"unknown account {name}")
                levels = {"posting": ("posting", "active", "owner"),
                          "active": ("active", "owner")}[level]
                if not any(self._satisfied(acc.get(lv), recovered, PublicKey) for lv in levels):
                    raise assert_failed(f"missing required {level} authority: "
                                        f"Missing {level.title()} Authority {name}")
            stored = dict(legacy)
            stored.setdefault("extensions", [])
            st.pending.append((stored, trx_id))
            st.seen_ids.add(trx_id)
            if not wait:
                return {}
            deadline = time.monotonic() + timeout
            while True:
                for inc in reversed(st.included):
                    if inc.trx_id == trx_id:
                        return {"id": trx_id, "block_num": inc.block_num,
                                "trx_num": inc.trx_index, "expired": False}
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RpcError(-32000, "Request Timeout: not included in time")
                self.produced.wait(left)

    def _tapos_block(self, ref_num: int) -> int | None:
        st = self.state
        top = st.head
        candidate = top - ((top - ref_num) & 0xFFFF)
        return candidate if candidate >= st.first - 1 else None  # first's previous is known

    def _recovered_keys(self, signed: Any) -> set[str]:
        from beemgraphenebase.account import PublicKey
        from beemgraphenebase.ecdsasig import verify_message

        signed.deriveDigest({"chain_id": self.state.chain_id, "prefix": "STM"})
        keys = set()
        for sig in signed.data["signatures"].data:
            try:
                raw = verify_message(signed.message, bytes(sig))
            except Exception:  # noqa: BLE001 - a signature that recovers nothing counts for none
                continue
            if raw is not None:
                keys.add(str(PublicKey(raw.hex(), prefix="STM")))
        return keys

    @staticmethod
    def _satisfied(authority: Any, keys: set[str], public_key: Any) -> bool:
        if not isinstance(authority, dict):
            return False
        weight = 0
        for key, w in authority.get("key_auths", []):
            try:
                norm = str(public_key(key, prefix="STM"))
            except Exception:  # noqa: BLE001 - a malformed key in the table matches nothing
                continue
            if norm in keys:
                weight += int(w)
        return weight >= int(authority.get("weight_threshold", 1))

    # ---- methods
    def _method_table(self) -> dict[str, Callable[[Any], Any]]:
        m: dict[str, Callable[[Any], Any]] = {
            "database_api.get_config": lambda p: self.config(),
            "database_api.get_dynamic_global_properties": lambda p: to_nai(self._dgp()),
            "database_api.get_version": lambda p: self.version(),
            "database_api.find_accounts": self._find_accounts,
            "block_api.get_block": self._get_block,
            "block_api.get_block_header": self._get_block_header,
            "block_api.get_block_range": self._get_block_range,
            "account_history_api.get_ops_in_block": self._get_ops_in_block,
            "account_history_api.enum_virtual_ops": self._enum_virtual_ops,
            "network_broadcast_api.broadcast_transaction":
                lambda p: self.broadcast(_obj(p).get("trx")),
            "account_by_key_api.get_key_references":
                lambda p: {"accounts": self._key_refs(_obj(p).get("keys"))},
            "condenser_api.get_config": lambda p: self.config(),
            "condenser_api.get_version": lambda p: self.version(),
            "condenser_api.get_dynamic_global_properties": lambda p: self._legacy(self._dgp()),
            "condenser_api.get_block": lambda p: self._c_block(p, "legacy"),
            "condenser_api.get_block_header": lambda p: self._c_block(p, "header"),
            "condenser_api.get_ops_in_block": self._c_ops_in_block,
            "condenser_api.get_accounts": self._c_get_accounts,
            "condenser_api.get_key_references": lambda p: self._key_refs(_arg(p, 0)),
            "condenser_api.broadcast_transaction": lambda p: self.broadcast(_arg(p, 0)),
            "condenser_api.broadcast_transaction_synchronous":
                lambda p: self.broadcast(_arg(p, 0), wait=True),
            "debug_node_api.debug_generate_blocks":
                lambda p: {"blocks": self._advance_by(_obj(p).get("count", 1))},
            "testnode_api.advance": lambda p: {"head": self.advance(
                _int(_obj(p).get("count", 1), "count"))},
            "testnode_api.set_irreversible": lambda p: {
                "irreversible": self.set_irreversible(_int(_obj(p).get("block_num"),
                                                           "block_num"))},
            "testnode_api.fork": lambda p: self.fork(_int(_obj(p).get("depth", 2), "depth"))
            or {},
            "testnode_api.pause": lambda p: self._pause(True),
            "testnode_api.resume": lambda p: self._pause(False),
            "testnode_api.state": lambda p: self.status(),
            "testnode_api.add_account": lambda p: self.add_account(
                str(_obj(p).get("name")), str(_obj(p).get("posting_key"))) or {},
        }
        m["database_api.find_comments"] = self._find_comments
        m["condenser_api.get_content"] = self._c_get_content
        m.update(self._history_methods())
        m["condenser_api.get_active_votes"] = self._c_active_votes
        server = self.state.server
        if not server.block_range:
            del m["block_api.get_block_range"]
        if not server.account_history:
            for name in [k for k in m if k.startswith("account_history_api.")] + [
                    "condenser_api.get_ops_in_block", "condenser_api.get_account_history"]:
                del m[name]
        m["jsonrpc.get_methods"] = lambda p: sorted(m)
        return m

    def _c_active_votes(self, p: Any) -> list:
        author, permlink = _arg(p, 0), _arg(p, 1)
        if not isinstance(author, str) or not isinstance(permlink, str):
            raise invalid("get_active_votes takes [author, permlink]")
        with self.lock:
            return self.state.active_votes(author, permlink)

    # ---- account history
    def _history_methods(self) -> dict[str, Callable[[Any], Any]]:
        return {"account_history_api.get_account_history": self._get_account_history,
                "condenser_api.get_account_history": self._c_get_account_history}

    def _get_account_history(self, p: Any) -> dict:
        q = _obj(p)
        rows = self.account_history(q.get("account"), q.get("start", -1), q.get("limit", 1000),
                                    bool(q.get("include_reversible")),
                                    q.get("operation_filter_low"),
                                    q.get("operation_filter_high"))
        return {"history": [[seq, {**e, "op": appbase_op(e["op"])}] for seq, e in rows]}

    def _c_get_account_history(self, p: Any) -> list:
        if not isinstance(p, list) or not 3 <= len(p) <= 5:
            raise assert_failed(f"args.size() == 3 || args.size() == 4 || args.size() == 5: "
                                f"Expected 3, 4, or 5 argument(s), was "
                                f"{len(p) if isinstance(p, list) else 0}")
        rows = self.account_history(p[0], p[1], p[2], False, _arg(p, 3), _arg(p, 4))
        flavour = self.state.flavour
        return [[seq, {**e, "op": legacy_op(e["op"], flavour),
                       "virtual_op": int(e["virtual_op"])}] for seq, e in rows]

    def account_history(self, account: Any, start: Any, limit: Any, include_reversible: bool,
                        low: Any = None, high: Any = None) -> list[tuple[int, dict]]:
        """(sequence, entry) pairs, oldest first, as hived (or steemd on a Steem node)."""
        if not isinstance(account, str):
            raise invalid("account must be a string")
        start = _int(start, "start")
        limit = _int(limit, "limit")
        if start < 0:
            start = 2**64 - 1  # uint64: -1 is the newest entry
        steem = self.state.flavour is STEEM
        if limit > (10000 if steem else 1000):
            raise assert_failed(f"args.limit <= 1000: limit of {limit} is greater than "
                                "maxmimum allowed")
        if (steem and start < limit) or (not steem and start < limit - 1):
            raise assert_failed("args.start >= args.limit-1: start must be greater than or "
                                "equal to limit-1 (start is 0-based index)")
        masks = None
        if not steem and (low or high):  # steemd has no filter: the fields are ignored
            masks = (_int(low or 0, "operation_filter_low"),
                     _int(high or 0, "operation_filter_high"))
        base = 1 if steem else 0
        with self.lock:
            st = self.state
            if st.history is None:
                st.history = build_history(st)
            entries = st.history.get(account, [])
            top = st.head if include_reversible or steem else st.irreversible
            visible = bisect.bisect_right([e.block for e in entries], top)
            i = min(start - base, visible - 1)
            out: list[tuple[int, dict]] = []
            scanned = 0
            while i >= 0 and len(out) < limit:
                e = entries[i]
                if masks is not None:
                    if scanned >= FILTER_SCAN:
                        if out:
                            break
                        raise assert_failed(
                            f"total_processed_items < 2000: Could not find filtered operation "
                            f"in {scanned} operations, to continue searching, set "
                            f"start={i + base}.")
                    scanned += 1
                    bit = _history_bit(e.op)
                    if bit is None or not (masks[0] >> bit & 1 if bit < 64
                                           else masks[1] >> (bit - 64) & 1):
                        i -= 1
                        continue
                out.append((i + base, {"trx_id": e.trx_id, "block": e.block,
                                       "trx_in_block": e.trx, "op_in_trx": e.op_in_trx,
                                       "virtual_op": e.virtual,
                                       "timestamp": st.timestamp(e.block), "op": e.op,
                                       "operation_id": 0}))
                i -= 1
        out.reverse()
        return out

    def _advance_by(self, count: Any) -> int:
        n = _int(count, "count")
        self.advance(n)
        return n

    def _pause(self, paused: bool) -> dict:
        self.paused = paused
        return {"paused": paused}

    def status(self) -> dict:
        with self.lock:
            st = self.state
            return {"head": st.head, "irreversible": st.irreversible,
                    "time": st.timestamp(st.head), "first": st.first,
                    "last_recorded": st.numbers[-1], "paused": self.paused,
                    "fork_open": list(st.fork_open) if st.fork_open else None,
                    "included": [vars(i) for i in st.included]}

    def config(self) -> dict:
        """hived's answer is its recorded one (data/hived_get_config.json, from hived's
        pattern tests: both HIVE_CHAIN_ID and the old STEEM_CHAIN_ID); steemd's has only
        STEEM_* keys and SBD. Ids and versions are this node's."""
        st = self.state
        n = st.flavour.name
        hardfork = ".".join(st.flavour.version.split(".")[:2]) + ".0"
        if n == "HIVE":
            recorded = json.loads((DATA / "hived_get_config.json").read_text(encoding="utf-8"))
            return recorded | {"HIVE_CHAIN_ID": st.chain_id,
                               "HIVE_BLOCKCHAIN_VERSION": st.flavour.version,
                               "HIVE_BLOCKCHAIN_HARDFORK_VERSION": hardfork}
        return {
            "STEEM_CHAIN_ID": st.chain_id, "STEEM_BLOCKCHAIN_VERSION": st.flavour.version,
            "STEEM_BLOCKCHAIN_HARDFORK_VERSION": hardfork,
            "STEEM_ADDRESS_PREFIX": "STM", "STEEM_BLOCK_INTERVAL": CHAIN_BLOCK_SECONDS,
            "STEEM_SYMBOL": {"nai": "@@000000021", "decimals": 3},
            "SBD_SYMBOL": {"nai": "@@000000013", "decimals": 3},
            "VESTS_SYMBOL": {"nai": "@@000000037", "decimals": 6},
            "STEEM_100_PERCENT": 10000, "STEEM_1_PERCENT": 100,
            "STEEM_CASHOUT_WINDOW_SECONDS": 604800,
            "STEEM_MAX_TIME_UNTIL_EXPIRATION": MAX_EXPIRATION,
            "STEEM_CUSTOM_OP_ID_MAX_LENGTH": 32, "STEEM_CUSTOM_OP_DATA_MAX_LENGTH": CUSTOM_JSON_MAX,
            "STEEM_MAX_BLOCK_SIZE": 65536, "STEEM_IRREVERSIBLE_THRESHOLD": 7500,
            "STEEM_VOTE_DUST_THRESHOLD": 50000000, "STEEM_UPVOTE_LOCKOUT_SECONDS": 43200,
            "STEEM_REVERSE_AUCTION_WINDOW_SECONDS": 300, "IS_TEST_NET": False,
            "STEEM_ENABLE_SMT": False, "STEEM_INIT_MINER_NAME": "initminer",
        }

    def version(self) -> dict:
        """hived: blockchain_version, chain_id, fc_revision, hive_revision (+ node_type since
        1.27); steemd 0.23 (database_api.cpp get_version): blockchain_version,
        steem_revision, fc_revision, chain_id."""
        st = self.state
        out = {"blockchain_version": st.flavour.version,
               f"{st.flavour.name.lower()}_revision": "testnode", "fc_revision": "testnode",
               "chain_id": st.chain_id}
        if st.flavour.name == "HIVE":
            out["node_type"] = "mainnet"
        return out

    def _dgp(self) -> dict:
        with self.lock:
            return self.state.dgp()

    def _legacy(self, value: Any) -> Any:
        return to_legacy_amounts(to_nai(value), self.state.flavour)

    def _block_num(self, p: Any) -> int:
        return _int(_obj(p).get("block_num"), "block_num")

    def _get_block(self, p: Any) -> Any:
        with self.lock:
            raw = self.state.encoded(self._block_num(p), "appbase")
        return Raw(b'{"block":' + raw + b"}") if raw is not None else {}

    def _get_block_header(self, p: Any) -> dict:
        with self.lock:
            head = self.state.encoded(self._block_num(p), "header")
        return {"header": head} if head is not None else {}

    def _get_block_range(self, p: Any) -> Any:
        start = _int(_obj(p).get("starting_block_num"), "starting_block_num")
        count = _int(_obj(p).get("count"), "count")
        if not 0 < count <= 1000:
            raise invalid("count must be between 1 and 1000")
        with self.lock:
            parts = [self.state.encoded(n, "appbase") for n in range(start, start + count)]
        return Raw(b'{"blocks":[' + b",".join(x for x in parts if x is not None) + b"]}")

    def _c_block(self, p: Any, kind: str) -> Any:
        with self.lock:
            return self.state.encoded(_int(_arg(p, 0), "block_num"), kind)

    def _get_ops_in_block(self, p: Any) -> Any:
        q = _obj(p)
        num = _int(q.get("block_num"), "block_num")
        with self.lock:
            if num > self.state.history_top(bool(q.get("include_reversible"))):
                return {"ops": []}  # hived and steemd: no error for a block they lack
            if num < self.state.first or num > self.state.head:
                return {"ops": []}
            return Raw(self.state.ops_answer(num, bool(q.get("only_virtual"))))

    def _c_ops_in_block(self, p: Any) -> list:
        num = _int(_arg(p, 0), "block_num")
        with self.lock:
            ops = self.state.served_ops(self.state.ops_in_block(num, bool(_arg(p, 1, False))))
            if num > self.state.history_top(True):
                ops = []
            flavour = self.state.flavour
        return [{**o, "op": legacy_op(o["op"], flavour), "virtual_op": int(o["virtual_op"])}
                for o in ops]

    def _enum_virtual_ops(self, p: Any) -> dict:
        q = _obj(p)
        if q.get("filter") not in (None, 0):
            raise invalid("the test node does not support the op-type filter")
        begin = _int(q.get("block_range_begin"), "block_range_begin")
        end = _int(q.get("block_range_end"), "block_range_end")
        op_begin = _int(q.get("operation_begin", 0), "operation_begin")
        limit = _int(q.get("limit", 150000), "limit")
        if end <= begin or limit < 1:
            raise invalid("block_range_end must exceed block_range_begin; limit >= 1")
        with self.lock:
            top = self.state.history_top(bool(q.get("include_reversible")))
            end = min(end, top + 1)
            ops: list[dict] = []
            next_block = next_op = 0
            for num in range(max(begin, self.state.first), end):
                for rec in self.state.ops_in_block(num, True):
                    if rec["operation_id"] < op_begin:
                        continue
                    if len(ops) == limit:
                        next_block, next_op = num, rec["operation_id"]
                        break
                    ops.append(rec)
                if next_block:
                    break
            if not next_block:
                next_block = end if end <= top else 0
            irr = self.state.irreversible
        if not q.get("group_by_block"):
            return {"ops": ops, "ops_by_block": [], "next_block_range_begin": next_block,
                    "next_operation_begin": next_op}
        grouped: list[dict] = []
        for rec in ops:
            if not grouped or grouped[-1]["block"] != rec["block"]:
                grouped.append({"block": rec["block"], "irreversible": rec["block"] <= irr,
                                "timestamp": rec["timestamp"], "ops": []})
            grouped[-1]["ops"].append(rec)
        return {"ops": [], "ops_by_block": grouped, "next_block_range_begin": next_block,
                "next_operation_begin": next_op}

    def _find_comments(self, p: Any) -> dict:
        """hived's ``database_api.find_comments {"comments": [[author, permlink], ...]}``:
        the ones that exist, in the order asked."""
        pairs = _obj(p).get("comments")
        if not isinstance(pairs, list) or len(pairs) > 1000:
            raise invalid("comments must be a list of [author, permlink] (at most 1000)")
        out = []
        with self.lock:
            for pair in pairs:
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise invalid("each comment must be [author, permlink]")
                found = self.state.comment(str(pair[0]), str(pair[1]))
                if found is not None:
                    out.append(comment_object(self.state, found))
        return {"comments": out}

    def _c_get_content(self, p: Any) -> dict:
        """condenser_api.get_content [author, permlink]; a missing post answers an object
        with empty author, as steemd's condenser API did."""
        author, permlink = _arg(p, 0), _arg(p, 1)
        with self.lock:
            found = self.state.comment(str(author), str(permlink))
            if found is None:
                return {"id": 0, "author": "", "permlink": ""}
            return comment_object(self.state, found)

    def _find_accounts(self, p: Any) -> dict:
        names = _obj(p).get("accounts")
        if not isinstance(names, list):
            raise invalid("accounts must be a list of names")
        with self.lock:
            found = [self.state.accounts[n] for n in names if n in self.state.accounts]
        return {"accounts": [to_nai(a) for a in found]}

    def _c_get_accounts(self, p: Any) -> list:
        names = _arg(p, 0)
        if not isinstance(names, list):
            raise invalid("the first argument must be a list of names")
        with self.lock:
            found = [self.state.accounts[n] for n in names if n in self.state.accounts]
        return [self._legacy(a) for a in found]

    def _key_refs(self, keys: Any) -> list[list[str]]:
        if not isinstance(keys, list):
            raise invalid("keys must be a list of public keys")
        with self.lock:
            return [[name for name, acc in self.state.accounts.items()
                     if any(k == key for auth in ("owner", "active", "posting")
                            for k, _ in (acc.get(auth) or {}).get("key_auths", []))]
                    for key in keys]

    def handle(self, request: Any) -> Any:
        """One JSON-RPC request object → response object (or None for a notification)."""
        if isinstance(request, dict) and isinstance(request.get("method"), str):
            name = request["method"]
            self.calls[name] = self.calls.get(name, 0) + 1
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or \
                not isinstance(request.get("method"), str):
            return _error(request.get("id") if isinstance(request, dict) else None,
                          RpcError(-32600, "Invalid Request"))
        rid = request.get("id")
        method, params = request["method"], request.get("params")
        try:
            if method == "call":
                if not (isinstance(params, list) and len(params) >= 2):
                    raise invalid("call takes [api, method, args]")
                method = f"{params[0]}.{params[1]}"
                params = params[2] if len(params) > 2 else []
            fn = self.methods.get(method)
            if fn is None:
                api = method.partition(".")[0]
                if not any(k.startswith(api + ".") for k in self.methods):
                    raise RpcError(-32601, f"Assert Exception:api_itr != "
                                   f"_registered_apis.end(): Could not find API {api}")
                raise RpcError(-32601, "Assert Exception:method_itr != api_itr->second.end(): "
                               f"Could not find method {method.partition('.')[2]}")
            result = fn(params)
        except RpcError as exc:
            return _error(rid, exc)
        except (TypeError, ValueError, KeyError) as exc:
            return _error(rid, invalid(str(exc)[:200]))
        if "id" not in request:
            return None
        return Response(rid, result)


# ------------------------------------------------------------------ account history
# get_account_history as hived's account_history_api (rocksdb) answers it, and steemd 0.23's:
# hived: account_history_api.cpp (limit <= 1000, start >= limit - 1, the operation filter
# scanning at most 2000 entries per call); steemd: no filter (fc ignores unknown fields),
# limit <= 10000, start >= limit, history numbered from 1 (account_history_plugin.cpp).

ACCOUNT_KEYS = ("voter", "author", "parent_author", "from", "to", "agent", "account",
                "witness", "proxy", "publisher", "worker_account", "creator",
                "new_account_name", "delegator", "delegatee", "curator", "comment_author",
                "producer", "from_account", "to_account", "owner", "benefactor",
                "account_to_recover", "recovery_account", "new_recovery_account", "receiver",
                "payer", "challenger", "challenged")
FILTER_SCAN = 2000


def impacted(op: Any) -> set[str]:
    """The accounts whose history lists ``op``: hived's forward_impacted.cpp names the
    parties of each op (both voter and author of a vote, both sides of a delegation, the
    signers of a custom_json ...); here: the account fields of the op and its signers."""
    if isinstance(op, dict):
        value = op.get("value")
    elif isinstance(op, list) and len(op) == 2:
        value = op[1]
    else:
        return set()
    if not isinstance(value, dict):
        return set()
    out = {value[k] for k in ACCOUNT_KEYS if isinstance(value.get(k), str) and value[k]}
    for k in ("required_auths", "required_posting_auths"):
        out.update(a for a in value.get(k) or [] if isinstance(a, str))
    return out


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    block: int
    trx: int
    op_in_trx: int
    virtual: bool
    op: Any
    trx_id: str


def build_history(state: ChainState) -> dict[str, list[HistoryEntry]]:
    """Every account's history over the recorded chain (transactions, then virtual ops of
    each block), in chain order; an entry's index is its sequence number."""
    out: dict[str, list[HistoryEntry]] = {}
    for num in sorted(set(state.recorded) | set(state.vops) | set(state.extra)):
        block = state.canonical_block(num) if num in state.recorded or num in state.extra \
            else None
        entries: list[HistoryEntry] = []
        if block is not None:
            for ti, (tx, tid) in enumerate(zip(block["transactions"], block["transaction_ids"],
                                               strict=True)):
                for oi, op in enumerate(tx.get("operations") or []):
                    entries.append(HistoryEntry(num, ti, oi, False, op, tid))
        for v in state.vops.get(num, []):
            entries.append(HistoryEntry(num, v.get("trx_in_block", VOP_TRX),
                                        v.get("op_in_trx", 0), True, v["op"],
                                        v.get("trx_id", ZERO_ID)))
        for e in entries:
            for name in impacted(e.op):
                out.setdefault(name, []).append(e)
    return out


# ------------------------------------------------------------------ comments
# database_api.find_comments / condenser_api.get_content: the posts the blocks wrote, so a
# curator's tool can read a post's ``created`` (its windows) from the node, as from hived.

COMMENT_CASHOUT_SECONDS = 7 * 24 * 3600  # HIVE_CASHOUT_WINDOW_SECONDS / STEEM_...


def index_comment(index: dict[tuple[str, str], dict], num: int, op: Any) -> None:
    name, value = op_name_value(op)
    if not isinstance(value, dict):
        return
    key = (value.get("author"), value.get("permlink"))
    if name == "comment" and key not in index:  # the first comment op creates it
        index[key] = {"block": num, "created_block": num,
                      "author": key[0], "permlink": key[1],
                      "parent_author": value.get("parent_author", ""),
                      "parent_permlink": value.get("parent_permlink", ""),
                      "title": value.get("title", "")}
    elif name == "comment_payout_update" and key in index:
        index[key].setdefault("paid_block", num)


def build_comments(state: ChainState) -> dict[tuple[str, str], dict]:
    index: dict[tuple[str, str], dict] = {}
    for num in sorted(set(state.recorded) | set(state.extra) | set(state.vops)):
        block = state.canonical_block(num) if num in state.recorded or num in state.extra \
            else None
        for tx in (block or {}).get("transactions") or []:
            for op in tx.get("operations") or []:
                index_comment(index, num, op)
        for v in state.vops.get(num, []):
            index_comment(index, num, v["op"])
    return index


def comment_object(state: ChainState, found: dict) -> dict:
    """The fields of hived's ``api_comment_object`` (database_api) a curator's tool
    reads; the others (body, rshares, payouts) are not tracked here."""
    created = chain_time(state.timestamp(found["created_block"]))
    root = not found["parent_author"]
    return {"author": found["author"], "permlink": found["permlink"],
            "category": found["parent_permlink"] if root else "",
            "parent_author": found["parent_author"], "parent_permlink": found["parent_permlink"],
            "title": found["title"], "depth": 0 if root else 1,
            "created": format_time(created), "last_update": format_time(created),
            "cashout_time": "1969-12-31T23:59:59" if found["paid"]
            else format_time(created + COMMENT_CASHOUT_SECONDS),
            "last_payout": state.timestamp(found["paid_block"]) if found["paid"]
            else "1970-01-01T00:00:00"}


def _history_bit(op: Any) -> int | None:
    from indexer.history import OP_BIT
    from indexer.ops import op_name_value

    return OP_BIT.get(op_name_value(op)[0])


@dataclass(frozen=True, slots=True)
class Raw:
    """A result already serialized (the fast path for blocks)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Response:
    id: Any
    result: Any

    def dump(self) -> bytes:
        res = self.result.data if isinstance(self.result, Raw) else orjson.dumps(self.result)
        return b'{"jsonrpc":"2.0","result":' + res + b',"id":' + orjson.dumps(self.id) + b"}"


def _error(rid: Any, exc: RpcError) -> dict:
    return {"jsonrpc": "2.0", "error": exc.body(), "id": rid}


def _dump(item: Any) -> bytes:
    return item.dump() if isinstance(item, Response) else orjson.dumps(item)


def _obj(params: Any) -> dict:
    if isinstance(params, dict):
        return params
    if isinstance(params, list) and len(params) == 1 and isinstance(params[0], dict):
        return params[0]
    if params in (None, []):
        return {}
    raise invalid("expected an object of named parameters")


def _arg(params: Any, i: int, default: Any = None) -> Any:
    if isinstance(params, list):
        return params[i] if i < len(params) else default
    raise invalid("expected a list of positional parameters")


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{name} must be an integer")
    return value


def jussi_batch_error(size: int, limit: int) -> tuple[bytes, dict[str, str]]:
    """What jussi answers a batch above its limit (jussi/middlewares/limits.py check_limits,
    jussi/errors.py JsonRpcBatchSizeError and JsonRpcError.to_sanic_response): HTTP 200, one
    error object for the whole batch, id null (a batch has no single id)."""
    error_id = str(uuid.uuid4())
    body = {"jsonrpc": "2.0", "id": None, "error": {
        "code": 1600, "message": f"JSONRPC batch size of {size} exceeds {limit}",
        "data": {"error_id": error_id,
                 "jussi_request_id": f"{random.getrandbits(50):018d}"}}}
    return orjson.dumps(body), {"x-jussi-error-id": error_id}


class _Handler(BaseHTTPRequestHandler):
    node: TestNode
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.node.requests += 1
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            self._send(orjson.dumps(_error(None, RpcError(-32700, f"Parse Error:{exc}"))))
            return
        if isinstance(request, list):
            if not request:
                self._send(orjson.dumps(_error(None, RpcError(-32600, "Invalid Request: "
                                                              "empty batch"))))
                return
            limit = self.node.batch_limit
            if limit is not None and len(request) > limit:
                self.node.refused_batches += 1
                self._send(*jussi_batch_error(len(request), limit))
                return
            self.node.largest_batch = max(self.node.largest_batch, len(request))
            items = [r for r in (self.node.handle(x) for x in request) if r is not None]
            self._send(b"[" + b",".join(_dump(i) for i in items) + b"]")
            return
        item = self.node.handle(request)
        self._send(_dump(item) if item is not None else b"")

    def do_GET(self) -> None:  # noqa: N802
        self._send(orjson.dumps(self.node.status()))

    def do_OPTIONS(self) -> None:  # noqa: N802
        """CORS preflight: the curator's page (another origin) posts JSON-RPC here, as it
        does to a public API node (which answer ``Access-Control-Allow-Origin: *``)."""
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Content-Type")
        self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(200 if data else 204)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Access-Control-Allow-Origin", "*")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def main(argv: list[str] | None = None, prog: str = "python -m curation_market.devnode") -> None:
    """The command line (``curation-market devnode`` and ``python -m curation_market.devnode``
    both run it; ``prog`` is how its help names it)."""
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", action="append", default=[], help="block file (repeatable)")
    ap.add_argument("--demo", action="store_true",
                    help="serve the demo chain: real block-17M Steem posts with simulated "
                    "curators, their accounts and globals (no --blocks needed)")
    ap.add_argument("--ops", action="append", default=[], help="account-history ops file")
    ap.add_argument("--port", type=int, default=8091)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--interval", type=float, default=3.0,
                    help="seconds per produced block; 0 = only explicit advance calls")
    ap.add_argument("--step", type=int, default=1, help="blocks produced per interval")
    ap.add_argument("--start", type=int, default=None, help="initial head (default: last block)")
    ap.add_argument("--lag", type=int, default=20, help="head - LIB in blocks")
    ap.add_argument("--globals", default=None, help="dynamic global properties JSON")
    ap.add_argument("--accounts", default=None, help="get_accounts objects, JSON lines")
    ap.add_argument("--account", action="append", default=[], metavar="NAME[=STMPUBKEY]",
                    help="add an account with this posting key (repeatable); without a key a "
                    "throwaway key pair is made and its private key printed (test use only)")
    ap.add_argument("--chain", choices=["hive", "steem"], default="hive")
    ap.add_argument("--chain-id", default=None, help="default: the chain's own")
    ap.add_argument("--fork-every", type=int, default=0)
    ap.add_argument("--fork-depth", type=int, default=2)
    ap.add_argument("--server", choices=sorted(SERVERS), default="hived",
                    help="answer as this node program (steemd 0.23: no get_block_range, no "
                    "effective_comment_vote, serves get_active_votes from the posts)")
    ap.add_argument("--posts", action="append", default=[],
                    help="post dump (get_content objects with active_votes) for "
                    "condenser_api.get_active_votes; --demo brings its own")
    ap.add_argument("--batch-limit", type=int, default=None,
                    help="put a jussi front before the node: batches above this many calls "
                    "get jussi's error (jussi's default is 50)")
    ap.add_argument("--history-lag", type=int, default=0,
                    help="the account-history backend lags the block backend by this many "
                    "blocks (it answers no ops above its own LIB)")
    ap.add_argument("--live", action="store_true",
                    help="make the bundled real posts (block-17M Steem slice) and their votes "
                    "appear in the blocks the node produces, shifted to its chain time, and "
                    "pay them out later (comment_reward, comment_payout_update)")
    ap.add_argument("--live-lead", type=int, default=60, metavar="SECONDS",
                    help="chain seconds from the node's last block to the first live post")
    ap.add_argument("--live-spacing", type=int, default=None, metavar="SECONDS",
                    help="chain seconds between live posts (default: their real spacing)")
    ap.add_argument("--live-payout", type=int, default=None, metavar="SECONDS",
                    help="pay each live post this many chain seconds after it appears "
                    "(default: its real delay, 7 days); votes after that are left out")
    ap.add_argument("--prewarm", action="store_true",
                    help="encode all served blocks before listening (for benchmarks)")
    args = ap.parse_args(argv)
    if not args.blocks and not args.demo:
        ap.error("give --blocks FILE (or --demo)")
    inputs: dict[str, Any] = {"blocks": args.blocks, "globals_path": args.globals,
                              "accounts": args.accounts, "chain": args.chain}
    workdir = tempfile.TemporaryDirectory(prefix="testnode-")
    if args.demo:
        inputs |= demo_chain(Path(workdir.name))
    node = TestNode.from_files(inputs["blocks"], ops=args.ops, head=args.start, lag=args.lag,
                               interval=args.interval or None,
                               globals_path=inputs["globals_path"],
                               accounts=inputs["accounts"], chain=inputs["chain"],
                               chain_id=args.chain_id, fork_every=args.fork_every,
                               fork_depth=args.fork_depth, port=args.port)
    node.host, node.step = args.host, args.step
    posts = [p for p in read_blocks(args.posts) if isinstance(p, dict)]
    if args.demo:
        from curation_market.lab.demo import bundled_posts

        posts += bundled_posts()
    node.serve_as(args.server, batch_limit=args.batch_limit, history_lag=args.history_lag,
                  posts=posts)
    if args.live:
        from curation_market.lab.demo import bundled_posts

        planned = node.add_live_posts(bundled_posts(), lead=args.live_lead,
                                      spacing=args.live_spacing,
                                      payout_after=args.live_payout)
        if planned.blocks:
            first, last = min(planned.blocks), max(planned.vops or planned.blocks)
            print(f"live: {len(planned.posts)} real posts from block {first:,} "
                  f"({node.state.timestamp(first)}) to their payouts by block {last:,} "
                  f"({node.state.timestamp(last)}); {len(planned.refused)} refused",
                  file=sys.stderr, flush=True)
    for spec in args.account:
        name, _, key = spec.partition("=")
        wif = node.add_account(name, key or None)
        if wif:
            print(f"account {name}: throwaway posting key {wif} (export "
                  f"CURATION_POSTING_KEY={wif})", file=sys.stderr, flush=True)
    if args.prewarm:
        node.prewarm()
    node.start()
    print(node.url, flush=True)
    pace = f"{args.step} block(s) every {args.interval} s" if args.interval else \
        "blocks only on request (testnode_api.advance)"
    print(f"serving blocks {node.state.first:,}..{node.head:,} (irreversible "
          f"{node.irreversible:,}); {pace}", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()
        workdir.cleanup()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # skip tearing down a large heap of cached blocks object by object


if __name__ == "__main__":
    main()
