"""The market engine: applies one block of records to the state (spec §2–§3, §6).

Pure and chain-time driven: the only clock is the block's timestamp, so the same blocks give
the same state. Every op it cannot accept becomes a :class:`Rejection` with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from curation.chains import STEEM_CHAIN_ID, curation_fraction
from curation.commitment import commitment
from curation.payload import PayloadLimits, format_milli
from curation.phase import Windows
from curation.records import (
    BadMsg,
    BadOp,
    Block,
    Comment,
    CommentOptions,
    CommitMsg,
    DeleteComment,
    EffectiveVote,
    MarketOp,
    Payout,
    PostKey,
    PostVotes,
    RevealMsg,
    VestingDelta,
    Vote,
)
from curation.state import Account, Commit, PendingReturn, Post, Rejection, SettledMarket, State
from curation.vesting import (
    CHAINS,
    delegation_return_period,
    price_at,
    to_vests,
    withdraw_rate,
)
from rewards.rules import Rules
from rewards.settle import Entry, settle
from rewards.underdog import AuthorEntry, author_average, fraction, relative_payout


@dataclass(frozen=True, slots=True)
class MarketConfig:
    market_id: str = "curation_market"
    chain_id: str = STEEM_CHAIN_ID
    chain: str = "steem"  # "steem" or "hive": which ops carry vesting, which hardfork rules
    window: int = 30 * 60  # seconds after `created` in which commits count
    reveal_period: int = 6 * 3600  # seconds after the window in which reveals count
    include_replies: bool = False
    max_open_commits: int = 500
    limits: PayloadLimits = field(default_factory=PayloadLimits)
    rules: Rules = field(default_factory=Rules)

    @property
    def windows(self) -> Windows:
        return Windows(self.window, self.reveal_period)

    def settings(self) -> dict[str, str]:
        """Every setting that changes what a replay computes and that the rules label and
        the chain id (recorded beside them) do not name, under its config key, as text: what
        a database records at its first write and refuses to resume under other values (one
        database, one market). All of ``[market]``, and the two ``[rules]`` keys the author
        average stored with every settlement depends on even with the underdog rule off.
        The windows decide the phase and the seal too, so readers take them from here rather
        than from their own config (:meth:`Windows.of_settings`)."""
        lim, rules = self.limits, self.rules
        window = rules.author_window
        return {
            "market.custom_json_id": self.market_id,
            "market.window_seconds": str(self.window),
            "market.reveal_period_seconds": str(self.reveal_period),
            "market.include_replies": "true" if self.include_replies else "false",
            "market.max_prediction": format_milli(lim.max_prediction),
            "market.max_open_commits": str(self.max_open_commits),
            "market.max_payload_bytes": str(lim.max_payload_bytes),
            "market.max_ops_per_payload": str(lim.max_ops_per_payload),
            "rules.underdog_floor": repr(float(rules.underdog_floor)),
            "rules.author_window_days": str(window // 86400) if window % 86400 == 0
            else f"{window}s",
        }

    def __post_init__(self) -> None:
        if self.chain not in CHAINS:
            raise ValueError(f"chain must be one of {CHAINS}, not {self.chain!r}")


RSHARES_LIMIT = 2**62  # post totals (and vesting sums) must fit a signed 64-bit column
# rejection sub-positions of vesting kinds (an op may carry several deltas)
_SUBS = ("own", "withdrawn", "delegation", "powerdown", "returned", "to_vesting")


class Reject(Exception):  # noqa: N818 - a control-flow signal carrying a reason, not an error
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def apply_block(state: State, block: Block, cfg: MarketConfig) -> None:
    """Apply every record of ``block`` in position order, then settle what paid out."""
    step = _Step(state, block, cfg, {})
    step.run()


class Applier:
    """Reuses one step object across blocks (building its dispatch table per block shows up
    in profiles of long replays)."""

    def __init__(self, state: State, cfg: MarketConfig):
        self.step = _Step(state, Block(0, 0), cfg, {})

    def apply(self, block: Block) -> None:
        self.step.block = block
        self.step.payouts = {}
        self.step.run()


class _Step:
    """One block's record handlers; carries the block's context so handlers stay short."""

    def __init__(self, state: State, block: Block, cfg: MarketConfig,
                 payouts: dict[PostKey, int | None]):
        self.s, self.block, self.cfg, self.payouts = state, block, cfg, payouts
        self.dispatch = {
            Comment: self.comment, CommentOptions: self.comment_options,
            DeleteComment: self.delete, Vote: self.vote, EffectiveVote: self.effective_vote,
            MarketOp: self.market_op, Payout: self.payout, VestingDelta: self.vesting,
            BadOp: self.bad_op, PostVotes: self.post_votes,
        }

    def run(self) -> None:
        dispatch, block = self.dispatch, self.block
        for rec in block.records:
            dispatch[type(rec)](rec)
        _settle_block(self.s, block, self.cfg, self.payouts)
        meta = self.s.meta
        meta.last_block, meta.last_block_id, meta.last_time = block.num, block.block_id, \
            block.time

    # --- posts and votes -------------------------------------------------------------
    def comment(self, c: Comment) -> None:
        key = (c.author, c.permlink)
        if self.s.posts.get(key) is not None:
            return  # an edit: `created` never changes
        meta = self.s.meta
        is_market = c.parent_author == "" or self.cfg.include_replies
        self.s.posts[key] = Post(meta.next_post_id, c.author, c.permlink, self.block.time,
                                 self.block.num, c.parent_author, c.parent_permlink, is_market)
        meta.next_post_id += 1
        self.s.dirty_posts.add(key)

    def comment_options(self, o: CommentOptions) -> None:
        post = self.s.posts.get((o.author, o.permlink))
        if post is None:
            return
        post.beneficiaries = tuple(sorted(set(post.beneficiaries) | set(o.beneficiaries)))
        if o.max_accepted_payout == 0:
            post.declined = True
        self.s.dirty_posts.add(post.key)

    def delete(self, d: DeleteComment) -> None:
        post = self.s.posts.get((d.author, d.permlink))
        if post is None or post.deleted or post.paid_block is not None:
            return
        post.deleted = True
        self.s.dirty_posts.add(post.key)
        for predictor in sorted(self.s.commits_of_post.get(post.id, ())):
            commit = self.s.commits[(post.id, predictor)]
            if commit is not None and commit.status == "open":
                commit.status = "void"
                self.s.curator(predictor).open_commits -= 1
                self.s.dirty_curators.add(predictor)
                self.s.dirty_commits.add((post.id, predictor))

    def vote(self, v: Vote) -> None:
        post = self.s.posts.get((v.author, v.permlink))
        if post is None:
            return
        key = (post.id, v.voter)
        if key not in self.s.votes:
            self.s.votes[key] = 0
            self.s.dirty_votes.add(key)

    def effective_vote(self, v: EffectiveVote) -> None:
        post = self.s.posts.get((v.author, v.permlink))
        if post is None or post.paid_block is not None:
            return  # after payout a vote moves no money
        key = (post.id, v.voter)
        old = self.s.votes.get(key, 0)
        net = post.net_rshares + v.rshares - old
        total = post.abs_rshares + abs(v.rshares) - abs(old)
        if abs(net) > RSHARES_LIMIT or total > RSHARES_LIMIT:
            self.reject(v.pos, 0, "effective_comment_vote", "absurd_rshares",
                        f"post totals would pass {RSHARES_LIMIT}", v.voter, *post.key)
            return
        post.net_rshares, post.abs_rshares = net, total
        self.s.votes[key] = v.rshares
        self.s.dirty_votes.add(key)
        self.s.dirty_posts.add(post.key)

    def post_votes(self, pv: PostVotes) -> None:
        """The post's final votes (a chain without effective votes): its rshares and every
        open commit's A(t_commit) are rebuilt from them, as the replay of a post dump would
        have them: a vote counts for a commit when it is from an earlier block (a vote's
        effective op comes after the transactions of its block), and for the post when it is
        not later than the payout."""
        post = self.s.posts.get((pv.author, pv.permlink))
        if post is None or post.paid_block is not None:
            return
        last: dict[str, tuple[int, int]] = {}
        for t, voter, rshares in pv.votes:
            if t <= self.block.time and (voter not in last or last[voter][0] <= t):
                last[voter] = (t, rshares)
        net = sum(r for _, r in last.values())
        total = sum(abs(r) for _, r in last.values())
        if abs(net) > RSHARES_LIMIT or total > RSHARES_LIMIT:
            self.reject(pv.pos, 0, "post_votes", "absurd_rshares",
                        f"post totals would pass {RSHARES_LIMIT}", "", *post.key)
            return
        post.net_rshares, post.abs_rshares = net, total
        self.s.dirty_posts.add(post.key)
        for voter, (_, rshares) in last.items():
            key = (post.id, voter)
            self.s.votes[key] = rshares
            self.s.dirty_votes.add(key)
        for predictor in self.s.commits_of_post.get(post.id, ()):
            commit = self.s.commits.get((post.id, predictor))
            if commit is not None and commit.status == "open":
                commit.abs_at_commit = sum(abs(r) for t, r in last.values() if t < commit.time)
                self.s.dirty_commits.add((post.id, predictor))

    # --- commit and reveal ------------------------------------------------------------
    def market_op(self, op: MarketOp) -> None:
        for sub, msg in enumerate(op.msgs):
            try:
                if op.signer is None:
                    raise Reject("signers", op.signer_problem)
                if isinstance(msg, BadMsg):
                    raise Reject(msg.reason, msg.detail)
                if isinstance(msg, CommitMsg):
                    self.commit(op, sub, op.signer, msg)
                else:
                    self.reveal(op.signer, msg)
            except Reject as r:
                author = getattr(msg, "author", "")
                permlink = getattr(msg, "permlink", "")
                self.reject(op.pos, sub, "custom_json", r.reason, r.detail, op.signer or "",
                            author, permlink)

    def _open_post(self, author: str, permlink: str) -> Post:
        post = self.s.posts.get((author, permlink))
        if post is None:
            raise Reject("unknown_post", f"@{author}/{permlink}")
        if post.deleted:
            raise Reject("deleted_post", f"@{author}/{permlink}")
        if not post.is_market:
            raise Reject("not_a_market", "replies are not markets (markets.include_replies)")
        if post.paid_block is not None:
            raise Reject("market_settled", f"paid in block {post.paid_block}")
        return post

    def commit(self, op: MarketOp, sub: int, signer: str, msg: CommitMsg) -> None:
        post = self._open_post(msg.author, msg.permlink)
        if signer == post.author:
            raise Reject("own_post", "authors cannot predict their own posts")
        if signer in post.beneficiaries:
            raise Reject("beneficiary", "beneficiaries cannot predict the post")
        age = self.block.time - post.created
        if not self.cfg.windows.commit_open(age):
            raise Reject("commit_window_closed",
                         f"{age}s after the post, window {self.cfg.window}s")
        old = self.s.commits.get((post.id, signer))
        curator = self.s.curator(signer)
        if old is None or old.status != "open":
            if curator.open_commits >= self.cfg.max_open_commits:
                raise Reject("too_many_open_commits", f"limit {self.cfg.max_open_commits}")
            curator.open_commits += 1
            self.s.dirty_curators.add(signer)
        sp, known = self._steem_power(signer)
        block, trx, opi = op.pos
        self.s.add_commit(Commit(post.id, signer, msg.commitment, block, trx, opi, sub,
                                 self.block.time, sp, known, post.abs_rshares))

    def _steem_power(self, name: str) -> tuple[int, bool]:
        account = self.s.accounts.get(name)
        price = self._price()
        if account is None or price is None:
            return 0, False
        fund, shares = price
        return account.effective_vests * fund // shares, True

    def _price(self) -> tuple[int, int] | None:
        """(total_vesting_fund, total_vesting_shares) in force at this block: the price
        history when there is one, else the single snapshot of older databases."""
        price = price_at(self.s.vesting_prices, self.block.num)
        if price is None:
            g = self.s.globals
            price = (g.total_vesting_fund, g.total_vesting_shares)
        return price if price[0] > 0 and price[1] > 0 else None

    def reveal(self, signer: str, msg: RevealMsg) -> None:
        post = self._open_post(msg.author, msg.permlink)
        commit = self.s.commits.get((post.id, signer))
        if commit is None or commit.status != "open":
            raise Reject("no_commitment", f"{signer} has no live commitment on this post")
        age = self.block.time - post.created
        if not self.cfg.windows.reveal_open(age):
            if age <= self.cfg.window:
                raise Reject("reveal_too_early", f"{age}s after the post; reveals open after "
                                                 f"{self.cfg.window}s")
            raise Reject("reveal_too_late", f"{age}s after the post")
        if commit.prediction is not None:
            raise Reject("already_revealed", f"revealed in block {commit.reveal_block}")
        expected = commitment(self.cfg.chain_id, post.author, post.permlink, signer,
                              msg.prediction, msg.salt, msg.stake, msg.bid)
        if expected != commit.commitment:
            raise Reject("hash_mismatch", "prediction and salt do not open the commitment")
        commit.prediction, commit.stake, commit.bid = msg.prediction, msg.stake, msg.bid
        commit.reveal_block = self.block.num
        self.s.dirty_commits.add((post.id, signer))

    # --- payouts, vesting, unreadable ops ---------------------------------------------
    def payout(self, p: Payout) -> None:
        post = self.s.posts.get((p.author, p.permlink))
        if post is None or post.paid_block is not None:
            return
        seen = self.payouts.get(post.key)
        self.payouts[post.key] = p.amount if seen is None else seen

    def vesting(self, v: VestingDelta) -> None:
        """Moves an account's vesting as the chain's evaluator of the op did (see
        curation.vesting and docs/node.md for the sources); each account skips the ops its
        node snapshot already holds (``as_of_block``)."""
        if v.kind == "delegation":
            return self._delegation(v)
        account = self._account(v.account)
        if v.pos[0] <= account.as_of_block:
            if v.kind == "returned":
                self._forget_return(v)
            return  # already in the node snapshot of the account
        kind = v.kind
        if kind == "to_vesting":
            price = self._price()
            vests = None if price is None else to_vests(v.vests, *price)
            if vests is None:
                return self.reject(v.pos, _SUBS.index(kind), "vesting", "no_vesting_price",
                                   f"{v.vests} milli vested with no known VESTS price",
                                   v.account)
            v = VestingDelta(v.pos, v.account, "own", vests)
            kind = "own"
        if kind == "own":
            if account.vesting_shares + v.vests > RSHARES_LIMIT:
                return self._absurd_vests(v)
            account.vesting_shares += v.vests
        elif kind == "powerdown":
            account.to_withdraw, account.withdrawn = v.vests, 0
            account.vesting_withdraw_rate = withdraw_rate(self.cfg.chain, self.block.time,
                                                          v.vests)
        elif kind == "withdrawn":
            if account.withdrawn + v.vests > RSHARES_LIMIT:
                return self._absurd_vests(v)
            account.vesting_shares = max(0, account.vesting_shares - v.vests)
            account.withdrawn += v.vests
            # process_vesting_withdrawals: the power-down ends when all is withdrawn or no
            # vests are left (rate 0, next_vesting_withdrawal = max)
            if account.withdrawn >= account.to_withdraw or account.vesting_shares == 0:
                account.vesting_withdraw_rate = 0
        elif kind == "returned":
            self._forget_return(v)
            account.delegated = max(0, account.delegated - v.vests)

    def _delegation(self, v: VestingDelta) -> None:
        """delegate_vesting_shares_evaluator: more delegated moves at once on both sides; less
        leaves the delegatee at once but stays in the delegator's delegated_vesting_shares
        until return_vesting_delegation (a vesting_delegation_expiration object, kept here
        as a :class:`PendingReturn`). Each side moves only if the op is newer than that
        side's node snapshot."""
        delegator, delegatee = self._account(v.account), self._account(v.other)
        block = v.pos[0]
        pair = (v.account, v.other)
        delta = v.vests - self.s.delegations.get(pair, 0)
        if max(delegator.delegated, delegatee.received) + max(delta, 0) > RSHARES_LIMIT:
            return self._absurd_vests(v)
        if block > delegator.as_of_block:
            self.s.delegations[pair] = v.vests
            self.s.dirty_delegations.add(pair)
            if delta > 0:
                delegator.delegated += delta
            elif delta < 0:
                expires = self.block.time + delegation_return_period(self.block.time)
                self.s.returns.setdefault(v.account, []).append(
                    PendingReturn(block, v.pos[1], v.pos[2], -delta, expires))
                self.s.dirty_returns.add(v.account)
        if block > delegatee.as_of_block:
            delegatee.received = max(0, delegatee.received + delta)

    def _forget_return(self, v: VestingDelta) -> None:
        """The chain returned a lowered delegation: drop the pending return it settles (the
        earliest of that size); none is known when the lowering came before our data."""
        pending = self.s.returns.get(v.account)
        if not pending:
            return
        match = min((p for p in pending if p.vests == v.vests),
                    key=lambda p: (p.expires, p.block, p.trx, p.op), default=None)
        if match is not None:
            pending.remove(match)
            self.s.dirty_returns.add(v.account)

    def _absurd_vests(self, v: VestingDelta) -> None:
        """Sums no chain reaches (they would overflow the 64-bit columns): refuse the op."""
        # one op may carry two deltas of different kinds (account_created, fill_vesting_...):
        # the kind keeps their rejections apart in the (block, trx, op, sub) key
        self.reject(v.pos, _SUBS.index(v.kind), "vesting", "absurd_vests",
                    f"{v.kind} of {v.vests} would pass {RSHARES_LIMIT}", v.account)

    def _account(self, name: str) -> Account:
        account = self.s.accounts.get(name)
        if account is None:
            account = self.s.accounts[name] = Account(name)
        self.s.dirty_accounts.add(name)
        return account

    def bad_op(self, b: BadOp) -> None:
        self.reject(b.pos, 0, b.kind, b.reason, b.detail, b.account)

    def reject(self, pos: tuple[int, int, int], sub: int, kind: str, reason: str, detail: str,
               account: str, author: str = "", permlink: str = "") -> None:
        self.s.rejections.append(Rejection(pos[0], pos[1], pos[2], sub, kind, reason,
                                           detail[:200], account, author, permlink))


