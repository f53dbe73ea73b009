"""Blocks from a live Steem/Hive node through beem: batched catch-up, then follow the LIB.

Why this shape: the database has one writer (the :class:`~indexer.ingest.Ingester`); fetching is
network-bound, so a thread fetches batches (one batched JSON-RPC request per batch:
``block_api.get_block`` + ``account_history_api.get_ops_in_block`` for every block) into a
bounded queue that the writer drains. By default only irreversible blocks (at or below the
node's last irreversible block) are fetched, so settlement never sees a block that can be
undone. Every block's ``previous`` must name the block written before it (the hash kept in
``meta.last_block_id``, committed with the batch); a mismatch raises :class:`ChainMismatch`
before anything of that block is written.

Virtual ops are attached to each block as ``virtual_ops`` (the ``op`` objects of
``get_ops_in_block``, appbase encoding), which is what :class:`indexer.ops.Adapter` reads: node
blocks and replayed block files take the same path.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from curation.chains import PROFILES, ChainProfile
from indexer.ops import chain_time


class ChainError(RuntimeError):
    """The node cannot be used (unreachable after retries, or answers nonsense)."""


class NodeAnswer(ValueError):
    """One reply was short or wrong; raised inside an attempt so the next node is tried."""


class ChainMismatch(ChainError):
    """A block does not link to the stored one before it: refuse to write anything of it."""


@dataclass(frozen=True, slots=True)
class NodeState:
    url: str
    head: int
    irreversible: int
    head_time: int  # chain time of the head block, epoch seconds
    total_vesting_fund: int  # milli core units
    total_vesting_shares: int  # micro-VESTS


def beem_instance(urls: Sequence[str], timeout: float, retries: int = 1,
                  keys: Sequence[str] = (), **options: Any) -> Any:
    """A beem chain instance whose only secrets are ``keys``, in memory: no wallet and no
    config file (beem would otherwise write both to disk)."""
    from beem.blockchaininstance import BlockChainInstance
    from beemstorage import InRamConfigurationStore

    return BlockChainInstance(node=list(urls), num_retries=retries, num_retries_call=retries,
                              timeout=timeout, config_store=InRamConfigurationStore(),
                              keys=list(keys), **options)


class NodeClient:
    """beem over a failover list: on an error the next URL is tried, with growing back-off."""

    def __init__(self, urls: Sequence[str], timeout: float = 10.0, retries: int = 5,
                 backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep):
        if not urls:
            raise ValueError("at least one node URL is needed")
        self.urls = list(urls)
        self.timeout, self.retries, self.backoff, self.sleep = timeout, retries, backoff, sleep
        self._current = 0
        self._chain: Any = None
        self.failovers = 0
        # one beem instance holds one request queue: a call from another thread (the health
        # job) while a batch is being queued would send part of that batch with it
        self._lock = threading.RLock()

    @property
    def url(self) -> str:
        return self.urls[self._current]

    def _rpc(self) -> Any:
        if self._chain is None:
            rotated = self.urls[self._current:] + self.urls[:self._current]
            self._chain = beem_instance(rotated, self.timeout)
        return self._chain.rpc

    def call(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(rpc)``; on failure switch node and retry with exponential back-off."""
        delay = self.backoff
        last: Exception | None = None
        for attempt in range(self.retries):
            with self._lock:  # the switch too: another thread must not use a half-reset client
                try:
                    return fn(self._rpc())
                except Exception as exc:  # noqa: BLE001 - beem raises many kinds: all "retry"
                    last = exc
                    self._chain = None
                    if len(self.urls) > 1:
                        self._current = (self._current + 1) % len(self.urls)
                        self.failovers += 1
            if attempt + 1 < self.retries:
                self.sleep(delay)
                delay = min(delay * 2, 30.0)
        raise ChainError(f"node(s) {', '.join(self.urls)} failed {self.retries} times: "
                         f"{type(last).__name__}: {last}"[:400])

    def state(self) -> NodeState:
        from indexer.accounts import globals_from

        def get(rpc: Any) -> NodeState:
            p = rpc.get_dynamic_global_properties(api="database")
            fund, shares = globals_from(p)
            return NodeState(self.url, int(p["head_block_number"]),
                             int(p["last_irreversible_block_num"]), chain_time(p["time"]),
                             fund, shares)
        return self.call(get)

    def profile(self) -> ChainProfile:
        """The chain this node follows: :func:`node_profile` over the failover list."""
        return self.call(node_profile)

    def blocks(self, start: int, stop: int, include_reversible: bool = False) -> list[dict]:
        """Blocks ``start..stop`` with their virtual ops, in one batched request.

        The node's global properties ride in the same request: a node behind the one that
        announced the LIB (after a failover) answers ``get_ops_in_block`` above its own LIB
        with no ops and no error, which would lose payouts for good. Every reply is checked
        inside the attempt, so a short or wrong answer is retried on the next node.
        """
        def get(rpc: Any) -> list[dict]:
            rpc.rpc_queue = []  # nothing left over from a failed attempt
            rpc.get_dynamic_global_properties(api="database", add_to_queue=True)
            replies = None
            for n in range(start, stop + 1):
                rpc.get_block({"block_num": n}, api="block", add_to_queue=True)
                args = {"block_num": n, "only_virtual": True}
                if include_reversible:
                    args["include_reversible"] = True
                replies = rpc.get_ops_in_block(args, api="account_history",
                                               add_to_queue=n != stop)
            return checked_batch(replies, start, stop, include_reversible)

        return self.call(get)

    def has_block(self, num: int) -> bool:
        """Whether the node serves block ``num`` (hived answers ``{}`` for a missing one)."""
        reply = self.call(lambda rpc: rpc.get_block_header({"block_num": num}, api="block"))
        return bool((reply or {}).get("header"))

    def first_block(self, upto: int) -> int:
        """The lowest block the node serves, at most ``upto``: 1 on a full node; higher on a
        node that starts later (the test node serves a recorded slice). Binary search, about
        log2(upto) calls, made once on a fresh database."""
        if self.has_block(1):
            return 1
        if upto < 1 or not self.has_block(upto):
            raise ChainError(f"node {self.url} serves no block at or below {upto:,}")
        lo, hi = 1, upto  # lo missing, hi served
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if self.has_block(mid) else (mid, hi)
        return hi

    def accounts(self, names: Sequence[str]) -> list[dict]:
        if not names:
            return []
        return self.call(lambda rpc: rpc.find_accounts({"accounts": list(names)},
                                                       api="database")["accounts"])

    def account_snapshot(self, names: Sequence[str]) -> AccountSnapshot:
        """``find_accounts`` between two reads of the global properties, in one batch.

        Both answer from the node's head state (hived and steemd serve API reads from the
        state after the head block, pending transactions included: database.cpp
        ``_push_transaction`` keeps them in ``_pending_tx_session``). The same head before
        and after tags the objects with that block; a head that moved in between is read
        again (on the next attempt).
        """
        def get(rpc: Any) -> AccountSnapshot:
            from indexer.accounts import globals_from

            rpc.rpc_queue = []
            rpc.get_dynamic_global_properties(api="database", add_to_queue=True)
            rpc.find_accounts({"accounts": list(names)}, api="database", add_to_queue=True)
            replies = rpc.get_dynamic_global_properties(api="database", add_to_queue=False)
            if not isinstance(replies, list) or len(replies) != 3 or not all(
                    isinstance(r, dict) for r in replies):
                raise NodeAnswer("account snapshot: expected 3 replies")
            before, found, after = replies
            try:
                head, again = int(before["head_block_number"]), int(after["head_block_number"])
                fund, shares = globals_from(after)
            except (KeyError, TypeError, ValueError) as exc:
                raise NodeAnswer(f"account snapshot: bad global properties ({exc})") from None
            if head != again:
                raise NodeAnswer(f"head moved from {head} to {again} while reading accounts")
            accounts = found.get("accounts")
            if not isinstance(accounts, list):
                raise NodeAnswer("find_accounts: no accounts list")
            return AccountSnapshot(head, chain_time(after["time"]), fund, shares, accounts)
        return self.call(get)

    def history_page(self, account: str, start: int, limit: int, low: int = 0,
                     high: int = 0) -> tuple[list[tuple[int, dict]], int | None]:
        """One page of ``account_history_api.get_account_history`` (reversible blocks
        included: the snapshot is of the head), oldest first; or where to continue from
        (hived's filtered scan stops after 2000 entries with ``set start=N``; -1: the
        beginning was passed, as steemd says for ``start`` 0)."""
        def get(rpc: Any) -> tuple[list[tuple[int, dict]], int | None]:
            args: dict[str, Any] = {"account": account, "start": start, "limit": limit,
                                    "include_reversible": True}
            if low or high:
                args |= {"operation_filter_low": low, "operation_filter_high": high}
            try:
                reply = rpc.get_account_history(args, api="account_history")
            except Exception as exc:  # noqa: BLE001 - beem raises one class per message kind
                text = str(exc)
                more = _CONTINUE.search(text)
                if more:
                    return [], int(more.group(1))
                if start == 0 and "start must be greater" in text:
                    return [], -1
                raise
            history = reply.get("history") if isinstance(reply, dict) else reply
            if not isinstance(history, list) or not all(
                    isinstance(h, list) and len(h) == 2 and isinstance(h[1], dict)
                    for h in history):
                raise NodeAnswer(f"get_account_history {account}: malformed history")
            return [(int(seq), entry) for seq, entry in history], None
        return self.call(get)


