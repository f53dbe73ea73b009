"""The replay's fast path: a block line decoded straight into records, or handed back.

The dict path (``orjson.loads`` then :meth:`indexer.ops.Adapter.block`) builds a dict for
every op of every block and then looks at its name; most ops on chain (follows, transfers,
orders) are dropped right there. Here ``msgspec`` decodes the line against the shape of a
block whose ops are a tagged union over every op name of both chains: an op the adapter has
no handler for keeps its body as raw bytes, skipped in C; an op it has a handler for is
decoded into a struct of just the fields that handler reads (``indexer.ops.FIELDS_READ``).
The hot ops (votes, comments, custom_json ids, producer and claimed rewards) become records
from those fields; every other handled op, and any hot op whose fields are not exactly
what a record needs, gets the adapter's own handler with a dict of the same fields.

The contract is exactness, not coverage: :meth:`FastDecoder.decode` returns a :class:`Block`
only when the dict path gives the very same records, and None otherwise — a line msgspec
refuses (bad JSON, a lone surrogate, a number out of range, nesting past ~1000, an op that
is not ``[name, {...}]`` with a known name: the block_api ``{type, value}`` encoding and
ops newer than the lists below included), bytes that are not UTF-8, a block header it does
not take as is, or a number the dict path's two JSON parsers read apart. The caller then
takes the dict path, unchanged, so bad input is judged exactly as before: a malformed op is
a ``BadOp`` in the dict handler's words, a bad line a ``BadLine``. ``tests/test_fastblock.py``
holds both paths to the same output on real files and fuzzed lines.

Op names: the ``operation`` static_variant of steemd
(``libraries/protocol/include/steem/protocol/operations.hpp``) and hived (the same file under
``hive/protocol``, through ``producer_missed_operation``), SMT operations included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union

import msgspec
from msgspec import UNSET, Raw, Struct, defstruct

from curation.chaintime import BadTime, chain_time
from curation.records import VOP_TRX, Block, Comment, EffectiveVote, Record, VestingDelta, Vote
from indexer.amounts import VESTS, AmountError, parse_amount
from indexer.ops import (
    FIELDS_READ,
    MAX_BLOCK,
    MAX_RSHARES,
    WHO_FIELDS,
    Adapter,
    BadBlock,
    _block_text,
)

OP_NAMES = (  # noqa: SIM905 - 96 names read better as words
    # transactions
    "vote comment transfer transfer_to_vesting withdraw_vesting limit_order_create "
    "limit_order_cancel feed_publish convert account_create account_update witness_update "
    "account_witness_vote account_witness_proxy pow custom report_over_production "
    "delete_comment custom_json comment_options set_withdraw_vesting_route "
    "limit_order_create2 claim_account create_claimed_account request_account_recovery "
    "recover_account change_recovery_account escrow_transfer escrow_dispute escrow_release "
    "pow2 escrow_approve transfer_to_savings transfer_from_savings "
    "cancel_transfer_from_savings custom_binary decline_voting_rights reset_account "
    "set_reset_account claim_reward_balance delegate_vesting_shares "
    "account_create_with_delegation witness_set_properties account_update2 create_proposal "
    "update_proposal_votes remove_proposal update_proposal collateralized_convert "
    "recurrent_transfer claim_reward_balance2 smt_setup smt_cap_reveal smt_refund "
    "smt_setup_emissions smt_set_setup_parameters smt_set_runtime_parameters smt_create "
    "smt_contribute "
    # virtual
    "fill_convert_request author_reward curation_reward comment_reward liquidity_reward "
    "interest fill_vesting_withdraw fill_order shutdown_witness fill_transfer_from_savings "
    "hardfork comment_payout_update return_vesting_delegation comment_benefactor_reward "
    "producer_reward clear_null_account_balance proposal_pay sps_fund hardfork_hive "
    "hardfork_hive_restore delayed_voting consolidate_treasury_balance effective_comment_vote "
    "ineffective_delete_comment sps_convert expired_account_notification "
    "changed_recovery_account transfer_to_vesting_completed pow_reward vesting_shares_split "
    "account_created fill_collateralized_convert_request system_warning "
    "fill_recurrent_transfer failed_recurrent_transfer limit_order_cancelled producer_missed"
).split()


def _body(name: str) -> type[Struct]:
    """The fields of ``name``'s value its handler (or ``_who``) reads: any JSON value each,
    UNSET when the op has no such field; every other field is skipped unread."""
    names = dict.fromkeys(FIELDS_READ[name] + WHO_FIELDS)
    return defstruct(f"{name}_value", [(_attr(n), Any, UNSET) for n in names], gc=False,
                     rename={"from_": "from"})


def _attr(key: str) -> str:
    return "from_" if key == "from" else key


def _op(name: str, value: Any) -> type[Struct]:
    """``[name, value]``: exactly two elements, as the dict path requires."""
    return defstruct(f"{name}_op", [("value", value)], tag=name, array_like=True,
                     forbid_unknown_fields=True, gc=False)


def _typed_op(name: str, value: Any) -> type[Struct]:
    """block_api's ``{"type": "<name>_operation", "value": ...}`` (other keys ignored, as the
    dict path does)."""
    return defstruct(f"{name}_operation", [("value", value)], tag=f"{name}_operation",
                     tag_field="type", gc=False)


def _decoder(ops: list[type[Struct]]) -> Callable[[bytes], Any]:
    op = Union[tuple(ops)]  # noqa: UP007 - built at run time
    trx = defstruct("trx", [("operations", list[op])], gc=False)  # type: ignore[valid-type]
    return msgspec.json.Decoder(defstruct("block", [
        ("block_num", int | None, None),
        ("underscore_num", int | None, None),
        ("block_number", int | None, None),
        ("block_id", str | None, None),
        ("previous", str | None, None),
        ("timestamp", str | None, None),
        ("transactions", list[trx] | None, None),  # type: ignore[valid-type]
        ("virtual_ops", list[op] | None, None),  # type: ignore[valid-type]
        ("post_votes", Raw | None, None),
    ], rename={"underscore_num": "_block_num"}, gc=False)).decode


class _Doubt(Exception):  # noqa: N818 - a signal: this line must take the dict path
    pass


def _name(a: Any) -> bool:
    """:func:`indexer.ops._s`'s test, answered (True when ``a`` passes)."""
    return type(a) is str and len(a) <= 256 and a.isascii() and a.isprintable()


