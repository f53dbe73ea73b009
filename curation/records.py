"""Plain op records: the only input the market core understands.

The indexer turns either node encoding (condenser or block_api) into these, so the core
never sees JSON, amounts-as-strings or encodings. A position ``(block, trx, op)`` is an op's
identity and its order; virtual ops sit after every transaction of their block (trx = VOP_TRX).

Records are frozen ``msgspec`` structs rather than frozen dataclasses: as immutable, compared
and hashed field by field, but built about eight times faster (a frozen dataclass sets each
field through ``object.__setattr__``), and a replay builds half a million per million ops.
They hold no reference cycles, so the garbage collector does not track them (``gc=False``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from msgspec import Struct

VOP_TRX = 2**31 - 1  # virtual ops come after all transactions of their block

Pos = tuple[int, int, int]
PostKey = tuple[str, str]  # (author, permlink)


class Comment(Struct, frozen=True, gc=False):
    pos: Pos
    author: str
    permlink: str
    parent_author: str
    parent_permlink: str


class CommentOptions(Struct, frozen=True, gc=False):
    pos: Pos
    author: str
    permlink: str
    beneficiaries: tuple[str, ...]
    max_accepted_payout: int | None  # milli-units; 0 means payout declined


class DeleteComment(Struct, frozen=True, gc=False):
    pos: Pos
    author: str
    permlink: str


class Vote(Struct, frozen=True, gc=False):
    """A vote op: carries no rshares, but tells who voted (voters may be flagged)."""

    pos: Pos
    voter: str
    author: str
    permlink: str


class EffectiveVote(Struct, frozen=True, gc=False):
    """The rshares a vote really had (Hive vop, importer vop or live node lookup)."""

    pos: Pos
    voter: str
    author: str
    permlink: str
    rshares: int


class PostVotes(Struct, frozen=True, gc=False):
    """A post's votes as a node reports them after the fact: each voter's last vote, at its
    time, with its rshares (steemd's ``get_active_votes``).

    Steem emits no ``effective_comment_vote``, so on such a chain the daemon reads the final
    votes of a post in the block that pays it. The engine then rebuilds the post's rshares and
    every open commit's A(t_commit) from them: exactly what a replay of a post dump computes,
    where each of these votes is an ``effective_comment_vote`` at its time.
    """

    pos: Pos
    author: str
    permlink: str
    votes: tuple[tuple[int, str, int], ...]  # (chain time, voter, rshares)


class CommitMsg(Struct, frozen=True, gc=False):
    author: str
    permlink: str
    commitment: str


class RevealMsg(Struct, frozen=True, gc=False):
    author: str
    permlink: str
    prediction: int  # milli-units
    salt: bytes
    stake: int | None = None  # milli-units, for staked rule sets (issue: seed rule sets)
    bid: int | None = None  # thousandths ("0.600" → 600), as the commitment binds it


class BadMsg(Struct, frozen=True, gc=False):
    reason: str
    detail: str = ""


Msg = CommitMsg | RevealMsg | BadMsg


class MarketOp(Struct, frozen=True, gc=False):
    """A custom_json with the market's id: one signer, one or more judged messages."""

    pos: Pos
    signer: str | None  # None when the signer set is not exactly one account
    msgs: tuple[Msg, ...]
    signer_problem: str = ""


class Payout(Struct, frozen=True, gc=False):
    """A realised payout (comment_reward) or the end of a cashout (comment_payout_update).

    ``amount`` is F in milli-units when the op carries it, else None.
    """

    pos: Pos
    author: str
    permlink: str
    amount: int | None


class VestingDelta(Struct, frozen=True, gc=False):
    """A change to an account's vesting, for Steem Power at commit time.

    ``kind`` says which column moves: ``own`` (vesting_shares), ``delegation`` (absolute
    amount from ``account`` to ``other``), ``powerdown`` (absolute new to_withdraw; the engine
    sets the rate by the chain's formula), ``withdrawn`` (vests paid out of a power-down),
    ``returned`` (a lowered delegation reaching its delegator: return_vesting_delegation),
    ``to_vesting`` (``vests`` holds milli core tokens that the chain turned into VESTS at the
    price in force: Steem's transfer_to_vesting, which has no virtual op giving the VESTS).
    """

    pos: Pos
    account: str
    kind: str
    vests: int  # micro-VESTS (milli core tokens for ``to_vesting``)
    other: str = ""


class BadOp(Struct, frozen=True, gc=False):
    """An op we care about that could not be read: kept so nothing is lost silently."""

    pos: Pos
    kind: str
    reason: str
    detail: str = ""
    account: str = ""


Record = (
    Comment | CommentOptions | DeleteComment | Vote | EffectiveVote | MarketOp | Payout
    | VestingDelta | BadOp | PostVotes
)


@dataclass(slots=True)
class Block:
    """One block's records in position order, with its chain time (epoch seconds)."""

    num: int
    time: int
    block_id: str = ""
    previous: str = ""
    records: list[Record] = field(default_factory=list)
    n_ops: int = 0  # every op in the block, relevant or not (for throughput figures)