_CONTINUE = re.compile(r"set start=(\d+)")


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    head: int  # the block whose state the objects describe
    head_time: int
    total_vesting_fund: int
    total_vesting_shares: int
    accounts: list[dict]


HEX64 = frozenset("0123456789abcdef")


def node_profile(rpc: Any) -> ChainProfile:
    """Ask a node (a beem rpc) for ``get_config`` and ``get_version``, both in database_api on
    steemd 0.23 and hived; see :func:`profile_from`."""
    return profile_from(rpc.get_config(api="database"), rpc.get_version(api="database"))


def profile_from(config: Any, version: Any) -> ChainProfile:
    """A :class:`ChainProfile` from a node's ``get_config`` and ``get_version`` answers.

    The chain is Hive when ``get_config`` has ``HIVE_CHAIN_ID`` (hived also keeps the old
    ``STEEM_CHAIN_ID`` of 64 zeros there: it is not Hive's id), else Steem. The id is the one
    ``get_version`` reports — the database's own, the one the node checks signatures with —
    or else get_config's ``<CHAIN>_CHAIN_ID``. Symbols are read from the ``*_SYMBOL`` keys
    (NAI @@000000021 the core token, @@000000013 the dollar token; testnets name theirs in
    the value), the hardfork version from ``<CHAIN>_BLOCKCHAIN_HARDFORK_VERSION``. Which vops
    the node emits is the chain's (curation/chains.py).
    """
    if not isinstance(config, dict):
        raise ChainError(f"get_config answered {type(config).__name__}, not an object")
    name = "hive" if "HIVE_CHAIN_ID" in config else "steem" if "STEEM_CHAIN_ID" in config \
        else None
    if name is None:
        raise ChainError("get_config has neither HIVE_CHAIN_ID nor STEEM_CHAIN_ID: not a "
                         "Steem or Hive node")
    prefix = name.upper()
    chain_id = version.get("chain_id") if isinstance(version, dict) else None
    if not _is_chain_id(chain_id):
        chain_id = config[f"{prefix}_CHAIN_ID"]
    if not _is_chain_id(chain_id):
        raise ChainError(f"the node's chain id {chain_id!r} is not 64 lowercase hex")
    known = PROFILES[name]
    symbols = {"@@000000021": known.core, "@@000000013": known.dollar}
    for key, value in config.items():
        if not key.endswith("_SYMBOL"):
            continue
        if isinstance(value, dict) and value.get("nai") in symbols:
            symbols[value["nai"]] = key.removesuffix("_SYMBOL")
        elif isinstance(value, str) and key in (f"{prefix}_SYMBOL", f"{known.dollar}_SYMBOL"):
            symbols["@@000000021" if key == f"{prefix}_SYMBOL" else "@@000000013"] = value
    hardfork = config.get(f"{prefix}_BLOCKCHAIN_HARDFORK_VERSION") or known.hardfork_version
    return ChainProfile(name, chain_id, symbols["@@000000021"], symbols["@@000000013"],
                        str(hardfork), known.effective_votes, known.vesting_completed)