def _names(a: Any, b: Any, c: Any, d: Any = "") -> bool:
    """:func:`_name` of each, at once."""
    if (type(a) is not str or type(b) is not str or type(c) is not str or type(d) is not str
            or len(a) > 256 or len(b) > 256 or len(c) > 256 or len(d) > 256):
        return False
    joined = a + b + c + d
    return joined.isascii() and joined.isprintable()


# orjson reads an integer beyond 64 bits as a float, msgspec (and the standard library's
# parser, the dict path's fallback for lines orjson refuses) as an int: a handler must never
# see one from here
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def _plain(value: Any) -> Any:
    """``value`` if orjson would have read it the same, else :class:`_Doubt`."""
    kind = type(value)
    if kind is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise _Doubt
    elif kind is list:
        for item in value:
            _plain(item)
    elif kind is dict:
        for item in value.values():
            _plain(item)
    return value


Pos = tuple[int, int, int]
Handler = Callable[[Pos, Any, list[Record]], None]


class FastDecoder:
    """Block lines → :class:`Block`, for the adapter's market id, limits and chain.

    Holds its own :class:`Adapter` (the handlers for the ops it does not build itself, and the
    block time a few Steem ops read), so it may run beside the ingester's.
    """

    def __init__(self, adapter: Adapter):
        self.adapter = Adapter(adapter.market_id, adapter.limits, adapter.chain)
        self.market_id = adapter.market_id
        self._op = self.adapter._op
        handled = self.adapter.handlers
        built: dict[str, Callable[..., None]] = {
            "vote": self._vote,
            "effective_comment_vote": self._effective_vote,
            "comment": self._comment,
            "custom_json": self._custom_json,
            "producer_reward": self._producer_reward,
            "claim_reward_balance": self._claim_reward,
        }
        condenser: list[type[Struct]] = []
        block_api: list[type[Struct]] = []
        self.handlers: dict[type, Handler] = {}  # by op struct: ops without one are skipped
        self.fallback: dict[str, Handler] = {}  # by name: the adapter's handler
        for name in dict.fromkeys(OP_NAMES + list(handled)):
            if name not in handled:  # no handler: never looked at
                condenser.append(_op(name, Raw))
                block_api.append(_typed_op(name, Raw))
                continue
            body = _body(name)
            keys = tuple((_attr(k), k) for k in dict.fromkeys(FIELDS_READ[name] + WHO_FIELDS))
            self.fallback[name] = self._fallback(name, keys)
            handler = built.get(name, self.fallback[name])
            for op in (_op(name, body), _typed_op(name, body)):
                (condenser if op.__struct_config__.array_like else block_api).append(op)
                self.handlers[op] = handler
        # one decoder per encoding of ops (a union may not mix arrays and objects); the one
        # that read the last line is tried first: a file keeps one encoding
        self._decoders = [_decoder(condenser), _decoder(block_api)]

    def _fallback(self, name: str, keys: tuple[tuple[str, str], ...]) -> Handler:
        op = self._op

        def handle(pos: Pos, v: Any, records: list[Record]) -> None:
            """The adapter's own handler, with the fields the op carried."""
            value = {}
            for attr, key in keys:
                got = getattr(v, attr)
                if got is not UNSET:
                    value[key] = _plain(got)
            op(pos, [name, value], records)
        return handle

    def decode(self, line: bytes) -> Block | None:
        """The line's block, or None: the dict path must read this line."""
        decoders = self._decoders
        try:
            raw = decoders[0](line)
        except (msgspec.DecodeError, RecursionError):  # (ValidationError is a DecodeError)
            try:
                raw = decoders[1](line)
            except (msgspec.DecodeError, RecursionError):
                return None
            decoders.reverse()
        if not line.isascii():
            try:  # msgspec skips strings unread without checking their UTF-8; orjson refuses
                line.decode()
            except UnicodeDecodeError:
                return None
        try:
            return self._block(raw)
        except (_Doubt, BadBlock, BadTime):
            return None

    def _block(self, raw: Any) -> Block:
        if raw.post_votes is not None:
            raise _Doubt  # the daemon's own field: the dict path reads it
        num = _number(raw)
        out = Block(num=num, time=chain_time(raw.timestamp),
                    block_id=_text(raw.block_id, "block_id"),
                    previous=_text(raw.previous, "previous"))
        self.adapter._time = out.time
        records = out.records
        handlers = self.handlers
        n_ops = 0
        for trx_index, trx in enumerate(raw.transactions or ()):
            ops = trx.operations
            n_ops += len(ops)
            for op_index, op in enumerate(ops):
                handler = handlers.get(type(op))
                if handler is not None:
                    handler((num, trx_index, op_index), op.value, records)
        vops = raw.virtual_ops or ()
        n_ops += len(vops)
        for i, op in enumerate(vops):
            handler = handlers.get(type(op))
            if handler is not None:
                handler((num, VOP_TRX, i), op.value, records)
        out.n_ops = n_ops
        return out

    # --- records built here when every check passes; else the adapter's handler judges --
    def _vote(self, pos: Pos, v: Any, records: list[Record]) -> None:
        if _names(v.voter, v.author, v.permlink):
            records.append(Vote(pos, v.voter, v.author, v.permlink))
        else:
            self.fallback["vote"](pos, v, records)

    def _effective_vote(self, pos: Pos, v: Any, records: list[Record]) -> None:
        r = v.rshares
        if type(r) is int and -MAX_RSHARES <= r <= MAX_RSHARES and _names(v.voter, v.author,
                                                                          v.permlink):
            records.append(EffectiveVote(pos, v.voter, v.author, v.permlink, r))
        else:
            self.fallback["effective_comment_vote"](pos, v, records)

    def _comment(self, pos: Pos, v: Any, records: list[Record]) -> None:
        if _names(v.author, v.permlink, v.parent_author, v.parent_permlink):
            records.append(Comment(pos, v.author, v.permlink, v.parent_author,
                                   v.parent_permlink))
        else:
            self.fallback["comment"](pos, v, records)

    def _custom_json(self, pos: Pos, v: Any, records: list[Record]) -> None:
        """Skipped unless its id is ours, as the dict path does (an absent id is None)."""
        if v.id == self.market_id:
            self.fallback["custom_json"](pos, v, records)

    def _producer_reward(self, pos: Pos, v: Any, records: list[Record]) -> None:
        if type(v.vesting_shares) is str:
            try:
                units, kind = parse_amount(v.vesting_shares)
            except AmountError:
                pass
            else:
                if kind != VESTS or not units:
                    return  # the adapter's handler reads nothing more either
                if _name(v.producer):
                    records.append(VestingDelta(pos, v.producer, "own", units))
                    return
        self.fallback["producer_reward"](pos, v, records)

    def _claim_reward(self, pos: Pos, v: Any, records: list[Record]) -> None:
        if type(v.reward_vests) is str:
            try:
                units, kind = parse_amount(v.reward_vests)
            except AmountError:
                pass
            else:
                if kind == VESTS and not units:
                    return
                if kind == VESTS and _name(v.account):
                    records.append(VestingDelta(pos, v.account, "own", units))
                    return
        self.fallback["claim_reward_balance"](pos, v, records)


def _number(raw: Any) -> int:
    for n in (raw.block_num, raw.underscore_num, raw.block_number):
        if n is not None and 0 < n <= MAX_BLOCK:
            return n
    raise _Doubt  # the dict path reads it, or tries the block id


def _text(value: str | None, key: str) -> str:
    return "" if value is None else _block_text({key: value}, key)
