"""The market's working state as plain data, with dirty tracking.

The engine only reads and writes these dicts. In memory (tests) they hold everything; during
ingestion the store fills them with exactly the rows a batch touches, the engine runs, and the
store writes back what is dirty — so memory stays flat however long the chain is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from curation.records import PostKey
from rewards.settle import CommitResult
from rewards.underdog import AuthorEntry


@dataclass(slots=True)
class Post:
    id: int
    author: str
    permlink: str
    created: int  # chain time of the first comment op
    block: int
    parent_author: str
    parent_permlink: str
    is_market: bool
    deleted: bool = False
    declined: bool = False
    beneficiaries: tuple[str, ...] = ()
    net_rshares: int = 0
    abs_rshares: int = 0
    payout: int | None = None  # F, once paid
    paid_block: int | None = None

    @property
    def key(self) -> PostKey:
        return self.author, self.permlink

    @property
    def is_reply(self) -> bool:
        return self.parent_author != ""


@dataclass(slots=True)
class Commit:
    """A predictor's live commitment on a post, later its revealed prediction and, once
    settled, settlement's :class:`rewards.settle.CommitResult` as it was made."""

    post_id: int
    predictor: str
    commitment: str
    block: int
    trx: int
    op: int
    sub: int
    time: int
    sp: int
    sp_known: bool
    abs_at_commit: int
    prediction: int | None = None
    stake: int | None = None  # milli-units
    bid: int | None = None  # thousandths (600 = 0.600), as revealed and bound
    reveal_block: int | None = None
    status: str = "open"  # open → settled | void
    result: CommitResult | None = None  # settlement's own record, once settled

    @property
    def order(self) -> tuple[int, int, int, int]:
        return self.block, self.trx, self.op, self.sub


@dataclass(slots=True)
class Curator:
    name: str
    n: int = 0  # counted predictions on settled posts (revealed or missed)
    hits: int = 0
    open_commits: int = 0
    earned: int = 0  # milli-units
    rewarded: int = 0  # settled predictions that earned something


@dataclass(slots=True)
class Account:
    """Vesting of one account, in micro-VESTS (for Steem Power at commit time).

    The fields mirror the chain's account object: ``delegated`` is
    ``delegated_vesting_shares`` (which still holds lowered delegations until the chain
    returns them), ``received`` is ``received_vesting_shares``. ``as_of_block`` is the block
    at which a node snapshot of the account was read (0 = built from ops only): a vesting op
    at or before it is already in the snapshot.
    """

    name: str
    vesting_shares: int = 0
    delegated: int = 0
    received: int = 0
    to_withdraw: int = 0
    withdrawn: int = 0
    vesting_withdraw_rate: int = 0
    as_of_block: int = 0

    @property
    def next_withdrawal(self) -> int:
        """The power-down's next weekly payment: ``min(vesting_withdraw_rate, to_withdraw -
        withdrawn)`` while one is active (the chain: next_vesting_withdrawal is not the max
        time, which is exactly when the rate is not 0), else 0."""
        if self.vesting_withdraw_rate <= 0:
            return 0
        return max(0, min(self.vesting_withdraw_rate, self.to_withdraw - self.withdrawn))

    @property
    def effective_vests(self) -> int:
        """The chain's effective vesting shares (spec §3): ``vesting_shares -
        delegated_vesting_shares + received_vesting_shares - next_withdrawal`` (steemd
        util::get_effective_vesting_shares in manabar.hpp, hived
        account_object::get_effective_vesting_shares)."""
        return max(0, self.vesting_shares - self.delegated + self.received
                   - self.next_withdrawal)


@dataclass(slots=True)
class PendingReturn:
    """A lowered delegation on its way back (the chain's vesting_delegation_expiration):
    still in the delegator's ``delegated`` until return_vesting_delegation."""

    block: int  # position of the op that lowered the delegation
    trx: int
    op: int
    vests: int
    expires: int  # chain time after which the chain returns it


@dataclass(slots=True)
class SettledMarket:
    post_id: int
    block: int
    time: int
    final_payout: int
    pool: int
    returned: int
    underdog_returned: int
    rules: str
    r: float
    x: float
    f: float | None
    author_average: float | None
    n_commits: int
    n_revealed: int
    n_qualified: int


@dataclass(slots=True)
class Rejection:
    block: int
    trx: int
    op: int
    sub: int
    kind: str
    reason: str
    detail: str
    account: str
    author: str = ""
    permlink: str = ""


@dataclass(slots=True)
class Globals:
    total_vesting_fund: int = 0  # milli-units of the core token
    total_vesting_shares: int = 0  # micro-VESTS

    def steem_power(self, vests: int) -> int | None:
        if self.total_vesting_shares <= 0:
            return None
        return vests * self.total_vesting_fund // self.total_vesting_shares


@dataclass(slots=True)
class Meta:
    last_block: int = 0
    last_block_id: str = ""
    last_time: int = 0
    next_post_id: int = 1


@dataclass
class State:
    meta: Meta = field(default_factory=Meta)
    globals: Globals = field(default_factory=Globals)
    posts: dict[PostKey, Post | None] = field(default_factory=dict)
    votes: dict[tuple[int, str], int] = field(default_factory=dict)
    commits: dict[tuple[int, str], Commit | None] = field(default_factory=dict)
    commits_of_post: dict[int, set[str]] = field(default_factory=dict)
    curators: dict[str, Curator] = field(default_factory=dict)
    accounts: dict[str, Account | None] = field(default_factory=dict)
    delegations: dict[tuple[str, str], int] = field(default_factory=dict)
    returns: dict[str, list[PendingReturn]] = field(default_factory=dict)  # by delegator
    # (block, fund, shares) sorted by block: the VESTS price in force at each block
    vesting_prices: list[tuple[int, int, int]] = field(default_factory=list)
    author_history: dict[tuple[str, bool], list[AuthorEntry]] = field(default_factory=dict)
    # written by the engine, flushed and cleared by the store
    dirty_posts: set[PostKey] = field(default_factory=set)
    dirty_votes: set[tuple[int, str]] = field(default_factory=set)
    dirty_commits: set[tuple[int, str]] = field(default_factory=set)
    dirty_curators: set[str] = field(default_factory=set)
    dirty_accounts: set[str] = field(default_factory=set)
    dirty_delegations: set[tuple[str, str]] = field(default_factory=set)
    dirty_returns: set[str] = field(default_factory=set)
    new_author_entries: list[tuple[int, str, bool, AuthorEntry]] = field(default_factory=list)
    settled: list[SettledMarket] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def curator(self, name: str) -> Curator:
        c = self.curators.get(name)
        if c is None:
            c = self.curators[name] = Curator(name)
        return c

    def add_commit(self, c: Commit) -> None:
        key = (c.post_id, c.predictor)
        self.commits[key] = c
        self.commits_of_post.setdefault(c.post_id, set()).add(c.predictor)
        self.dirty_commits.add(key)

    def clear_written(self) -> None:
        """After a flush: forget what was written so the next batch starts small."""
        for d in (self.posts, self.votes, self.commits, self.commits_of_post, self.curators,
                  self.accounts, self.delegations, self.returns, self.author_history):
            d.clear()
        for s in (self.dirty_posts, self.dirty_votes, self.dirty_commits, self.dirty_curators,
                  self.dirty_accounts, self.dirty_delegations, self.dirty_returns):
            s.clear()
        self.new_author_entries.clear()
        self.settled.clear()
        self.rejections.clear()