def _is_chain_id(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= HEX64


def checked_batch(replies: Any, start: int, stop: int, include_reversible: bool) -> list[dict]:
    """The blocks of a batched reply (global properties first, then block and ops per block),
    or :class:`NodeAnswer` naming what the node got wrong."""
    want = 1 + 2 * (stop - start + 1)
    if not isinstance(replies, list) or len(replies) != want:
        got = len(replies) if isinstance(replies, list) else type(replies).__name__
        raise NodeAnswer(f"batch {start}..{stop}: expected {want} replies, got {got}")
    props = replies[0] if isinstance(replies[0], dict) else {}
    try:
        reached = int(props["head_block_number" if include_reversible
                            else "last_irreversible_block_num"])
    except (KeyError, TypeError, ValueError):
        raise NodeAnswer("global properties without a block number") from None
    if reached < stop:
        raise NodeAnswer(f"node is at block {reached:,}, behind the batch's last {stop:,}")
    out = []
    for i, n in enumerate(range(start, stop + 1)):
        reply, ops_reply = replies[1 + 2 * i], replies[2 + 2 * i]
        block = reply.get("block") if isinstance(reply, dict) else None
        if not isinstance(block, dict) or not block:
            raise NodeAnswer(f"node has no block {n}")
        block_id = block.get("block_id")
        if not isinstance(block_id, str) or not _names_block(block_id, n):
            raise NodeAnswer(f"block {n}: the reply is block {block_id!r}")
        ops = ops_reply.get("ops") if isinstance(ops_reply, dict) else None
        if not isinstance(ops, list) or not all(isinstance(o, dict) and "op" in o for o in ops):
            raise NodeAnswer(f"block {n}: malformed virtual ops")
        block["block_num"] = n
        block["virtual_ops"] = [o["op"] for o in ops]
        out.append(block)
    return out


def _names_block(block_id: str, num: int) -> bool:
    """A block id starts with its number, 8 hex digits."""
    try:
        return int(block_id[:8], 16) == num
    except ValueError:
        return False


@dataclass(slots=True)
class Batch:
    blocks: list[dict]
    node: NodeState


class Fetcher:
    """The fetching thread: batches of irreversible blocks into a bounded queue.

    ``start`` is the first block wanted (checkpoint + 1). When the LIB is reached it polls the
    node every ``poll`` seconds. Errors that survive the client's retries are put on the queue
    so the writer stops with them.
    """

    def __init__(self, client: NodeClient, start: int, batch_size: int = 100,
                 queue_batches: int = 8, poll: float = 0.5, stop_at: int | None = None):
        self.client, self.next = client, start
        self.batch_size, self.poll, self.stop_at = batch_size, poll, stop_at
        self.queue: queue.Queue[Batch | Exception] = queue.Queue(maxsize=queue_batches)
        self.stopping = threading.Event()
        self.caught_up = threading.Event()  # all blocks up to the last LIB seen are queued
        self.thread = threading.Thread(target=self._run, name="chain-fetcher", daemon=True)

    def start(self) -> Fetcher:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()

    def _put(self, item: Batch | Exception) -> bool:
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                node = self.client.state()
                target = node.irreversible
                if self.stop_at is not None:
                    target = min(target, self.stop_at)
                if self.next > target:
                    self.caught_up.set()
                    self.stopping.wait(self.poll)
                    continue
                self.caught_up.clear()
                end = min(target, self.next + self.batch_size - 1)
                blocks = self.client.blocks(self.next, end)
                if not self._put(Batch(blocks, node)):
                    return
                self.next = end + 1
                if self.next > target:
                    self.caught_up.set()
        except Exception as exc:  # noqa: BLE001 - handed to the writer, which reports it
            self._put(exc)

    def drain(self, idle: float = 0.2) -> Iterator[Batch]:
        """Queued batches; ends when the queue is empty and the fetcher has caught up with
        the LIB (or nothing came for ``idle`` seconds). A fetch error is raised here."""
        waited = 0.0
        while True:
            try:
                item = self.queue.get(timeout=0.01)
            except queue.Empty:
                waited += 0.01
                if self.caught_up.is_set() or waited >= idle:
                    return
                continue
            waited = 0.0
            if isinstance(item, Exception):
                raise item
            yield item


def linked(blocks: Iterator[dict], last_num: int, last_id: str) -> Iterator[dict]:
    """Pass blocks on while each names the one before as ``previous``; else ChainMismatch.

    ``last_num``/``last_id`` are the stored checkpoint; blocks at or below it are passed on
    unchecked (the ingester skips them). An empty ``last_id`` (fresh database) trusts the first
    block.
    """
    for block in blocks:
        num = block["block_num"]
        if num <= last_num:
            yield block
            continue
        prev = block.get("previous", "")
        if last_id and num == last_num + 1 and prev != last_id:
            raise ChainMismatch(
                f"block {num} names previous {prev[:16]}… but the stored block {last_num} is "
                f"{last_id[:16]}…: the node follows another chain (or the database belongs to "
                f"one); nothing of block {num} was written")
        if last_num and num != last_num + 1:
            raise ChainMismatch(f"block {num} follows stored block {last_num}: a gap")
        last_num, last_id = num, block.get("block_id", "")
        yield block
