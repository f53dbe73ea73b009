"""The adapter: a block dict in either node encoding → a :class:`Block` of plain records.

Both encodings reach the same handler (``"vote"`` and ``"vote_operation"`` alike), Steem and
Hive field names both parse, and an op that cannot be read becomes a :class:`BadOp` with a
reason instead of an exception: one bad op never takes a block, or the indexer, down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from curation.chaintime import HF20_TIME, BadTime, chain_time
from curation.payload import ACCOUNT_RE, PayloadLimits, parse_payload
from curation.records import (
    VOP_TRX,
    BadOp,
    Block,
    Comment,
    CommentOptions,
    DeleteComment,
    EffectiveVote,
    MarketOp,
    Payout,
    Pos,
    PostVotes,
    Record,
    VestingDelta,
    Vote,
)
from curation.vesting import CHAINS, STEEM
from indexer.amounts import CORE, DOLLAR, VESTS, AmountError, amount_of, parse_amount

MAX_RSHARES = 2**56  # ~50x the largest real vote; beyond it the input is absurd


class BadBlock(ValueError):
    """A block line that cannot be placed on the chain (no number or time)."""


MAX_BLOCK = 2**32 - 1  # block numbers are uint32 on chain (and must fit the DB columns)


def block_number(block: dict) -> int:
    for key in ("block_num", "_block_num", "block_number"):
        n = block.get(key)
        if isinstance(n, int) and not isinstance(n, bool) and 0 < n <= MAX_BLOCK:
            return n
    block_id = block.get("block_id")
    if isinstance(block_id, str) and len(block_id) >= 8 and block_id[:8].isalnum():
        try:
            n = int(block_id[:8], 16)
        except ValueError:
            pass
        else:
            if n > 0:
                return n
    raise BadBlock("block has no block_num, _block_num or block_id")


BLOCK_ID_CHARS = 40  # a block id is 20 bytes in hex on both chains (meta.last_block_id)


def _block_text(block: dict, key: str) -> str:
    """``block_id`` / ``previous``: a short printable ASCII string, or absent. Longer than a
    real id is refused here: PostgreSQL would refuse it at the checkpoint, on every rerun."""
    v = block.get(key)
    if v is None:
        return ""
    if type(v) is not str or len(v) > BLOCK_ID_CHARS or not v.isascii() or not v.isprintable():
        raise BadBlock(f"{key} is not a block id: {v!r:.40}")
    return v


def op_name_value(op: Any) -> tuple[str, Any]:
    """Either encoding → (short name, value); unknown shapes give ("", None)."""
    if isinstance(op, list) and len(op) == 2 and isinstance(op[0], str):
        return op[0], op[1]
    if isinstance(op, dict):
        name = op.get("type")
        if isinstance(name, str):
            return name.removesuffix("_operation"), op.get("value")
    return "", None


def _s(value: dict, key: str, alt: str = "") -> str:
    """A short printable ASCII string under ``key`` (or its other spelling ``alt``).

    Names and permlinks on chain are ASCII and short; anything else is bad input, and
    refusing it here keeps NULs and lone surrogates out of every database.
    """
    v = value[key] if alt == "" or key in value else value[alt]
    if type(v) is not str or len(v) > 256 or not v.isascii() or not v.isprintable():
        raise ValueError(f"{key} is not a short printable ASCII string")
    return v


def _names3(v: dict, k1: str, k2: str, k3: str) -> tuple[str, str, str]:
    """Three :func:`_s` checks at once (votes are most of the ops that matter); any doubt
    falls back to :func:`_s` one by one, so errors read exactly the same."""
    a, b, c = v[k1], v[k2], v[k3]
    if type(a) is str and type(b) is str and type(c) is str and len(a) <= 256 \
            and len(b) <= 256 and len(c) <= 256:
        joined = a + b + c
        if joined.isascii() and joined.isprintable():
            return a, b, c
    return _s(v, k1), _s(v, k2), _s(v, k3)


def _int(value: Any) -> int:
    if type(value) is int:
        n = value
    elif type(value) is str and value.removeprefix("-").isdigit() and value.isascii():
        n = int(value)  # digit strings only: no floats, "1_000", spaces or non-ASCII digits
    else:
        raise TypeError(f"not an integer: {value!r:.40}")
    if abs(n) > MAX_RSHARES:
        raise ValueError(f"absurd number {n}")
    return n


Handler = Callable[[Pos, dict], "Record | list[Record] | None"]

# Every field of an op's value that its handler below (or ``_who``, naming a bad op's
# account) may read. The replay's fast path (indexer/fastblock.py) decodes only these and
# hands a handler back a dict of them: a handler that reads a new field must name it here
# (tests/test_fastblock.py checks each handler against this table).
WHO_FIELDS = ("voter", "author", "account", "curator", "delegator", "from_account")
FIELDS_READ: dict[str, tuple[str, ...]] = {
    "comment": ("author", "permlink", "parent_author", "parent_permlink"),
    "comment_options": ("author", "permlink", "max_accepted_payout", "extensions"),
    "delete_comment": ("author", "permlink"),
    "vote": ("voter", "author", "permlink"),
    "effective_comment_vote": ("voter", "author", "permlink", "rshares"),
    "custom_json": ("id", "json", "required_auths", "required_posting_auths"),
    "comment_reward": ("total_payout_value", "curator_payout_value",
                       "beneficiary_payout_value", "payout", "author", "comment_author",
                       "permlink", "comment_permlink"),
    "comment_payout_update": ("author", "permlink"),
    "delegate_vesting_shares": ("delegator", "delegatee", "vesting_shares"),
    "withdraw_vesting": ("account", "vesting_shares"),
    "fill_vesting_withdraw": ("from_account", "to_account", "withdrawn", "deposited"),
    "return_vesting_delegation": ("account", "vesting_shares"),
    "claim_reward_balance": ("reward_vests", "account"),
    "curation_reward": ("payout_must_be_claimed", "curator", "reward"),
    "author_reward": ("payout_must_be_claimed", "author", "vesting_payout"),
    "producer_reward": ("vesting_shares", "producer"),
    "transfer_to_vesting": ("to", "from", "amount"),
    "account_create": ("new_account_name", "fee", "delegation", "creator"),
    "account_create_with_delegation": ("new_account_name", "fee", "delegation", "creator"),
    "transfer_to_vesting_completed": ("to_account", "vesting_shares_received"),
    "account_created": ("new_account_name", "initial_vesting_shares", "initial_delegation",
                        "creator"),
}


class Adapter:
    """Holds the few settings the translation needs (market id, payload limits, chain).

    ``chain`` picks where vesting is read: Hive reports every vesting change in a virtual op
    (``transfer_to_vesting_completed``, ``account_created``) and its ops are ignored; Steem
    has no such virtual ops, so its ops are read (``transfer_to_vesting`` converted by the
    engine at the block's price, ``account_create*`` fee and delegation).
    """

    def __init__(self, market_id: str = "curation_market", limits: PayloadLimits | None = None,
                 chain: str = STEEM):
        if chain not in CHAINS:
            raise ValueError(f"chain must be one of {CHAINS}, not {chain!r}")
        self.market_id = market_id
        self.limits = limits or PayloadLimits()
        self.chain = chain
        self._time = 0  # the block being read (a few Steem ops depend on its hardfork)
        handlers: dict[str, Handler] = {
            "comment": self._comment,
            "comment_options": self._comment_options,
            "delete_comment": self._delete_comment,
            "vote": self._vote,
            "effective_comment_vote": self._effective_vote,
            "custom_json": self._custom_json,
            "comment_reward": self._comment_reward,
            "comment_payout_update": self._payout_update,
            "delegate_vesting_shares": self._delegate,
            "withdraw_vesting": self._withdraw_vesting,
            "fill_vesting_withdraw": self._fill_vesting_withdraw,
            "return_vesting_delegation": self._returned,
            "claim_reward_balance": self._claim_reward,
            "curation_reward": self._curation_reward,
            "author_reward": self._author_reward,
            "producer_reward": self._producer_reward,
        }
        if chain == STEEM:
            handlers["transfer_to_vesting"] = self._to_vesting
            handlers["account_create"] = self._account_create
            handlers["account_create_with_delegation"] = self._account_create
        else:
            handlers["transfer_to_vesting_completed"] = self._vested
            handlers["account_created"] = self._account_created
        self.handlers = handlers
        # condenser names that reach a handler; custom_json only matters under our id, and
        # that is checked on the value (cheap) before the payload is parsed
        self.wanted = frozenset(handlers) | {f"{name}_operation" for name in handlers}

    def block(self, raw: Any) -> Block:
        if not isinstance(raw, dict):
            raise BadBlock(f"block is {type(raw).__name__}, not an object")
        num = block_number(raw)
        try:
            time = chain_time(raw.get("timestamp"))
        except BadTime as exc:
            raise BadBlock(str(exc)) from None
        out = Block(num=num, time=time,
                    block_id=_block_text(raw, "block_id"), previous=_block_text(raw, "previous"))
        self._time = out.time
        records = out.records
        txs = raw.get("transactions") or []
        if not isinstance(txs, list):
            raise BadBlock("transactions is not a list")
        wanted, market_id = self.wanted, self.market_id
        n_ops = 0
        for trx_index, trx in enumerate(txs):
            ops = trx.get("operations") if isinstance(trx, dict) else None
            if not isinstance(ops, list):
                records.append(BadOp((num, trx_index, 0), "transaction", "malformed_transaction"))
                continue
            n_ops += len(ops)
            for op_index, op in enumerate(ops):
                # most ops on chain are of no interest: drop them on the name alone, before
                # any further look at the op (the common condenser shape first)
                if type(op) is list and len(op) == 2 and type(op[0]) is str:
                    name, value = op
                    if name not in wanted or (name == "custom_json" and type(value) is dict
                                              and value.get("id") != market_id):
                        continue
                elif type(op) is dict and type(op.get("type")) is str and op["type"] not in wanted:
                    continue
                self._op((num, trx_index, op_index), op, records)
        vops = raw.get("virtual_ops") or []
        if isinstance(vops, list):
            n_ops += len(vops)
            for i, op in enumerate(vops):
                if type(op) is list and len(op) == 2 and type(op[0]) is str:
                    if op[0] not in wanted:
                        continue
                elif type(op) is dict and type(op.get("type")) is str and op["type"] not in wanted:
                    continue
                self._op((num, VOP_TRX, i), op, records)
        else:
            records.append(BadOp((num, VOP_TRX, 0), "virtual_ops", "malformed_virtual_ops"))
        post_votes = raw.get("post_votes")
        if post_votes is not None:  # the daemon's final votes of posts paid in this block
            base = len(vops) if isinstance(vops, list) else 1
            if not isinstance(post_votes, list):
                records.append(BadOp((num, VOP_TRX, base), "post_votes", "malformed_post_votes"))
            else:
                for i, pv in enumerate(post_votes):
                    records.append(_post_votes((num, VOP_TRX, base + i), pv))
        out.n_ops += n_ops
        return out

    def _op(self, pos: Pos, op: Any, records: list[Record]) -> None:
        name, value = op_name_value(op)
        handler = self.handlers.get(name)
        if handler is None:
            if name == "":  # not an op of either encoding: corrupt input, not an irrelevant op
                records.append(BadOp(pos, "op", "malformed_op",
                                     "neither [name, value] nor {type, value}"))
            return
        if not isinstance(value, dict):
            records.append(BadOp(pos, name, "malformed_op", "op value is not an object"))
            return
        try:
            out = handler(pos, value)  # all of an op's records, or none of them
        except (KeyError, TypeError, ValueError, AmountError, OverflowError) as exc:
            detail = f"{type(exc).__name__}: {exc}"[:160]
            records.append(BadOp(pos, name, "malformed_op", detail, _who(value)))
            return
        if type(out) is list:
            records.extend(out)
        elif out is not None:
            records.append(out)

    # --- posts and votes -------------------------------------------------------------
    def _comment(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        return Comment(pos, _s(v, "author"), _s(v, "permlink"), _s(v, "parent_author"),
                      _s(v, "parent_permlink"))

    def _comment_options(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        cap = v.get("max_accepted_payout")
        return CommentOptions(pos, _s(v, "author"), _s(v, "permlink"), _beneficiaries(v),
                             None if cap is None else amount_of(cap, DOLLAR))

    def _delete_comment(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        return DeleteComment(pos, _s(v, "author"), _s(v, "permlink"))

    def _vote(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        return Vote(pos, *_names3(v, "voter", "author", "permlink"))

    def _effective_vote(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        voter, author, permlink = _names3(v, "voter", "author", "permlink")
        rshares = v["rshares"]
        if type(rshares) is not int or not -MAX_RSHARES <= rshares <= MAX_RSHARES:
            rshares = _int(rshares)
        return EffectiveVote(pos, voter, author, permlink, rshares)

    # --- the market's own ops ---------------------------------------------------------
    def _custom_json(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        if v.get("id") != self.market_id:
            return
        auths = v.get("required_auths") or []
        posting = v.get("required_posting_auths") or []
        signers = set(auths if isinstance(auths, list) else []) | set(
            posting if isinstance(posting, list) else [])
        msgs = parse_payload(v.get("json"), self.limits)
        if len(signers) != 1:
            return MarketOp(pos, None, msgs, f"{len(signers)} signing accounts, need exactly 1")
        signer = signers.pop()
        if not isinstance(signer, str) or not ACCOUNT_RE.fullmatch(signer):
            # the signer becomes a predictor row: no NULs, surrogates or non-names in the DB
            return MarketOp(pos, None, msgs, f"signer {signer!r:.40} is not an account name")
        return MarketOp(pos, signer, msgs)

    # --- payouts ----------------------------------------------------------------------
    def _comment_reward(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        if "total_payout_value" in v or "curator_payout_value" in v:
            parts = ("total_payout_value", "curator_payout_value", "beneficiary_payout_value")
            amount = sum(amount_of(v[k], DOLLAR) for k in parts if k in v)
        else:
            amount = amount_of(v["payout"], DOLLAR)
        return Payout(pos, _s(v, "author", "comment_author"),
                     _s(v, "permlink", "comment_permlink"), amount)

    def _payout_update(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        return Payout(pos, _s(v, "author"), _s(v, "permlink"), None)

    # --- vesting (Steem Power) --------------------------------------------------------
    def _delegate(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        return VestingDelta(pos, _s(v, "delegator"), "delegation",
                           amount_of(v["vesting_shares"], VESTS), _s(v, "delegatee"))

    def _withdraw_vesting(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        return VestingDelta(pos, _s(v, "account"), "powerdown",
                           amount_of(v["vesting_shares"], VESTS))

    def _fill_vesting_withdraw(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        source, target = _s(v, "from_account"), _s(v, "to_account")
        out: list[Record] = [VestingDelta(pos, source, "withdrawn",
                                          amount_of(v["withdrawn"], VESTS))]
        deposited, kind = parse_amount(v["deposited"])
        if kind == VESTS and target != source:
            out.append(VestingDelta(pos, target, "own", deposited))
        return out

    def _returned(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        return VestingDelta(pos, _s(v, "account"), "returned",
                           amount_of(v["vesting_shares"], VESTS))

    def _to_vesting(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        """Steem: transfer_to_vesting_evaluator calls create_vesting(to or from, amount)."""
        target = _s(v, "to") if v.get("to") else _s(v, "from")
        amount, kind = parse_amount(v["amount"])
        if kind == CORE and amount:  # (SBD can only go to the treasury, which never votes)
            return VestingDelta(pos, target, "to_vesting", amount)

    def _account_create(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        """Steem account_create(_with_delegation)_evaluator: before HF20 the fee is vested
        for the new account (create_vesting); the delegation (HF17–HF20 op) is a delegation
        from the creator like any other."""
        account = _s(v, "new_account_name")
        out: list[Record] = []
        fee = amount_of(v["fee"], CORE)
        if fee and self._time < HF20_TIME:
            out.append(VestingDelta(pos, account, "to_vesting", fee))
        delegation = amount_of(v.get("delegation", "0.000000 VESTS"), VESTS)
        if delegation:
            out.append(VestingDelta(pos, _s(v, "creator"), "delegation", delegation, account))
        return out

    def _vested(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        return VestingDelta(pos, _s(v, "to_account"), "own",
                           amount_of(v["vesting_shares_received"], VESTS))

    def _claim_reward(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        vests = amount_of(v["reward_vests"], VESTS)
        if vests:
            return VestingDelta(pos, _s(v, "account"), "own", vests)

    def _curation_reward(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        if v.get("payout_must_be_claimed") is False:  # before HF17 rewards vested at once
            return VestingDelta(pos, _s(v, "curator"), "own", amount_of(v["reward"], VESTS))

    def _author_reward(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        if v.get("payout_must_be_claimed") is False:
            return VestingDelta(pos, _s(v, "author"), "own", amount_of(v["vesting_payout"], VESTS))

    def _producer_reward(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        units, kind = parse_amount(v["vesting_shares"])
        if kind == VESTS and units:
            return VestingDelta(pos, _s(v, "producer"), "own", units)

    def _account_created(self, pos: Pos, v: dict) -> Record | list[Record] | None:
        account = _s(v, "new_account_name")
        out: list[Record] = [VestingDelta(pos, account, "own",
                                          amount_of(v["initial_vesting_shares"], VESTS))]
        delegation = amount_of(v.get("initial_delegation", "0.000000 VESTS"), VESTS)
        if delegation:
            out.append(VestingDelta(pos, _s(v, "creator"), "delegation", delegation, account))
        return out


def _post_votes(pos: Pos, pv: Any) -> Record:
    """``{"author", "permlink", "votes": [{"time", "voter", "rshares"}]}`` → PostVotes (or
    a BadOp naming what is wrong: the whole list or nothing, never part of a post's votes)."""
    try:
        if not isinstance(pv, dict) or not isinstance(pv.get("votes"), list):
            raise TypeError("expected {author, permlink, votes: [...]}")
        votes = []
        for v in pv["votes"]:
            t = v["time"]
            if not (type(t) is int and 0 <= t < 2**32):
                t = chain_time(t)
            votes.append((t, _s(v, "voter"), _int(v["rshares"])))
        return PostVotes(pos, _s(pv, "author"), _s(pv, "permlink"), tuple(votes))
    except (KeyError, TypeError, ValueError) as exc:
        return BadOp(pos, "post_votes", "malformed_post_votes",
                     f"{type(exc).__name__}: {exc}"[:160], _who(pv) if isinstance(pv, dict) else "")


def _beneficiaries(v: dict) -> tuple[str, ...]:
    names: list[str] = []
    for ext in v.get("extensions") or []:
        if isinstance(ext, list) and len(ext) == 2:
            body = ext[1]
        elif isinstance(ext, dict):
            body = ext.get("value")
        else:
            continue
        if isinstance(body, dict):
            for b in body.get("beneficiaries") or []:
                names.append(_s(b, "account"))
    return tuple(names)


def _who(value: dict) -> str:
    for key in ("voter", "author", "account", "curator", "delegator", "from_account"):
        v = value.get(key)
        if isinstance(v, str):
            return v[:32]
    return ""
