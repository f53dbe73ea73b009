"""Blocks from a live Steem/Hive node: batched catch-up, then follow the LIB.

Why this shape: the database has one writer (the :class:`~indexer.ingest.Ingester`); fetching is
network-bound, so a thread fetches batches of blocks into a bounded queue that the writer
drains. By default only irreversible blocks (at or below the node's last irreversible block)
are fetched, so settlement never sees a block that can be undone. Every block's ``previous``
must name the block written before it (the hash kept in ``meta.last_block_id``, committed with
the batch); a mismatch raises :class:`ChainMismatch` before anything of that block is written.

Virtual ops are attached to each block as ``virtual_ops`` (the ``op`` objects of
``get_ops_in_block``, appbase encoding), which is what :class:`indexer.ops.Adapter` reads: node
blocks and replayed block files take the same path.

What real nodes do, and what this module does about it (docs/node.md has the sources):

- **Batch limits.** A batch of blocks is fetched in JSON-RPC batch requests of at most
  ``call_limit`` calls each. A front that refuses the size (jussi: HTTP 200 with the single
  error ``{"code": 1600, "message": "JSONRPC batch size of N exceeds 50"}``; a proxy: HTTP 413)
  lowers that node's limit to what it announced (else halves it) and the rest of the batch is
  sent in smaller requests; the limit is kept for that node from then on.
- **Missing methods.** ``block_api.get_block_range`` (hived) is used where the node serves it,
  else ``block_api.get_block`` per block (steemd 0.23 has no range call). A node without
  ``account_history_api`` cannot give virtual ops (payouts): that is said in so many words.
- **Incomplete virtual ops.** An account-history backend answers ``{"ops": []}``, without an
  error, for a block above its own LIB. Every block of Hive, and every Steem block from
  864,000 on, has a ``producer_reward`` virtual op, so a block without one is not trusted: the
  batch stops before it, and a batch whose first block is not trusted is retried (on the next
  node) and waited for; it is never indexed as empty.
- **Steem rshares.** Steem emits no ``effective_comment_vote``. On such a chain the final votes
  of every post paid in a block are read with ``condenser_api.get_active_votes`` and attached to
  the block as ``post_votes``; the engine rebuilds the post's rshares and every open commit's
  A(t_commit) from them at settlement (see :class:`curation.records.PostVotes`).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from curation.chains import PROFILES, ChainProfile
from indexer.ops import chain_time, op_name_value

log = logging.getLogger("curation.chain")

class ChainError(RuntimeError):
    """The node cannot be used (unreachable after retries, or answers nonsense)."""

    def __init__(self, message: str, last: BaseException | None = None):
        super().__init__(message)
        self.last = last  # the last attempt's error, when there was one


class NodeAnswer(ValueError):
    """One reply was short or wrong; raised inside an attempt so the next node is tried."""


class Unsupported(NodeAnswer):
    """The node does not serve a method the daemon needs: retrying it cannot help."""


class VopsIncomplete(NodeAnswer):
    """The first block of a batch has virtual ops that cannot be trusted (yet)."""

    def __init__(self, message: str, block: int):
        super().__init__(message)
        self.block = block


class BatchTooLarge(NodeAnswer):
    """The node (or the front before it) refused a batch request for its number of calls."""

    def __init__(self, message: str, limit: int | None):
        super().__init__(message)
        self.limit = limit


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


@dataclass(frozen=True, slots=True)
class RpcFailure:
    """One call's error inside a batch reply."""

    code: int
    message: str

    @property
    def unsupported(self) -> bool:
        """hived/steemd: -32601 "Could not find API/method"; jussi: 1200/1300 namespace."""
        return self.code in (-32601, 1200, 1300) or "Could not find" in self.message


@dataclass
class NodeCaps:
    """What one node URL was found to accept (kept for the client's life)."""

    call_limit: int
    block_range: bool | None = None  # None: not asked yet
    profile: ChainProfile | None = None


