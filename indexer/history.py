"""An account's vesting at an earlier block: its node snapshot, rewound along its history.

Why: a node answers ``find_accounts`` for its head block only. The daemon needs the vesting
of a committer at the block it is indexing, which during a catch-up is months before the
head. Re-applying the vesting ops between the two after reading the head state counts them
twice (the snapshot already holds them). So :class:`Rewind` takes the snapshot read at the
node's head ``H`` and undoes, newest first, the account's vesting ops in blocks
``target+1..H``, read from the node's account history
(``account_history_api.get_account_history``, filtered with :func:`op_filter`). The result
describes the end of block ``target``; the engine then applies every op after ``target``
exactly once (``Account.as_of_block``).

What is exact and what is not (docs/node.md, "Steem Power from the node"):

* ops that carry VESTS (claims, vested rewards, fills, producer rewards, Hive's
  ``transfer_to_vesting_completed`` / ``account_created``) are undone exactly;
* setting ops need the value they replaced: ``delegate_vesting_shares`` the pair's previous
  amount, ``withdraw_vesting`` the power-down in force before. The rewind keeps reading
  further back until it finds them, or the history's beginning (then: none, 0);
* Steem's ``transfer_to_vesting`` (and the pre-HF20 account creation fee) names STEEM, not
  the VESTS the chain created; they are converted at the nearest known price and the
  result is marked approximate, with the VESTS that depended on it;
* ops that move vesting in a way no VESTS figure records (pow rewards before their virtual
  op, Hive's HF23 airdrop exclusion, the 2016 VESTS split) make the result approximate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from curation.chaintime import HF17_TIME, chain_time, format_time
from curation.records import VestingDelta
from curation.state import Account
from curation.vesting import price_at, to_vests, withdraw_rate
from indexer.amounts import VESTS, AmountError, parse_amount
from indexer.ops import Adapter, BadBlock, op_name_value

# The order of hive::protocol::operation: bit i of {operation_filter_high, operation_filter_low}
# selects op i (hive account_history_api.hpp, get_account_history_op_filter_low/high).
HIVE_OPS = (
    "vote", "comment", "transfer", "transfer_to_vesting", "withdraw_vesting",
    "limit_order_create", "limit_order_cancel", "feed_publish", "convert", "account_create",
    "account_update", "witness_update", "account_witness_vote", "account_witness_proxy", "pow",
    "custom", "witness_block_approve", "delete_comment", "custom_json", "comment_options",
    "set_withdraw_vesting_route", "limit_order_create2", "claim_account",
    "create_claimed_account", "request_account_recovery", "recover_account",
    "change_recovery_account", "escrow_transfer", "escrow_dispute", "escrow_release", "pow2",
    "escrow_approve", "transfer_to_savings", "transfer_from_savings",
    "cancel_transfer_from_savings", "custom_binary", "decline_voting_rights", "reset_account",
    "set_reset_account", "claim_reward_balance", "delegate_vesting_shares",
    "account_create_with_delegation", "witness_set_properties", "account_update2",
    "create_proposal", "update_proposal_votes", "remove_proposal", "update_proposal",
    "collateralized_convert", "recurrent_transfer", "fill_convert_request", "author_reward",
    "curation_reward", "comment_reward", "liquidity_reward", "interest",
    "fill_vesting_withdraw", "fill_order", "shutdown_witness", "fill_transfer_from_savings",
    "hardfork", "comment_payout_update", "return_vesting_delegation",
    "comment_benefactor_reward",
    # operation_filter_high
    "producer_reward", "clear_null_account_balance", "proposal_pay", "dhf_funding",
    "hardfork_hive", "hardfork_hive_restore", "delayed_voting", "consolidate_treasury_balance",
    "effective_comment_vote", "ineffective_delete_comment", "dhf_conversion",
    "expired_account_notification", "changed_recovery_account",
    "transfer_to_vesting_completed", "pow_reward", "vesting_shares_split", "account_created",
    "fill_collateralized_convert_request", "system_warning", "fill_recurrent_transfer",
    "failed_recurrent_transfer", "limit_order_cancelled", "producer_missed", "proposal_fee",
    "collateralized_convert_immediate_conversion", "escrow_approved", "escrow_rejected",
    "proxy_cleared", "declined_voting_rights",
)
OP_BIT = {name: i for i, name in enumerate(HIVE_OPS)}

# what can move vesting_shares, delegated/received or the power-down of an account
CREATES = ("account_create", "account_create_with_delegation", "create_claimed_account",
           "account_created")
MODELLED = ("transfer_to_vesting", "withdraw_vesting", "claim_reward_balance",
            "delegate_vesting_shares", "author_reward", "curation_reward",
            "fill_vesting_withdraw", "return_vesting_delegation", "producer_reward",
            "transfer_to_vesting_completed")
UNMODELLED = ("pow", "pow2", "pow_reward", "hardfork_hive", "vesting_shares_split")
VESTING_OPS = MODELLED + CREATES + UNMODELLED


def op_filter(names: Iterable[str] = VESTING_OPS) -> tuple[int, int]:
    """(operation_filter_low, operation_filter_high) selecting ``names``."""
    low = high = 0
    for name in names:
        bit = OP_BIT[name]
        if bit < 64:
            low |= 1 << bit
        else:
            high |= 1 << (bit - 64)
    return low, high


@dataclass(frozen=True, slots=True)
class HistoryOp:
    """One entry of an account's history as the node lists it."""

    seq: int
    block: int
    trx: int
    op: int
    time: int
    virtual: bool
    name: str
    raw: Any  # the op in the node's encoding

    @classmethod
    def of(cls, seq: int, entry: dict) -> HistoryOp:
        name, _ = op_name_value(entry["op"])
        virtual = entry.get("virtual_op")
        return cls(int(seq), int(entry["block"]), int(entry.get("trx_in_block", 0)),
                   int(entry.get("op_in_trx", 0)), chain_time(entry["timestamp"]),
                   bool(virtual) and virtual != 0, name, entry["op"])