def _settle_block(state: State, block: Block, cfg: MarketConfig,
                  payouts: dict[PostKey, int | None]) -> None:
    """Settle every post paid in this block against reputations as of earlier blocks."""
    deltas: list[tuple[str, int, int, int, int]] = []  # name, n, hits, earned, rewarded
    for key, amount in payouts.items():
        post = state.posts[key]
        assert post is not None
        deltas.extend(_settle_post(state, block, cfg, post, amount))
    for name, n, hits, earned, rewarded in deltas:
        c = state.curator(name)
        c.n += n
        c.hits += hits
        c.earned += earned
        c.rewarded += rewarded
        c.open_commits -= 1
        state.dirty_curators.add(name)


def _settle_post(state: State, block: Block, cfg: MarketConfig, post: Post,
                 amount: int | None) -> list[tuple[str, int, int, int, int]]:
    rules = cfg.rules
    final = 0 if post.declined or amount is None else amount
    post.payout, post.paid_block = final, block.num
    state.dirty_posts.add(post.key)

    r = float(max(post.net_rshares, 0)) ** 2
    history = state.author_history.setdefault((post.author, post.is_reply), [])
    # like reputation (§3), the average is of posts paid in strictly earlier blocks: two posts
    # of one author paid in the same block must not depend on the order of their payout vops
    earlier = [e for e in history if e.time < block.time] if history and \
        history[-1].time >= block.time else history
    r_before = author_average(earlier, block.time, rules.author_window)
    x, w = relative_payout(r, r_before, rules.underdog_floor)
    entry = AuthorEntry(block.time, r, w)
    history.append(entry)
    state.new_author_entries.append((post.id, post.author, post.is_reply, entry))
    if post.deleted or not post.is_market:
        return []

    commits = sorted((c for c in (state.commits.get((post.id, p))
                                  for p in state.commits_of_post.get(post.id, ()))
                      if c is not None and c.status == "open"), key=lambda c: c.order)
    for c in [c for c in commits if c.predictor in post.beneficiaries]:
        _void_beneficiary(state, post, c)
    commits = [c for c in commits if c.status == "open"]
    f: Fraction | None = None
    if rules.underdog != "off":
        f = fraction(rules.underdog, x, rules.underdog_c)
    entries = [Entry(c.prediction, state.curator(c.predictor).n, state.curator(c.predictor).hits,
                     c.sp, c.abs_at_commit, (post.id, c.predictor) in state.votes)
               for c in commits]
    # the pool's share follows the era of the block that pays (chain time), unless configured
    result = settle(entries, final, post.abs_rshares, rules, f, curation_fraction(block.time))
    counted = final >= rules.reputation_min_payout
    deltas = []
    for c, fac in zip(commits, result.factors, strict=True):
        c.status, c.result = "settled", fac
        state.dirty_commits.add((post.id, c.predictor))
        deltas.append((c.predictor, int(counted), int(counted and fac.hit), fac.reward,
                       int(fac.reward > 0)))
    state.settled.append(SettledMarket(
        post.id, block.num, block.time, final, result.pool, result.returned,
        result.underdog_returned, rules.label, r, x, None if f is None else float(f),
        r_before, len(commits), sum(c.prediction is not None for c in commits),
        sum(fac.qualified for fac in result.factors)))
    return deltas


def _void_beneficiary(state: State, post: Post, c: Commit) -> None:
    """Beneficiaries never predict their post (spec §2), but the chain lets the author name
    them until the post has votes, after a commit: so the test is made again at settlement.
    The commit is void (nothing paid, nothing counted toward reputation) and recorded."""
    c.status = "void"
    state.dirty_commits.add((post.id, c.predictor))
    state.curator(c.predictor).open_commits -= 1
    state.dirty_curators.add(c.predictor)
    state.rejections.append(Rejection(
        c.block, c.trx, c.op, c.sub, "custom_json", "beneficiary",
        "named a beneficiary of the post after committing: excluded at settlement",
        c.predictor, post.author, post.permlink))