JUSSI_LIMIT_RE = re.compile(r"batch size of (\d+) exceeds (\d+)", re.IGNORECASE)
RANGE_MAX = 1000  # hived block_api: "count <= 1000 ... You can only ask for 1000 blocks at a time"
PAYOUT_VOPS = ("comment_reward", "comment_payout_update")


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
    """A failover list of nodes: on an error the next URL is tried, with growing back-off.

    Single calls go through beem; block batches through :meth:`batch`, plain JSON-RPC batch
    requests (beem gives up a whole batch at its first failed call and keeps no call's code,
    and the daemon must know which call failed and why).
    """

    def __init__(self, urls: Sequence[str], timeout: float = 10.0, retries: int = 5,
                 backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep,
                 call_limit: int = 1000):
        if not urls:
            raise ValueError("at least one node URL is needed")
        self.urls = list(urls)
        self.timeout, self.retries, self.backoff, self.sleep = timeout, retries, backoff, sleep
        self.call_limit = call_limit
        self._current = 0
        self._chain: Any = None
        self._session: Any = None
        self.caps: dict[str, NodeCaps] = {}
        self.failovers = 0
        self.distrusted = 0  # answers refused as incomplete (virtual ops, votes)
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
        """Run ``fn(rpc)`` (beem); on failure switch node and retry with back-off."""
        return self.attempts(lambda: fn(self._rpc()))

    def attempts(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn()`` against the current node; on failure switch node and retry with
        exponential back-off. A method no node serves stops at once, with what is missing."""
        delay = self.backoff
        last: Exception | None = None
        unsupported: set[str] = set()
        for attempt in range(self.retries):
            with self._lock:  # the switch too: another thread must not use a half-reset client
                try:
                    return fn()
                except Exception as exc:  # noqa: BLE001 - beem raises many kinds: all "retry"
                    last = exc
                    if isinstance(exc, VopsIncomplete):
                        self.distrusted += 1
                    if isinstance(exc, Unsupported):
                        unsupported.add(self.url)
                        if unsupported >= set(self.urls):
                            raise ChainError(f"node(s) {', '.join(self.urls)}: {exc}"[:600],
                                             exc) from None
                    if not isinstance(exc, NodeAnswer):  # beem's own state may be broken
                        self._chain = None
                    if len(self.urls) > 1:
                        self._chain = None
                        self._current = (self._current + 1) % len(self.urls)
                        self.failovers += 1
            if attempt + 1 < self.retries:
                self.sleep(delay)
                delay = min(delay * 2, 30.0)
        raise ChainError(f"node(s) {', '.join(self.urls)} failed {self.retries} times: "
                         f"{type(last).__name__}: {last}"[:600], last)

    # --- plain JSON-RPC batches -----------------------------------------------------------
    def _caps(self) -> NodeCaps:
        caps = self.caps.get(self.url)
        if caps is None:
            caps = self.caps[self.url] = NodeCaps(self.call_limit)
        return caps

    def _post(self, calls: Sequence[tuple[str, Any]]) -> list[Any]:
        """One HTTP request carrying ``calls``; each reply is its result or an RpcFailure."""
        import requests

        if self._session is None:
            self._session = requests.Session()
        body = orjson.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                             for i, (m, p) in enumerate(calls)])
        try:
            resp = self._session.post(self.url, data=body, timeout=self.timeout,
                                      headers={"Content-Type": "application/json"})
        except requests.RequestException as exc:
            self._session = None
            raise NodeAnswer(f"{type(exc).__name__}: {exc}"[:300]) from None
        if resp.status_code == 413:  # a proxy's body limit: fewer calls per request
            raise BatchTooLarge(f"HTTP 413 for a batch of {len(calls)} calls", None)
        if resp.status_code >= 400:
            raise NodeAnswer(f"HTTP {resp.status_code} from {self.url}")
        try:
            doc = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise NodeAnswer(f"{self.url} answered a batch with no JSON") from None
        if isinstance(doc, dict):  # the batch as a whole was refused
            err = doc.get("error") if isinstance(doc.get("error"), dict) else {}
            message = str(err.get("message", doc))[:300]
            m = JUSSI_LIMIT_RE.search(message)
            if err.get("code") == 1600 or m:
                raise BatchTooLarge(message, int(m.group(2)) if m else None)
            raise NodeAnswer(f"batch refused: {message}")
        if not isinstance(doc, list) or len(doc) != len(calls):
            got = len(doc) if isinstance(doc, list) else type(doc).__name__
            raise NodeAnswer(f"a batch of {len(calls)} calls got {got} replies")
        out: list[Any] = [None] * len(calls)
        for item in doc:
            rid = item.get("id") if isinstance(item, dict) else None
            if not isinstance(rid, int) or not 0 <= rid < len(calls) or out[rid] is not None:
                raise NodeAnswer(f"a batch reply with a wrong id: {str(item)[:100]}")
            if "error" in item:
                err = item["error"] if isinstance(item["error"], dict) else {}
                code = err.get("code")
                out[rid] = RpcFailure(code if isinstance(code, int) else 0,
                                      str(err.get("message", ""))[:300])
            else:
                out[rid] = item.get("result")
                if out[rid] is None:  # steemd answers null for a missing block
                    out[rid] = {}
        return out

    def batch(self, calls: Sequence[tuple[str, Any]]) -> list[Any]:
        """``calls`` in as few requests as the node accepts (inside one attempt).

        A refusal for size lowers this node's limit (to what it announced, else by half) and
        the rest goes out in smaller requests; the limit stays for later batches.
        """
        caps = self._caps()
        out: list[Any] = []
        i = 0
        while i < len(calls):
            n = min(caps.call_limit, len(calls) - i)
            try:
                out += self._post(calls[i:i + n])
            except BatchTooLarge as exc:
                if n == 1:
                    raise NodeAnswer(f"{self.url} refuses even a single call: {exc}") from None
                limit = max(1, min(exc.limit or n // 2, n - 1))
                log.warning("node %s accepts at most %d calls per request (%s); requests are "
                            "split to fit from now on", self.url, limit, exc)
                caps.call_limit = limit
                continue
            i += n
        return out

    def profile(self) -> ChainProfile:
        """The chain the node follows, asked with retries and failover like every call."""
        return self.attempts(self._profile)

    def _profile(self) -> ChainProfile:
        """The chain the current node follows (asked once per node, inside an attempt):
        :func:`profile_from` over its ``get_config`` and ``get_version``. Nodes of one
        failover list must agree."""
        caps = self._caps()
        if caps.profile is None:
            config, version = self.batch([("database_api.get_config", {}),
                                          ("database_api.get_version", {})])
            if isinstance(config, RpcFailure):
                raise NodeAnswer(f"get_config failed: {config.message}")
            caps.profile = profile_from(config, None if isinstance(version, RpcFailure)
                                        else version)
            known = {(c.profile.name, c.profile.chain_id) for c in self.caps.values()
                     if c.profile is not None}
            if len(known) > 1:
                raise ChainError(f"the nodes follow different chains: {sorted(known)}")
        return caps.profile

    def _block_range(self, start: int) -> bool:
        """Whether the current node serves ``block_api.get_block_range`` (asked once)."""
        caps = self._caps()
        if caps.block_range is None:
            [reply] = self.batch([("block_api.get_block_range",
                                   {"starting_block_num": start, "count": 1})])
            caps.block_range = not isinstance(reply, RpcFailure)
            if not caps.block_range:
                log.info("node %s has no block_api.get_block_range (%s): one get_block call "
                         "per block", self.url, reply.message[:120])
        return caps.block_range

    # --- state, blocks, accounts ------------------------------------------------------------
    def state(self) -> NodeState:
        from indexer.accounts import globals_from

        def get(rpc: Any) -> NodeState:
            p = rpc.get_dynamic_global_properties(api="database")
            fund, shares = globals_from(p)
            return NodeState(self.url, int(p["head_block_number"]),
                             int(p["last_irreversible_block_num"]), chain_time(p["time"]),
                             fund, shares)
        return self.call(get)

    def blocks(self, start: int, stop: int, include_reversible: bool = False) -> list[dict]:
        """Blocks ``start..`` up to ``stop`` with their virtual ops (and, on a chain without
        effective votes, the final votes of the posts they pay).

        The node's global properties ride in the first request: a node behind the one that
        announced the LIB (after a failover) must not be read past its own LIB. Every reply is
        checked inside the attempt, so a short or wrong answer is retried on the next node.
        The list ends before the first block whose virtual ops cannot be trusted (see the
        module's docstring); when that is ``start`` itself, :class:`VopsIncomplete` is raised
        (in head mode, an empty list is returned instead).
        """
        return self.attempts(lambda: self._blocks(start, stop, include_reversible))

    def _blocks(self, start: int, stop: int, include_reversible: bool) -> list[dict]:
        profile = self._profile()
        nums = range(start, stop + 1)
        calls: list[tuple[str, Any]] = [("database_api.get_dynamic_global_properties", {})]
        ranged = self._block_range(start)
        if ranged:
            calls += [("block_api.get_block_range",
                       {"starting_block_num": s, "count": min(RANGE_MAX, stop - s + 1)})
                      for s in range(start, stop + 1, RANGE_MAX)]
        else:
            calls += [("block_api.get_block", {"block_num": n}) for n in nums]
        n_block_calls = len(calls) - 1
        for n in nums:
            args: dict[str, Any] = {"block_num": n, "only_virtual": True}
            if include_reversible:
                args["include_reversible"] = True
            calls.append(("account_history_api.get_ops_in_block", args))
        replies = self.batch(calls)
        props = replies[0] if isinstance(replies[0], dict) else {}
        try:
            reached = int(props["head_block_number" if include_reversible
                                else "last_irreversible_block_num"])
        except (KeyError, TypeError, ValueError):
            raise NodeAnswer("global properties without a block number") from None
        if reached < stop:
            raise NodeAnswer(f"node is at block {reached:,}, behind the batch's last {stop:,}")
        raw = _blocks_of(replies[1:1 + n_block_calls], ranged, start, stop)
        out = []
        for n, block, ops_reply in zip(nums, raw, replies[1 + n_block_calls:], strict=True):
            vops = _vops_of(ops_reply, n)
            if n >= profile.producer_reward_from and not any(
                    op_name_value(op)[0] == "producer_reward" for op in vops):
                # an account-history backend behind the block (or without it): no ops, no error
                if out or include_reversible:
                    self.distrusted += 1
                    break
                raise VopsIncomplete(f"block {n:,}: {self.url} answers its virtual ops without "
                                     "the producer_reward every block has (its account history "
                                     "is behind this block or lacks it)", n)
            block["block_num"] = n
            block["virtual_ops"] = vops
            out.append(block)
        if out and not profile.effective_votes:
            self._attach_votes(out)
        return out

    def _attach_votes(self, blocks: list[dict]) -> None:
        """The final votes of every post paid in ``blocks`` (chains without effective votes).

        A post paid a positive amount had positive net rshares at its cashout, so an answer
        with no positive vote cast by then is not the truth: a steemd built with CLEAR_VOTES
        (the default build) deletes a post's votes at its payout.
        """
        wanted: dict[tuple[str, str], tuple[dict, int]] = {}
        for block in blocks:
            for op in block["virtual_ops"]:
                name, value = op_name_value(op)
                if name in PAYOUT_VOPS and isinstance(value, dict):
                    author, permlink = value.get("author"), value.get("permlink")
                    if isinstance(author, str) and isinstance(permlink, str):
                        key = (author, permlink)
                        paid = _paid(value) if name == "comment_reward" else 0
                        if key in wanted:
                            paid = max(paid, wanted[key][1])
                        wanted[key] = (block, paid)
        if not wanted:
            return
        keys = list(wanted)
        replies = self.batch([("condenser_api.get_active_votes", [a, p]) for a, p in keys])
        for (author, permlink), reply in zip(keys, replies, strict=True):
            if isinstance(reply, RpcFailure):
                kind = Unsupported if reply.unsupported else NodeAnswer
                raise kind(f"condenser_api.get_active_votes @{author}/{permlink}: "
                           f"{reply.message} (on a chain without effective_comment_vote the "
                           "votes' rshares come from it)")
            votes = _votes_of(reply, author, permlink)
            block, paid = wanted[(author, permlink)]
            cashout = chain_time(block["timestamp"])
            if paid > 0 and not any(r > 0 and t <= cashout for t, _, r in votes):
                self.distrusted += 1
                raise NodeAnswer(f"@{author}/{permlink} was paid in block {block['block_num']:,} "
                                 f"but {self.url} reports no vote that paid it: a steemd built "
                                 "with CLEAR_VOTES (the default) deletes votes at payout; "
                                 "follow a full node (CLEAR_VOTES=OFF) for Steem rshares")
            block.setdefault("post_votes", []).append(
                {"author": author, "permlink": permlink,
                 "votes": [{"time": t, "voter": v, "rshares": r} for t, v, r in votes]})

    def has_block(self, num: int) -> bool:
        """Whether the node serves block ``num`` (hived answers ``{}`` for a missing one)."""
        reply = self.call(lambda rpc: rpc.get_block_header({"block_num": num}, api="block"))
        return bool((reply or {}).get("header"))

    def block_id(self, num: int) -> str | None:
        """The id the node gives block ``num`` (None: it serves no such block), to find where
        a stored block and the node's part (``curation_market.daemon.forks``)."""
        reply = self.call(lambda rpc: rpc.get_block({"block_num": num}, api="block"))
        value = ((reply or {}).get("block") or {}).get("block_id")
        return value if isinstance(value, str) and _names_block(value, num) else None

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
                        str(hardfork), known.effective_votes, known.vesting_completed,
                        known.producer_reward_from)


def _is_chain_id(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= HEX64


def _blocks_of(replies: list[Any], ranged: bool, start: int, stop: int) -> list[dict]:
    """The blocks ``start..stop`` from get_block_range or get_block replies, checked."""
    blocks: list[Any] = []
    for reply in replies:
        if isinstance(reply, RpcFailure):
            raise NodeAnswer(f"blocks {start:,}..{stop:,}: {reply.message}")
        if ranged:
            got = reply.get("blocks") if isinstance(reply, dict) else None
            if not isinstance(got, list):
                raise NodeAnswer(f"blocks {start:,}..{stop:,}: malformed get_block_range")
            blocks += got
        else:
            blocks.append(reply.get("block") if isinstance(reply, dict) else None)
    if len(blocks) != stop - start + 1:
        raise NodeAnswer(f"blocks {start:,}..{stop:,}: the node has {len(blocks)} of them")
    for n, block in zip(range(start, stop + 1), blocks, strict=True):
        if not isinstance(block, dict) or not block:
            raise NodeAnswer(f"node has no block {n}")
        block_id = block.get("block_id")
        if not isinstance(block_id, str) or not _names_block(block_id, n):
            raise NodeAnswer(f"block {n}: the reply is block {block_id!r}")
    return blocks


def _vops_of(reply: Any, n: int) -> list[Any]:
    if isinstance(reply, RpcFailure):
        kind = Unsupported if reply.unsupported else NodeAnswer
        hint = (": a node without the account_history plugin cannot give virtual ops "
                "(payouts); follow one that has it") if reply.unsupported else ""
        raise kind(f"block {n}: account_history_api.get_ops_in_block: {reply.message}{hint}")
    ops = reply.get("ops") if isinstance(reply, dict) else None
    if not isinstance(ops, list) or not all(isinstance(o, dict) and "op" in o for o in ops):
        raise NodeAnswer(f"block {n}: malformed virtual ops")
    return [o["op"] for o in ops]


def _paid(value: dict) -> int:
    """F of a comment_reward value (0 when unreadable: the adapter reports it)."""
    from indexer.amounts import DOLLAR, AmountError, amount_of

    try:
        return amount_of(value.get("payout"), DOLLAR)
    except AmountError:
        return 0


def _votes_of(reply: Any, author: str, permlink: str) -> list[tuple[int, str, int]]:
    """(time, voter, rshares) of a get_active_votes answer, or NodeAnswer."""
    if not isinstance(reply, list):
        raise NodeAnswer(f"get_active_votes @{author}/{permlink}: not a list")
    out = []
    for v in reply:
        try:
            rshares = v["rshares"]
            r = int(rshares) if isinstance(rshares, int | str) and not isinstance(
                rshares, bool) else None
            if r is None or not isinstance(v["voter"], str):
                raise ValueError
            out.append((chain_time(v["time"]), v["voter"], r))
        except (KeyError, TypeError, ValueError):
            raise NodeAnswer(f"get_active_votes @{author}/{permlink}: malformed vote "
                             f"{str(v)[:80]}") from None
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
                 queue_batches: int = 8, poll: float = 0.5, stop_at: int | None = None,
                 history_wait: float = 600.0):
        self.client, self.next = client, start
        self.batch_size, self.poll, self.stop_at = batch_size, poll, stop_at
        self.history_wait = history_wait  # seconds a block with untrusted virtual ops may wait
        self.waiting: tuple[int, float] | None = None  # (block, monotonic time it was first met)
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
                try:
                    blocks = self.client.blocks(self.next, end)
                except ChainError as exc:
                    if not isinstance(exc.last, VopsIncomplete):
                        raise
                    self._wait_for_history(exc.last)
                    continue
                self.waiting = None
                if not self._put(Batch(blocks, node)):
                    return
                self.next = blocks[-1]["block_num"] + 1
                if self.next > target:
                    self.caught_up.set()
        except Exception as exc:  # noqa: BLE001 - handed to the writer, which reports it
            self._put(exc)

    def _wait_for_history(self, exc: VopsIncomplete) -> None:
        """A block's virtual ops are not there yet (an account-history backend behind the
        block node): never index it as empty; ask again after ``poll``, for at most
        ``history_wait`` seconds, then stop with what is wrong."""
        now = time.monotonic()
        if self.waiting is None or self.waiting[0] != exc.block:
            self.waiting = (exc.block, now)
            log.warning("waiting for the virtual ops of block %d: %s", exc.block, exc)
        elif now - self.waiting[1] > self.history_wait:
            raise ChainError(f"gave up after {self.history_wait:.0f} s: {exc}", exc)
        self.stopping.wait(self.poll)

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
                f"one), or a node served us a wrong block {last_num}; nothing of block {num} "
                "was written. When the node's block ids part from the stored ones inside the "
                "undo window the daemon rewinds by itself; `curation-market rewind --to "
                "BLOCK` goes back by hand")
        if last_num and num != last_num + 1:
            raise ChainMismatch(f"block {num} follows stored block {last_num}: a gap")
        last_num, last_id = num, block.get("block_id", "")
        yield block