@dataclass(slots=True)
class Reconstruction:
    account: Account  # vesting at the end of block ``account.as_of_block``
    pairs: dict[tuple[str, str], int]  # delegations to or from it at that block, where known
    exact: bool
    notes: list[str]
    approx_vests: int  # VESTS of the result that came through a conversion at another price


@dataclass(slots=True)
class _Pair:
    """The delegate ops of one (delegator, delegatee) pair seen so far, newest first."""

    values: list[tuple[int, int, int]] = field(default_factory=list)  # (seq, block, vests)


class Rewind:
    """Feed it the account's history newest first (:meth:`add`) until :meth:`done`, then
    :meth:`result`. ``snapshot`` is the account as ``find_accounts`` answered at ``head``."""

    def __init__(self, snapshot: Account, head: int, target: int, chain: str):
        if target > head:
            raise ValueError(f"cannot rewind the snapshot of block {head} forward to {target}")
        self.snapshot, self.head, self.target, self.chain = snapshot, head, target, chain
        self.name = snapshot.name
        self.adapter = Adapter(chain=chain)
        self.ops: list[tuple[HistoryOp, list[VestingDelta]]] = []  # newest first
        self.pairs: dict[tuple[str, str], _Pair] = {}
        self.oldest_block = head + 1

    def add(self, op: HistoryOp) -> None:
        if op.block > self.head:  # a block produced after the snapshot was read
            return
        records = self._records(op)
        self.ops.append((op, records))
        self.oldest_block = min(self.oldest_block, op.block)
        for r in records:
            if r.kind == "delegation":
                self.pairs.setdefault((r.account, r.other), _Pair()).values.append(
                    (op.seq, op.block, r.vests))

    def _records(self, op: HistoryOp) -> list[VestingDelta]:
        raw: dict[str, Any] = {"block_num": op.block, "timestamp": format_time(op.time)}
        if op.virtual:
            raw["virtual_ops"] = [op.raw]
        else:
            raw["transactions"] = [{"operations": [op.raw]}]
        try:
            records = self.adapter.block(raw).records
        except BadBlock:
            return []
        out = [r for r in records if type(r) is VestingDelta
               and self.name in (r.account, r.other)]
        if not out and op.time < HF17_TIME and op.name in ("author_reward", "curation_reward"):
            out = self._early_reward(op)
        return out

    def _early_reward(self, op: HistoryOp) -> list[VestingDelta]:
        """Before HF17 both chains vested rewards at once (create_vesting in
        pay_curators / cashout_comment_helper); Steem's ops say so by their time only."""
        _, v = op_name_value(op.raw)
        who, key = (("curator", "reward") if op.name == "curation_reward"
                    else ("author", "vesting_payout"))
        if not isinstance(v, dict) or v.get(who) != self.name:
            return []
        try:
            units, kind = parse_amount(v.get(key))
        except AmountError:
            return []
        if kind != VESTS or not units:
            return []
        return [VestingDelta((op.block, op.trx, op.op), self.name, "own", units)]

    # --- when to stop reading ------------------------------------------------------------
    def _window(self) -> list[tuple[HistoryOp, list[VestingDelta]]]:
        return [(op, recs) for op, recs in self.ops if op.block > self.target]

    def missing(self) -> list[str]:
        """What the rewind still needs from older history (empty: it can stop)."""
        if self.oldest_block > self.target:
            return [f"ops at or before block {self.target}"]
        out = []
        for pair, seen in self.pairs.items():
            if any(b > self.target for _, b, _ in seen.values) and \
                    not any(b <= self.target for _, b, _ in seen.values):
                out.append(f"the delegation {pair[0]} -> {pair[1]} before block {self.target + 1}")
        if self._needs_powerdown() and self._powerdown_anchor() is None:
            out.append(f"the power-down in force at block {self.target}")
        return out

    def done(self) -> bool:
        return not self.missing()

    def _needs_powerdown(self) -> bool:
        """The snapshot's power-down fields cannot simply be rolled back: a withdraw_vesting
        replaced them, or the power-down ended (rate 0) with payments in between."""
        window = [r for _, recs in self._window() for r in recs if r.account == self.name]
        if any(r.kind == "powerdown" for r in window):
            return True
        return self.snapshot.vesting_withdraw_rate == 0 and any(
            r.kind == "withdrawn" for r in window)

    def _powerdown_anchor(self) -> tuple[HistoryOp, VestingDelta] | None:
        for op, recs in self.ops:  # newest first: the last withdraw_vesting at or before target
            if op.block <= self.target:
                for r in recs:
                    if r.kind == "powerdown" and r.account == self.name:
                        return op, r
        return None

    # --- the result ----------------------------------------------------------------------
    def result(self, complete: bool, prices: Sequence[tuple[int, int, int]] = ()) -> \
            Reconstruction:
        """The account at the end of block ``target``.

        ``complete``: the history was read to its beginning (or far enough: :meth:`done`);
        what is still missing then does not exist (no earlier delegation: 0; no power-down).
        ``prices``: (block, fund, shares) known, for ops that name STEEM rather than VESTS.
        """
        notes: list[str] = []
        exact = True
        missing = self.missing()
        if missing and not complete:
            exact = False
            notes.append("history ends before " + "; ".join(missing))
        name, s = self.name, self.snapshot
        window = self._window()
        if any(op.name in CREATES and _created(op, name) for op, _ in window):
            return Reconstruction(Account(name, as_of_block=self.target),
                                  {p: 0 for p in self.pairs}, exact, notes +
                                  [f"created after block {self.target}"], 0)
        vests, delegated, received = s.vesting_shares, s.delegated, s.received
        approx = 0
        fills = 0
        for op, recs in window:
            if op.name in UNMODELLED:
                exact = False
                notes.append(f"{op.name} in block {op.block} moved vesting by an amount no "
                             "op records")
            for r in recs:
                mine = r.account == name
                if r.kind == "own" and mine:
                    vests -= r.vests
                elif r.kind == "to_vesting" and mine:
                    price = price_at(prices, op.block)
                    got = None if price is None else to_vests(r.vests, *price)
                    exact = False
                    if got is None:
                        notes.append(f"{op.name} of {r.vests} milli in block {op.block}: "
                                     "no VESTS price known, left in")
                        continue
                    vests -= got
                    approx += got
                    notes.append(f"{op.name} in block {op.block}: {r.vests} milli at the "
                                 f"price of block {_price_block(prices, op.block)}")
                elif r.kind == "withdrawn" and mine:
                    vests += r.vests
                    fills += r.vests
                elif r.kind == "returned" and mine:
                    delegated += r.vests
                elif r.kind == "delegation":
                    prev = self._previous(r, op, complete)
                    if prev is None:
                        exact = False
                        prev = 0
                    delta = r.vests - prev
                    if mine:
                        delegated -= max(delta, 0)  # a lowering leaves at return_vesting_...
                    if r.other == name:
                        received -= delta
        account = Account(name, max(0, vests), max(0, delegated), max(0, received),
                          as_of_block=self.target)
        self._powerdown(account, fills, complete, notes)
        pairs = {p: v for p in self.pairs
                 if (v := self._value_at_target(p, complete)) is not None}
        if vests < 0 or delegated < 0 or received < 0:
            exact = False
            notes.append(f"rewound below zero (vesting {vests}, delegated {delegated}, "
                         f"received {received}): the history misses ops")
        return Reconstruction(account, pairs, exact and not approx, notes, approx)

    def _previous(self, r: VestingDelta, op: HistoryOp, complete: bool) -> int | None:
        """The pair's amount just before ``op``: the pair's previous delegate op, or 0 when
        the history was read to its beginning and holds none (None: unknown)."""
        seen = self.pairs.get((r.account, r.other))
        earlier = [v for seq, _, v in (seen.values if seen else []) if seq < op.seq]
        if earlier:
            return earlier[0]  # values are newest first
        return 0 if complete else None

    def _value_at_target(self, pair: tuple[str, str], complete: bool) -> int | None:
        for _, block, v in self.pairs[pair].values:  # newest first
            if block <= self.target:
                return v
        return 0 if complete else None

    def _powerdown(self, account: Account, fills: int, complete: bool,
                   notes: list[str]) -> None:
        """to_withdraw, withdrawn and the rate at ``target``: rolled back when no
        withdraw_vesting and no end of a power-down lies in between, else rebuilt from the
        withdraw_vesting in force then and the payments after it."""
        s = self.snapshot
        if not self._needs_powerdown():
            account.to_withdraw = s.to_withdraw
            account.withdrawn = max(0, s.withdrawn - fills)
            account.vesting_withdraw_rate = s.vesting_withdraw_rate
            return
        anchor = self._powerdown_anchor()
        if anchor is None:
            if not complete:
                notes.append("power-down before the history read: taken as none")
            return  # none ever: all 0
        op, r = anchor
        paid = sum(x.vests for o, recs in self.ops if o.seq > op.seq and o.block <= self.target
                   for x in recs if x.kind == "withdrawn" and x.account == self.name)
        if r.vests <= 0:
            return  # withdraw_vesting of 0 cancels: rate, to_withdraw, withdrawn all 0
        account.to_withdraw, account.withdrawn = r.vests, paid
        ended = paid >= r.vests or account.vesting_shares == 0
        account.vesting_withdraw_rate = 0 if ended else withdraw_rate(self.chain, op.time,
                                                                        r.vests)


def _created(op: HistoryOp, name: str) -> bool:
    _, v = op_name_value(op.raw)
    return isinstance(v, dict) and v.get("new_account_name") == name


def _price_block(prices: Sequence[tuple[int, int, int]], block: int) -> int:
    before = [p[0] for p in prices if p[0] <= block]
    return max(before) if before else min(p[0] for p in prices)


@dataclass(slots=True)
class HistoryRead:
    complete: bool  # read to the history's beginning
    calls: int
    entries: int
    filtered: bool  # the node applied the operation filter (hived); False: steemd-like


# one page of history: (account, start, limit, filter_low, filter_high) →
# ((sequence, entry) pairs oldest first, or a sequence to continue from: -1 = the end)
Page = Callable[[str, int, int, int, int], tuple[list[tuple[int, dict]], int | None]]
PAGE = 1000  # hived's maximum (steemd allows 10000)


def read_back(page: Page, rewind: Rewind, wanted: Sequence[str] = VESTING_OPS) -> HistoryRead:
    """Read the account's history newest first into ``rewind`` until it has what it needs.

    hived applies ``operation_filter_low/high`` but scans at most 2000 entries per call: a
    call may return fewer than asked (or none, with ``set start=N`` in the error) long before
    the beginning. steemd 0.23 has no filter and ignores the fields: that is noticed from the
    first op outside the filter, and the rest is read unfiltered.
    """
    low, high = op_filter(wanted)
    names = set(wanted)
    start, calls, entries, filtered = -1, 0, 0, True
    while True:
        limit = PAGE if start < 0 else max(1, min(PAGE, start))
        got, cont = page(rewind.name, start, limit, low if filtered else 0,
                         high if filtered else 0)
        calls += 1
        if cont is not None:
            if cont < 0:
                return HistoryRead(True, calls, entries, filtered)
            start = cont
            continue
        if not got:
            return HistoryRead(True, calls, entries, filtered)
        entries += len(got)
        ops = [HistoryOp.of(seq, e) for seq, e in got]
        if filtered and any(op.name not in names for op in ops):
            filtered = False  # the node ignored the filter
        for op in reversed(ops):
            if op.name in names:
                rewind.add(op)
        lowest = got[0][0]
        if rewind.done():
            return HistoryRead(False, calls, entries, filtered)
        if lowest <= 0:
            return HistoryRead(True, calls, entries, filtered)
        start = lowest - 1
