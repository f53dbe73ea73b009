"""Moving market state between the database and the engine, one batch at a time.

``prefetch`` loads exactly the rows a batch of blocks can touch (a few set queries, never one
per op); ``flush`` writes back what the engine changed *and* the checkpoint in the same
transaction, so a crash leaves either the whole batch or none of it. A batch that is one of
the last ``reversible_blocks`` blocks also records the prior image of every row it writes
(the undo log, section "reversible blocks"), so ``rewind`` can restore the state after it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    MetaData,
    Table,
    Text,
    and_,
    bindparam,
    event,
    func,
    insert,
    inspect,
    select,
    tuple_,
    update,
)
from sqlalchemy import column as sa_column
from sqlalchemy import table as sa_table
from sqlalchemy.dialects import postgresql, sqlite

from curation.chains import STEEM_CHAIN_ID
from curation.records import (
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
from curation.state import (
    Account,
    Commit,
    Curator,
    Globals,
    Meta,
    PendingReturn,
    Post,
    Rejection,
    SettledMarket,
    State,
)
from indexer import schema as t
from indexer.migrations import migrate
from rewards.band import in_band
from rewards.settle import CommitResult
from rewards.underdog import AuthorEntry

if TYPE_CHECKING:
    from indexer.history import Reconstruction

log = logging.getLogger("curation.store")
CHUNK = 500  # keys per IN (...) query: well under every driver's parameter limit

# temporary key tables for prefetch, by key shape: s = text, i = integer
_keys_md = MetaData()


def _key_table(kind: str) -> Table:
    return Table(f"_keys_{kind}", _keys_md,
                 *[Column(f"k{i}", BigInteger if c == "i" else Text) for i, c in enumerate(kind)],
                 prefixes=["TEMPORARY"])


_KEY_TABLES = {kind: _key_table(kind) for kind in ("s", "ss", "is", "i")}
_KEY_DDL = {kind: f"CREATE TEMPORARY TABLE IF NOT EXISTS {table.name} (" + ", ".join(
    f"k{i} {'BIGINT' if c == 'i' else 'TEXT'}" for i, c in enumerate(kind)) + ")"
    for kind, table in _KEY_TABLES.items()}
_K = {kind: table.c for kind, table in _KEY_TABLES.items()}
_Q_POSTS = select(t.posts).join(_KEY_TABLES["ss"], (t.posts.c.author == _K["ss"].k0)
                                & (t.posts.c.permlink == _K["ss"].k1))
_Q_VOTES = select(t.votes).join(_KEY_TABLES["is"], (t.votes.c.post_id == _K["is"].k0)
                                & (t.votes.c.voter == _K["is"].k1))
_Q_COMMITS = select(t.commits).join(_KEY_TABLES["is"], (t.commits.c.post_id == _K["is"].k0)
                                    & (t.commits.c.predictor == _K["is"].k1))
_Q_POST_COMMITS = select(t.commits).join(_KEY_TABLES["i"],
                                         t.commits.c.post_id == _K["i"].k0)
_Q_CURATORS = select(t.curators).join(_KEY_TABLES["s"], t.curators.c.name == _K["s"].k0)
_Q_ACCOUNTS = select(t.accounts).join(_KEY_TABLES["s"], t.accounts.c.name == _K["s"].k0)
_H = t.author_history.c
_Q_HISTORY = (select(_H.author, _H.is_reply, _H.time, _H.r, _H.w)
              .join(_KEY_TABLES["s"], _H.author == _K["s"].k0)
              .where(_H.time >= bindparam("since")).order_by(_H.time, _H.post_id))
_R = t.delegation_returns.c
_Q_RETURNS = (select(_R.delegator, _R.block, _R.trx, _R.op, _R.vests, _R.expires)
              .join(_KEY_TABLES["s"], _R.delegator == _K["s"].k0)
              .order_by(_R.delegator, _R.block, _R.trx, _R.op))
_C = t.commits.c
_Q_MARKET_COUNTS = (select(_C.post_id, func.count(), func.count(_C.reveal_block))
                    .join(_KEY_TABLES["i"], _C.post_id == _K["i"].k0).group_by(_C.post_id))
_Q_DELEGATIONS = select(t.delegations).join(
    _KEY_TABLES["ss"], (t.delegations.c.delegator == _K["ss"].k0)
    & (t.delegations.c.delegatee == _K["ss"].k1))


_COMMIT_OWN = tuple(n for n in Commit.__slots__ if n != "result")
_RESULT_COLS = CommitResult.__slots__
COMMIT_COLS = _COMMIT_OWN + _RESULT_COLS
if tuple(t.commits.c.keys()) != COMMIT_COLS:  # commit rows are read positionally
    raise ImportError("indexer.schema.commits must list Commit's columns, then CommitResult's, "
                      "in field order")
if tuple(t.accounts.c.keys()) != Account.__slots__:  # account rows too
    raise ImportError("indexer.schema.accounts must list the columns in Account's field order")


def configure_sqlite(engine: Engine) -> None:
    """WAL keeps readers (the API) off the writer's back; NORMAL sync is crash-safe in WAL
    (a batch is one transaction: state and checkpoint land together or not at all)."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA temp_store=MEMORY")  # prefetch key tables never touch disk
        cur.execute("PRAGMA cache_size=-32768")  # 32 MB of pages: indexes of a long replay
        cur.close()


def _chunks(items: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


@dataclass
class Needs:
    """The keys a batch can touch, gathered from its records before it runs."""

    posts: set[PostKey] = field(default_factory=set)
    votes: set[tuple[PostKey, str]] = field(default_factory=set)
    commits: set[tuple[PostKey, str]] = field(default_factory=set)
    whole_posts: set[PostKey] = field(default_factory=set)  # paid or deleted: all commits
    accounts: set[str] = field(default_factory=set)
    delegations: set[tuple[str, str]] = field(default_factory=set)
    returns: set[str] = field(default_factory=set)  # delegators whose pending returns move
    curators: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, blocks: Iterable[Block], held: State | None = None,
           complete: Container[int] = ()) -> Needs:
        """With ``held``, the votes and vesting deltas (most records) whose rows it already
        holds are left out here rather than by the loaders: a replay keeping rows between
        batches (:class:`Kept`) holds nearly all of them, and ``complete`` posts hold every
        vote."""
        n = cls()
        posts, votes, accounts, add = n.posts, n.votes, n.accounts, n._add
        have_posts = held.posts if held is not None else {}
        have_accounts = held.accounts if held is not None else {}
        missing = _MISSING
        for block in blocks:
            for rec in block.records:
                kind = type(rec)
                if kind is EffectiveVote or kind is Vote:  # most records: inlined
                    key = (rec.author, rec.permlink)  # type: ignore[union-attr]
                    post = have_posts.get(key, missing)
                    if post is missing:
                        posts.add(key)
                        votes.add((key, rec.voter))  # type: ignore[union-attr]
                    elif post is not None and post.id not in complete:  # type: ignore[union-attr]
                        votes.add((key, rec.voter))  # type: ignore[union-attr]
                elif kind is VestingDelta and rec.kind in _ONE_ACCOUNT:  # type: ignore[union-attr]
                    if rec.account not in have_accounts:  # type: ignore[union-attr]
                        accounts.add(rec.account)  # type: ignore[union-attr]
                else:
                    add(rec)
        return n

    def _add(self, rec: object) -> None:
        """Every record :meth:`of` does not handle inline (votes and most vesting deltas)."""
        kind = type(rec)
        if kind is Comment or kind is CommentOptions:
            self.posts.add((rec.author, rec.permlink))  # type: ignore[union-attr]
        elif kind is Payout or kind is DeleteComment:
            key = (rec.author, rec.permlink)  # type: ignore[union-attr]
            self.posts.add(key)
            self.whole_posts.add(key)
        elif kind is MarketOp and rec.signer is not None:  # type: ignore[union-attr]
            signer = rec.signer  # type: ignore[union-attr]
            for msg in rec.msgs:  # type: ignore[union-attr]
                if isinstance(msg, CommitMsg | RevealMsg):
                    key = (msg.author, msg.permlink)
                    self.posts.add(key)
                    self.commits.add((key, signer))
                    self.accounts.add(signer)
                    self.curators.add(signer)
        elif kind is PostVotes:
            key = (rec.author, rec.permlink)  # type: ignore[union-attr]
            self.posts.add(key)
            self.whole_posts.add(key)
            self.votes.update((key, voter) for _, voter, _ in rec.votes)  # type: ignore[union-attr]
        elif kind is VestingDelta:
            self.accounts.add(rec.account)  # type: ignore[union-attr]
            if rec.kind == "delegation":  # type: ignore[union-attr]
                self.accounts.add(rec.other)  # type: ignore[union-attr]
                self.delegations.add((rec.account, rec.other))  # type: ignore[union-attr]
                self.returns.add(rec.account)  # type: ignore[union-attr]
            elif rec.kind == "returned":  # type: ignore[union-attr]
                self.returns.add(rec.account)  # type: ignore[union-attr]


_ONE_ACCOUNT = frozenset(("own", "powerdown", "withdrawn", "to_vesting"))
_MISSING = object()


@dataclass
class Kept:
    """What a replay keeps in its :class:`State` between batches, instead of reading the same
    rows again for every batch (``Ingester(keep_rows=True)``).

    Kept rows equal the database's because the replay is its only writer while it runs (the
    daemon, whose jobs also write accounts, does not keep rows). ``complete`` holds the ids
    of posts created by this run and held since: all their votes and commits are in memory,
    so a vote or commit missing there is missing from the database too, and nothing of them
    is read. Memory stays bounded by what is live, not by the length of the run: a post
    leaves with its votes and commits in the batch that pays it (it is done; a late op on it
    reads it back), and when the held rows still pass ``max_rows`` the oldest half of the
    posts goes too; posts known to be absent, accounts, curators and delegations are dropped
    whole beyond a quarter of ``max_rows``. A dropped row is read back when needed.
    """

    max_rows: int = 600_000
    complete: set[int] = field(default_factory=set)
    voters: dict[int, set[str]] = field(default_factory=dict)  # held vote rows, by post id
    evicted: int = 0  # posts let go
    trims: int = 0  # times the oldest half went

    def hold_votes(self, keys: Iterable[tuple[int, str]]) -> None:
        voters = self.voters
        for post_id, voter in keys:
            held = voters.get(post_id)
            if held is None:
                voters[post_id] = {voter}
            else:
                held.add(voter)

    def evict(self, state: State, post: Post) -> None:
        """``post`` with its votes and commits."""
        state.posts.pop(post.key, None)
        votes, commits = state.votes, state.commits
        for voter in self.voters.pop(post.id, ()):
            votes.pop((post.id, voter), None)
        for who in state.commits_of_post.pop(post.id, ()):
            commits.pop((post.id, who), None)
        self.complete.discard(post.id)
        self.evicted += 1

    def bound(self, state: State) -> None:
        quarter = self.max_rows // 4
        if len(state.posts) + len(state.votes) + len(state.commits) > self.max_rows:
            self.trims += 1
            held = sorted((p for p in state.posts.values() if p is not None),
                          key=lambda p: p.id)
            for post in held[:len(held) // 2]:  # votes and commits gather on young posts
                self.evict(state, post)
        if len(state.posts) > quarter:  # mostly posts known to be absent
            state.posts = {k: p for k, p in state.posts.items() if p is not None}
        for rows in (state.accounts, state.curators, state.delegations, state.returns):
            if len(rows) > quarter:
                rows.clear()


def check_meta(row: Mapping[str, Any], chain_id: str | None, rules_label: str) -> None:
    """Refuse (ValueError) a database whose meta row was built with other rules or on another
    chain (``chain_id`` None: any). Shared by the Store and the read-only commands, which
    check without writing."""
    if row["rules"] != rules_label:
        raise ValueError(
            f"database was built with rules {row['rules']!r}; this run asks for "
            f"{rules_label!r} — use a fresh --db to compare rule sets")
    if chain_id is not None:
        _check_chain(row["chain_id"], chain_id)


def check_settings(stored: Mapping[str, str], wanted: Mapping[str, str]) -> None:
    """Refuse (ValueError) settings that differ from those the database was built with (a key
    it never recorded is not compared: :meth:`Store.claim_market` adopts it). One line,
    naming the key, the database's value and this run's."""
    for key in sorted(wanted):
        if key in stored and stored[key] != wanted[key]:
            raise ValueError(
                f"database was built with {key} = {stored[key]}; this run asks for "
                f"{wanted[key]} — one database holds one market: use the config it was built "
                "with, or a fresh --db")


def _check_chain(stored: str, chain_id: str) -> None:
    if stored and stored != chain_id:
        raise ValueError(
            f"database was built on chain id {stored}; this run uses {chain_id} — one "
            "database holds one chain: use a fresh --db (or fix chain.chain_id)")


class Store:
    def __init__(self, engine: Engine, chain_id: str | None = STEEM_CHAIN_ID,
                 rules_label: str = "seed", market: Mapping[str, str] | None = None):
        """A database built on another chain than ``chain_id`` (None: any), with other rules,
        or with other ``market`` settings (:meth:`curation.market.MarketConfig.settings`;
        None: not checked here) is refused. The id and the settings are written by the first
        block write (:meth:`claim_chain`, :meth:`claim_market`), so a run refused before it
        wrote anything leaves a fresh database fresh."""
        self.engine = engine
        self._prepared: dict[tuple, tuple[str, Callable[[dict], tuple] | None]] = {}
        # blocks a rewind can go back (``[ingest] reversible_blocks``; the Ingester sets it):
        # 0 writes no undo data
        self.reversible_blocks = 0
        configure_sqlite(engine)
        with engine.begin() as conn:  # the schema is the migrations' (one authority)
            migrate(conn)
        self._ensure_meta(chain_id, rules_label)
        if market is not None:
            with engine.connect() as conn:
                check_settings(stored_settings(conn), market)

    # --- meta / checkpoint ----------------------------------------------------------
    def _ensure_meta(self, chain_id: str | None, rules_label: str) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(select(t.meta).where(t.meta.c.id == 1)).mappings().first()
            if row is None:
                conn.execute(insert(t.meta).values(
                    id=1, last_block=0, last_block_id="", last_time=0, next_post_id=1,
                    total_vesting_fund=0, total_vesting_shares=0, chain_id="",
                    rules=rules_label))
            else:
                check_meta(row, chain_id, rules_label)

    @property
    def chain_id(self) -> str:
        """The chain id the database was built with ("" until the first block is written)."""
        with self.engine.connect() as conn:
            return conn.execute(select(t.meta.c.chain_id).where(t.meta.c.id == 1)).scalar_one()

    def claim_chain(self, chain_id: str) -> None:
        """Bind the database to ``chain_id``, or refuse: one database holds one chain's
        commitments, and a reveal judged under another id would read as ``hash_mismatch``."""
        with self.engine.begin() as conn:
            stored = conn.execute(select(t.meta.c.chain_id).where(t.meta.c.id == 1)) \
                .scalar_one()
            _check_chain(stored, chain_id)
            if not stored:
                conn.execute(update(t.meta).where(t.meta.c.id == 1).values(chain_id=chain_id))

    def claim_market(self, settings: Mapping[str, str]) -> None:
        """Record the settings the database is built with (``[market]`` and the ``[rules]``
        keys its label leaves out: :meth:`curation.market.MarketConfig.settings`), or refuse
        others (ValueError, :func:`check_settings`): a replay resumed with another window judged the
        rest of the chain by other rules than its start, and readers took the windows from
        their own config. A database that recorded none yet — fresh, or built before it kept
        them (migration 0006) — adopts these; an older one says so once in the log. A key a
        newer version added is adopted the same way."""
        mt = t.market_settings
        with self.engine.begin() as conn:
            stored = stored_settings(conn)
            check_settings(stored, settings)
            new = {k: v for k, v in settings.items() if k not in stored}
            if not new:
                return
            last = conn.execute(select(t.meta.c.last_block).where(t.meta.c.id == 1)) \
                .scalar_one_or_none()
            if last:
                log.warning("database indexed up to block %d recorded no setting %s: adopting "
                            "this run's (%s)", last, ", ".join(sorted(new)),
                            ", ".join(f"{k} = {v}" for k, v in sorted(new.items())))
            conn.execute(insert(mt), [{"key": k, "value": v} for k, v in sorted(new.items())])

    def new_state(self) -> State:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.meta).where(t.meta.c.id == 1)).mappings().one()
        return State(
            meta=Meta(row["last_block"], row["last_block_id"], row["last_time"],
                      row["next_post_id"]),
            globals=Globals(row["total_vesting_fund"], row["total_vesting_shares"]),
        )

    def set_globals(self, fund: int, shares: int) -> None:
        """Chain globals for SP; the first snapshot given wins, so a resume changes nothing.

        The fallback price, used only while no :meth:`add_globals` snapshot exists."""
        with self.engine.begin() as conn:
            conn.execute(update(t.meta).where(t.meta.c.id == 1, t.meta.c.total_vesting_shares == 0)
                         .values(total_vesting_fund=fund, total_vesting_shares=shares))

    def add_globals(self, block: int, fund: int, shares: int) -> None:
        """The VESTS price (total_vesting_fund, total_vesting_shares) read at ``block``.

        SP at a commit is converted with the latest snapshot at or before its block (else the
        earliest after it). A block already recorded keeps its first snapshot, so re-reading
        the same file or resuming changes nothing.
        """
        if fund <= 0 or shares <= 0 or block < 0:
            raise ValueError(f"not a vesting price: fund {fund}, shares {shares} at {block}")
        with self.engine.begin() as conn:
            conn.execute(self._insert(t.vesting_prices).on_conflict_do_nothing(),
                         [{"block": block, "total_vesting_fund": fund,
                           "total_vesting_shares": shares}])

    def add_account_snapshot(self, accounts: Iterable[Account]) -> int:
        """Accounts not yet known; ops already applied to a known account are kept."""
        rows = [_account_row(a) for a in accounts]
        with self.engine.begin() as conn:
            for chunk in _chunks(rows):
                conn.execute(self._insert(t.accounts).on_conflict_do_nothing(), list(chunk))
        return len(rows)

    # --- loading the rows a batch needs ---------------------------------------------
    def prefetch(self, state: State, blocks: Sequence[Block], kept: Kept | None = None) -> None:
        """Load what ``blocks`` can touch and ``state`` does not hold yet.

        With ``kept`` (a replay keeping rows between batches), a post this run created and
        still holds has all its votes and commits in ``state``: nothing of it is read."""
        complete = kept.complete if kept is not None else frozenset()
        needs = Needs.of(blocks, state, complete)
        posts = state.posts
        with self.engine.connect() as conn:
            self._load_posts(conn, state, needs.posts)
            vote_keys = [(p.id, v) for k, v in needs.votes
                         if (p := posts.get(k)) is not None and p.id not in complete]
            commit_keys = [(p.id, c) for k, c in needs.commits
                           if (p := posts.get(k)) is not None and p.id not in complete]
            paid = [p for k in needs.whole_posts if (p := posts.get(k)) is not None]
            whole_ids = [p.id for p in paid]
            self._load_votes(conn, state, vote_keys, kept)
            self._load_commits(conn, state, commit_keys,
                               [i for i in whole_ids if i not in complete])
            of_post = state.commits_of_post
            predictors = {c for pid in whole_ids for c in of_post.get(pid, ())}
            self._load_votes(conn, state, [(pid, c) for pid in whole_ids if pid not in complete
                                           for c in of_post.get(pid, ())], kept)
            self._load_curators(conn, state, needs.curators | predictors)
            self._load_accounts(conn, state, needs.accounts)
            self._load_delegations(conn, state, needs.delegations)
            self._load_returns(conn, state, needs.returns)
            if blocks:
                self._load_prices(conn, state, blocks[0].num, blocks[-1].num)
            self._load_author_history(conn, state, paid, blocks[0].time if blocks else 0)

    def keep(self, state: State, kept: Kept, first_new_id: int) -> None:
        """After a flush, instead of :meth:`State.clear_written`: keep the rows for the next
        batch (they equal the database's: this run is its only writer), forget what was
        written, and keep memory bounded (:class:`Kept`)."""
        posts, complete = state.posts, kept.complete
        for key in state.dirty_posts:
            post = posts[key]
            if post is not None and post.id >= first_new_id:  # created in this batch
                complete.add(post.id)
        kept.hold_votes(state.dirty_votes)
        for key in state.dirty_posts:
            post = posts.get(key)
            if post is not None and post.paid_block is not None:
                kept.evict(state, post)  # paid: done (after this write)
        for s in (state.dirty_posts, state.dirty_votes, state.dirty_commits,
                  state.dirty_curators, state.dirty_accounts, state.dirty_delegations,
                  state.dirty_returns):
            s.clear()
        state.new_author_entries.clear()
        state.settled.clear()
        state.rejections.clear()
        # reloaded each batch: its rows come back in (time, post id) order, which a float sum
        # over them depends on, and the engine appends in payout order
        state.author_history.clear()
        kept.bound(state)

    def _insert(self, table: t.Table) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def _keyed(self, conn: Any, kind: str, keys: Sequence[tuple], query: Any,
               **params: Any) -> Iterator[Any]:
        """Rows of ``query`` (a join on key table ``kind``) for ``keys``.

        The keys go into a temporary table with one executemany and the join is a constant
        statement, compiled once: a tuple ``IN`` of hundreds of parameters costs more to
        build and compile than to run.
        """
        if not keys:
            return iter(())
        table = _KEY_TABLES[kind]
        ph = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        conn.exec_driver_sql(_KEY_DDL[kind])
        conn.exec_driver_sql(f"DELETE FROM {table.name}")
        width = len(table.c)
        conn.exec_driver_sql(f"INSERT INTO {table.name} VALUES ({', '.join([ph] * width)})",
                             list(keys))
        return iter(conn.execute(query, params).all() if params else conn.execute(query).all())

    def _load_posts(self, conn: Any, state: State, keys: set[PostKey]) -> None:
        todo = sorted(k for k in keys if k not in state.posts)
        for row in self._keyed(conn, "ss", todo, _Q_POSTS):
            row = row._mapping
            state.posts[(row["author"], row["permlink"])] = _post(row)
        for k in todo:
            state.posts.setdefault(k, None)

    def _load_votes(self, conn: Any, state: State, keys: list[tuple[int, str]],
                    kept: Kept | None) -> None:
        todo = sorted(set(k for k in keys if k not in state.votes))
        loaded = []
        for post_id, voter, rshares in self._keyed(conn, "is", todo, _Q_VOTES):
            state.votes[(post_id, voter)] = rshares
            loaded.append((post_id, voter))
        if kept is not None:
            kept.hold_votes(loaded)

    def _load_commits(self, conn: Any, state: State, keys: list[tuple[int, str]],
                      whole_ids: list[int]) -> None:
        todo = sorted(set(k for k in keys if k not in state.commits))
        rows = list(self._keyed(conn, "is", todo, _Q_COMMITS))
        rows += self._keyed(conn, "i", [(i,) for i in sorted(set(whole_ids))], _Q_POST_COMMITS)
        for row in rows:  # columns in COMMIT_COLS order (checked at import)
            key = (row[0], row[1])
            if key not in state.commits:
                state.commits[key] = _commit(row)
                state.commits_of_post.setdefault(key[0], set()).add(key[1])

    def _load_curators(self, conn: Any, state: State, names: set[str]) -> None:
        todo = sorted(n for n in names if n not in state.curators)
        for row in self._keyed(conn, "s", [(n,) for n in todo], _Q_CURATORS):
            state.curators[row.name] = Curator(*row)

    def _load_accounts(self, conn: Any, state: State, names: set[str]) -> None:
        todo = sorted(n for n in names if n not in state.accounts)
        for row in self._keyed(conn, "s", [(n,) for n in todo], _Q_ACCOUNTS):
            state.accounts[row.name] = Account(*row)
        for n in todo:
            state.accounts.setdefault(n, None)

    def _load_delegations(self, conn: Any, state: State, pairs: set[tuple[str, str]]) -> None:
        todo = sorted(p for p in pairs if p not in state.delegations)
        for a, b, vests in self._keyed(conn, "ss", todo, _Q_DELEGATIONS):
            state.delegations[(a, b)] = vests
        for pair in todo:  # none yet: the engine reads a missing pair as 0 too
            state.delegations.setdefault(pair, 0)

    def _load_returns(self, conn: Any, state: State, delegators: set[str]) -> None:
        todo = sorted(d for d in delegators if d not in state.returns)
        for d in todo:
            state.returns[d] = []
        for d, block, trx, op, vests, expires in self._keyed(conn, "s", [(d,) for d in todo],
                                                             _Q_RETURNS):
            state.returns[d].append(PendingReturn(block, trx, op, vests, expires))

    def _load_prices(self, conn: Any, state: State, first: int, last: int) -> None:
        """The price snapshots a batch can use: the latest at or before its first block (or
        the earliest of all), and every one inside it."""
        p = t.vesting_prices.c
        cols = (p.block, p.total_vesting_fund, p.total_vesting_shares)
        before = conn.execute(select(*cols).where(p.block <= first)
                              .order_by(p.block.desc()).limit(1)).all()
        if not before:
            before = conn.execute(select(*cols).order_by(p.block).limit(1)).all()
        inside = conn.execute(select(*cols).where(p.block > first, p.block <= last)
                              .order_by(p.block)).all()
        state.vesting_prices = sorted({tuple(r) for r in before + inside})

    def _load_author_history(self, conn: Any, state: State, posts: list[Post],
                             since: int) -> None:
        """The recent history of every author paid in the batch, in one query."""
        wanted = {(p.author, p.is_reply) for p in posts} - state.author_history.keys()
        if not wanted:
            return
        groups: dict[tuple[str, bool], list[AuthorEntry]] = {k: [] for k in sorted(wanted)}
        authors = sorted({(a,) for a, _ in wanted})
        for author, is_reply, time, r, w in self._keyed(conn, "s", authors, _Q_HISTORY,
                                                        since=since - 60 * 86400):
            entries = groups.get((author, bool(is_reply)))
            if entries is not None:  # rows come in (time, post_id) order, as before
                entries.append(AuthorEntry(time, r, w))
        state.author_history.update(groups)

    # --- writing a batch back -------------------------------------------------------
    def flush(self, state: State, logged: bool = False) -> None:
        """Everything the batch changed plus the checkpoint, atomically.

        ``logged``: the batch is one block inside the reversible window, and what it changes
        is recorded in the undo log first (see "reversible blocks" below); otherwise the undo
        log is emptied, since nothing before this write can be restored any more."""
        votes, delegations = state.votes, state.delegations
        posts, commits = state.posts, state.commits
        curators, accounts = state.curators, state.accounts
        with self.engine.begin() as conn, self._undo_flush(conn, state, logged):
            many = self._many
            many(conn, t.posts, ("id",), _POST_COLS,
                 [_post_row(posts[k]) for k in sorted(state.dirty_posts)])
            many(conn, t.votes, ("post_id", "voter"), ("post_id", "voter", "rshares"),
                 [(k[0], k[1], votes[k]) for k in sorted(state.dirty_votes)])
            many(conn, t.commits, ("post_id", "predictor"), COMMIT_COLS,
                 [_commit_row(commits[k]) for k in sorted(state.dirty_commits)])
            many(conn, t.curators, ("name",), Curator.__slots__,
                 list(map(_CURATOR_ROW, [curators[n] for n in sorted(state.dirty_curators)])))
            many(conn, t.accounts, ("name",), Account.__slots__,
                 list(map(_ACCOUNT_ROW, [accounts[n] for n in sorted(state.dirty_accounts)])))
            many(conn, t.delegations, ("delegator", "delegatee"),
                 ("delegator", "delegatee", "vests"),
                 [(a, b, delegations[(a, b)]) for a, b in sorted(state.dirty_delegations)])
            self._write_returns(conn, state)
            many(conn, t.author_history, None, ("post_id", "author", "is_reply", "time", "r", "w"),
                 [(pid, a, rep, e.time, e.r, e.w) for pid, a, rep, e in state.new_author_entries])
            many(conn, t.settlements, None, SettledMarket.__slots__,
                 list(map(_SETTLED_ROW, state.settled)))
            self._write_api_aggregates(conn, state)
            many(conn, t.rejections, None, Rejection.__slots__,
                 list(map(_rejection_row, state.rejections)))
            m = state.meta
            _undo_where(conn, t.meta, t.meta.c.id == 1)
            conn.execute(update(t.meta).where(t.meta.c.id == 1).values(
                last_block=m.last_block, last_block_id=m.last_block_id, last_time=m.last_time,
                next_post_id=m.next_post_id))

    def _write_api_aggregates(self, conn: Any, state: State) -> None:
        """The API's aggregates (schema ``api_*``), in the batch's transaction, through
        :meth:`_many` like every other row: each market with a changed commit gets its counts
        again from its rows (just written), and each market settled in the batch adds its
        settled commits to its curators' totals and settlement-day rows (read, added,
        written back: a commit is settled once, in the batch that pays its post)."""
        posts = [(i,) for i in sorted({k[0] for k in state.dirty_commits})]
        many = self._many
        many(conn, t.api_market_counts, ("post_id",), ("post_id", "n_commits", "n_revealed"),
             [tuple(r) for r in self._keyed(conn, "i", posts, _Q_MARKET_COUNTS)])
        totals: dict[str, list[int]] = {}
        days: dict[tuple[int, str], list[int]] = {}
        commits, of_post = state.commits, state.commits_of_post
        for m in state.settled:
            day = m.time // 86400
            for who in sorted(of_post.get(m.post_id, ())):
                cm = commits.get((m.post_id, who))
                if cm is None or cm.status != "settled":
                    continue
                reward = cm.result.reward if cm.result is not None else 0
                hit = int(cm.prediction is not None and in_band(cm.prediction, m.final_payout))
                for row in (totals.setdefault(who, [0, 0, 0, 0]),
                            days.setdefault((day, who), [0, 0, 0, 0])):
                    row[0] += reward
                    row[1] += 1
                    row[2] += hit
                    row[3] += reward > 0
        if not totals:
            return
        names = sorted(totals)
        q_totals, q_days = self._aggregate_reads()
        for name, *old in self._keyed(conn, "s", [(n,) for n in names], q_totals):
            totals[name] = [a + b for a, b in zip(totals[name], old, strict=True)]
        for day, name, *old in self._keyed(conn, "is", sorted(days), q_days):
            days[(day, name)] = [a + b for a, b in zip(days[(day, name)], old, strict=True)]
        cols = ("earned", "predictions", "in_band", "rewarded")
        many(conn, t.api_curator_totals, ("name",), ("name", *cols),
             [(n, *totals[n]) for n in names])
        many(conn, t.api_curator_days, ("day", "name"), ("day", "name", *cols),
             [(d, n, *v) for (d, n), v in sorted(days.items())])

    def _aggregate_reads(self) -> tuple[Any, Any]:
        """The stored totals and day rows of a batch's curators, joined on the key tables.
        On PostgreSQL the names compare in the aggregates' own collation ("C"), which the
        key table's text does not share."""
        tt, td = t.api_curator_totals.c, t.api_curator_days.c
        ks, kis = _K["s"], _K["is"]
        pg = self.engine.dialect.name == "postgresql"
        s_name = ks.k0.collate("C") if pg else ks.k0
        is_name = kis.k1.collate("C") if pg else kis.k1
        return (select(tt.name, tt.earned, tt.predictions, tt.in_band, tt.rewarded)
                .join(_KEY_TABLES["s"], tt.name == s_name),
                select(td.day, td.name, td.earned, td.predictions, td.in_band, td.rewarded)
                .join(_KEY_TABLES["is"], (td.day == kis.k0) & (td.name == is_name)))

    def _write_returns(self, conn: Any, state: State) -> None:
        """A delegator's pending returns are rewritten whole (they are few: one per lowering
        in the last week)."""
        names = sorted(state.dirty_returns)
        if not names:
            return
        r = t.delegation_returns
        for chunk in _chunks(names):
            _undo_where(conn, r, r.c.delegator.in_(list(chunk)))
            conn.execute(r.delete().where(r.c.delegator.in_(list(chunk))))
        rows = [(d, p.block, p.trx, p.op, p.vests, p.expires)
                for d in names for p in state.returns.get(d, ())]
        self._many(conn, r, None, ("delegator", "block", "trx", "op", "vests", "expires"), rows)

    def _many(self, conn: Any, table: t.Table, keys: tuple[str, ...] | None,
              cols: tuple[str, ...], rows: list[tuple]) -> None:
        """One driver-level executemany of an upsert (``keys``) or insert-if-new (None).

        ``rows`` are plain tuples in ``cols`` order. The statement is compiled once per table
        and column set and the driver gets the tuples as they are (reordered only if the
        compiled statement wants another order): SQLAlchemy's per-row parameter processing,
        and a dict per row, cost more than the write itself for the tens of thousands of rows
        of a batch.
        """
        if not rows:
            return
        undo = conn.info.get(_UNDO)
        if undo is not None:  # a logged write (reversible blocks): prior images first
            undo.before_rows(conn, table, cols, rows)
        cache_key = (table.name, keys, cols)
        prepared = self._prepared.get(cache_key)
        if prepared is None:
            stmt = self._insert(table)
            if keys is None:
                stmt = stmt.on_conflict_do_nothing()
            else:
                stmt = stmt.on_conflict_do_update(
                    index_elements=list(keys),
                    set_={c: stmt.excluded[c] for c in cols if c not in keys})
            compiled = stmt.compile(dialect=self.engine.dialect, column_keys=list(cols))
            shape: Callable[[tuple], Any] | None
            if not compiled.positional:  # named paramstyle: one dict per row
                shape = lambda r, cols=cols: dict(zip(cols, r, strict=True))  # noqa: E731
            else:
                order = [cols.index(n) for n in compiled.positiontup or []]
                shape = None if order == list(range(len(cols))) else (
                    lambda r, order=order: tuple(r[i] for i in order))
            prepared = self._prepared[cache_key] = (compiled.string, shape)
        sql, shape = prepared
        conn.exec_driver_sql(sql, rows if shape is None else list(map(shape, rows)))

    # === reversible blocks: the undo log (rw12) =============================================
    # Why: a node can serve a wrong block (a faulty node's id, a fork it later leaves). Every
    # write made for one of the last ``reversible_blocks`` blocks first records the prior
    # image of each row it touches (schema.undo_log), as HAF's shadow tables do; a rewind puts
    # the images back, newest first, in one transaction. The hook is generic: ``_many`` (every
    # batch write, whatever the table) and ``_undo_where``/``_undo_keys`` around the few
    # statements that write otherwise. tests/test_rewind.py fails for a schema table that is
    # neither restored by a rewind nor listed in UNDO_EXEMPT.

    @contextmanager
    def _undo_flush(self, conn: Any, state: State, logged: bool) -> Iterator[None]:
        """Around a flush's writes: with ``logged`` (one block), record the undo data and the
        block's id, then prune what fell out of the window; without, forget all undo data
        (nothing written before an unlogged batch can be restored past it)."""
        if not logged:
            yield
            conn.execute(t.undo_log.delete())
            conn.execute(t.undo_blocks.delete())
            return
        m = t.meta.c
        base, base_id = conn.execute(select(m.last_block, m.last_block_id)
                                     .where(m.id == 1)).one()
        undo = _UndoTx(state.meta.last_block)
        conn.info[_UNDO] = undo
        try:
            yield
        finally:
            conn.info.pop(_UNDO, None)
        undo.write(conn)
        new = state.meta.last_block
        if new > base:
            conn.execute(insert(t.undo_blocks).values(num=new, block_id=state.meta.last_block_id,
                                                      base=base, base_id=base_id))
        horizon = new - max(self.reversible_blocks, 1)
        conn.execute(t.undo_log.delete().where(t.undo_log.c.block <= horizon))
        conn.execute(t.undo_blocks.delete().where(t.undo_blocks.c.num <= horizon))

    @contextmanager
    def _undo_between(self, conn: Any) -> Iterator[None]:
        """Around a write between batches (the node's account snapshots, read for the next
        block): logged as part of that block (checkpoint + 1) while undo data is kept."""
        if self.reversible_blocks <= 0:
            yield
            return
        checkpoint = conn.execute(select(t.meta.c.last_block).where(t.meta.c.id == 1)) \
            .scalar_one()
        undo = _UndoTx(checkpoint + 1)
        conn.info[_UNDO] = undo
        try:
            yield
        finally:
            conn.info.pop(_UNDO, None)
        undo.write(conn)

    def undo_window(self) -> UndoWindow:
        """The checkpoint, the horizon (the earliest block a rewind restores) and the block
        ids known from the horizon up (for finding a fork point)."""
        with self.engine.connect() as conn:
            return _undo_window(conn)

    def rewind(self, to: int) -> Rewound:
        """Put the database back to the state right after block ``to``, exactly, in one
        transaction: every undo row above ``to`` restored newest first, then forgotten.
        Refuses (:class:`RewindRefused`) a block above the checkpoint, below the horizon, or
        inside a batch written at once. Rewinding to the checkpoint changes nothing (but
        writes made for the next block, if any, are undone): the command is idempotent."""
        with self.engine.begin() as conn:
            window = _undo_window(conn)
            if to > window.checkpoint:
                raise RewindRefused(
                    f"block {to:,} is newer than the checkpoint, block {window.checkpoint:,}: "
                    "nothing to rewind")
            if to < window.horizon:
                raise RewindRefused(
                    f"block {to:,} is older than the undo horizon, block {window.horizon:,}: "
                    f"a rewind goes back at most [ingest] reversible_blocks blocks written "
                    "with undo data; rebuild from an earlier copy or a fresh --db instead")
            b = t.undo_blocks.c
            span = conn.execute(select(b.base, b.num).where(b.base < to, b.num > to)).first()
            if span is not None:
                raise RewindRefused(
                    f"the state after block {to:,} was never committed on its own (blocks "
                    f"{span.base + 1:,}..{span.num:,} were written in one step): rewind to "
                    f"block {span.base:,} or {span.num:,}")
            u = t.undo_log.c
            rows = conn.execute(select(u.tbl, u.key, u.image).where(u.block > to)
                                .order_by(u.seq.desc())).all()
            for name, key, image in rows:
                _restore(conn, t.metadata.tables[name], json.loads(key),
                         None if image is None else json.loads(image))
            conn.execute(t.undo_log.delete().where(u.block > to))
            conn.execute(t.undo_blocks.delete().where(b.num > to))
            now = conn.execute(select(t.meta.c.last_block).where(t.meta.c.id == 1)).scalar_one()
            if now != to:  # the undo data did not describe this database: roll it all back
                raise RuntimeError(f"rewind to block {to:,} left the checkpoint at {now:,}: "
                                   "the undo log is inconsistent; nothing was changed")
        return Rewound(window.checkpoint, to, len(rows))

    # === following a node: the daemon's tables and counts ===================================
    # Everything the daemon (curation_market.daemon) reads or writes besides the market state
    # that prefetch/flush move: the accounts read from the node, the status row, the counts
    # of its sweep and upkeep jobs. One home for its SQL, so the daemon holds none.

    def snapshotted(self, names: Iterable[str]) -> set[str]:
        """Which of ``names`` already have an account snapshot read from the node."""
        s = t.account_snapshots.c
        wanted = sorted(set(names))
        known: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in _chunks(wanted):
                known.update(conn.execute(select(s.name).where(s.name.in_(list(chunk))))
                             .scalars())
        return known

    def vesting_prices(self, first: int, last: int) -> list[tuple[int, int, int]]:
        """The recorded VESTS prices a rewind from ``last`` back to ``first`` can use: the
        latest at or before ``first`` and every one up to ``last``, as
        ``(block, total_vesting_fund, total_vesting_shares)``."""
        p = t.vesting_prices.c
        cols = select(p.block, p.total_vesting_fund, p.total_vesting_shares)
        with self.engine.connect() as conn:
            before = conn.execute(cols.where(p.block <= first).order_by(p.block.desc())
                                  .limit(1)).all()
            inside = conn.execute(cols.where(p.block > first, p.block <= last)
                                  .order_by(p.block)).all()
        return sorted({(int(b), int(f), int(v)) for b, f, v in before + inside})

    def write_account_snapshots(self, recs: Mapping[str, Reconstruction], head: int,
                                read_block: int, note: str = "") -> None:
        """Accounts read from the node at ``head`` and rewound (:mod:`indexer.history`): their
        ``accounts`` row, the delegations the rewind learnt and the ``account_snapshots`` row
        that says how the row was obtained, in one transaction. Replaces what was there: the
        rewound row is the account as of ``rec.account.as_of_block``."""
        ins = self._insert
        with self.engine.begin() as conn, self._undo_between(conn):
            for name, rec in recs.items():
                row = _slots_row(rec.account)
                _undo_keys(conn, t.accounts, [(name,)])
                _undo_keys(conn, t.delegations, sorted(rec.pairs))
                _undo_keys(conn, t.account_snapshots, [(name,)])
                conn.execute(ins(t.accounts).values(row).on_conflict_do_update(
                    index_elements=["name"], set_={k: v for k, v in row.items() if k != "name"}))
                for (a, b), vests in sorted(rec.pairs.items()):
                    conn.execute(ins(t.delegations).values(delegator=a, delegatee=b, vests=vests)
                                 .on_conflict_do_update(index_elements=["delegator", "delegatee"],
                                                        set_={"vests": vests}))
                snap = {"read_block": read_block, "as_of_block": rec.account.as_of_block,
                        "head_block": head, "exact": rec.exact,
                        "approx_vests": rec.approx_vests,
                        "note": "; ".join(([note] if note else []) + rec.notes)[:2000]}
                conn.execute(ins(t.account_snapshots).values(name=name, **snap)
                             .on_conflict_do_update(index_elements=["name"], set_=snap))

    def untagged_snapshots(self) -> list[tuple[str, int]]:
        """``(name, read_block)`` of the accounts read before snapshots were tagged with the
        block they describe (migration 0004, or a ``node_accounts`` table of an older daemon,
        moved here first): their rows hold the node's head state with later ops applied
        again, so the daemon reads them afresh."""
        s = t.account_snapshots.c
        if "node_accounts" in inspect(self.engine).get_table_names():
            legacy = sa_table("node_accounts", sa_column("name"), sa_column("block"))
            with self.engine.begin() as conn:
                have = set(conn.execute(select(s.name)).scalars())
                rows = [{"name": n, "read_block": b, "note": "read before 0004"}
                        for n, b in conn.execute(select(legacy.c.name, legacy.c.block))
                        if n not in have]
                if rows:
                    conn.execute(t.account_snapshots.insert(), rows)
                conn.exec_driver_sql("DROP TABLE node_accounts")
        with self.engine.connect() as conn:
            return [(n, int(b)) for n, b in conn.execute(
                select(s.name, s.read_block).where(s.as_of_block.is_(None)).order_by(s.name))]

    def write_node_status(self, row: Mapping[str, Any]) -> None:
        """The daemon's one status row (``node_status`` id 1), replaced whole. Jobs on two
        threads may both write it: each write is its own transaction."""
        values = dict(row)
        with self.engine.begin() as conn:
            conn.execute(self._insert(t.node_status).values(id=1, **values)
                         .on_conflict_do_update(index_elements=["id"], set_=values))

    def node_status(self) -> tuple[dict, dict | None]:
        return read_node_status(self.engine)

    def market_counts(self, payout_seconds: int) -> MarketCounts:
        """What the sweep job publishes, on chain time (the last indexed block's): markets
        older than ``payout_seconds`` with no payout seen, settlements, rejections by reason."""
        p = t.posts.c
        with self.engine.connect() as conn:
            now = conn.execute(select(t.meta.c.last_time)).scalar_one()
            overdue = conn.execute(select(func.count()).select_from(t.posts).where(
                p.is_market, p.paid_block.is_(None), p.deleted.is_(False),
                p.created + payout_seconds < now)).scalar_one()
            settled = conn.execute(select(func.count()).select_from(t.settlements)).scalar_one()
            reasons = conn.execute(select(t.rejections.c.reason, func.count())
                                   .group_by(t.rejections.c.reason)).all()
        return MarketCounts(int(overdue), int(settled), {r: int(n) for r, n in reasons})

    def author_history_count(self, window: int) -> int:
        """Author history entries inside the last ``window`` chain seconds (upkeep job)."""
        h = t.author_history.c
        with self.engine.connect() as conn:
            now = conn.execute(select(t.meta.c.last_time)).scalar_one()
            return int(conn.execute(select(func.count()).select_from(t.author_history).where(
                h.time >= now - window)).scalar_one())


_POST_COLS = tuple(n for n in Post.__slots__ if n != "beneficiaries") + ("beneficiaries",)
_POST_FIELDS = attrgetter(*_POST_COLS[:-1])
_COMMIT_ROW = attrgetter(*_COMMIT_OWN)
_RESULT_ROW = attrgetter(*_RESULT_COLS)
_N_OWN = len(_COMMIT_OWN)
# an unsettled commit's result columns: not voted, not qualified, nothing else yet
_NO_RESULT = tuple(False if n in ("voted", "qualified") else None for n in _RESULT_COLS)
_CURATOR_ROW = attrgetter(*Curator.__slots__)
_ACCOUNT_ROW = attrgetter(*Account.__slots__)
_SETTLED_ROW = attrgetter(*SettledMarket.__slots__)
_REJECTION_ROW = attrgetter(*Rejection.__slots__)
_REJECTION_TEXT = frozenset(i for i, n in enumerate(Rejection.__slots__)
                            if n in ("kind", "reason", "detail", "account", "author", "permlink"))


def _post(row: Any) -> Post:
    benef = tuple(b for b in row["beneficiaries"].split(",") if b)
    return Post(row["id"], row["author"], row["permlink"], row["created"], row["block"],
                row["parent_author"], row["parent_permlink"], row["is_market"], row["deleted"],
                row["declined"], benef, row["net_rshares"], row["abs_rshares"], row["payout"],
                row["paid_block"])


def _commit_row(c: Commit | None) -> tuple:
    """A commit's row: its own columns, then its settlement record as it is."""
    assert c is not None
    return _COMMIT_ROW(c) + (_NO_RESULT if c.result is None else _RESULT_ROW(c.result))


def _commit(row: Sequence) -> Commit:
    """The inverse of :func:`_commit_row`; a settled commit gets its record back whole."""
    result = CommitResult(*row[_N_OWN:]) if row[_N_OWN - 1] == "settled" else None
    return Commit(*row[:_N_OWN], result=result)


def _post_row(p: Post | None) -> tuple:
    assert p is not None
    return _POST_FIELDS(p) + (",".join(p.beneficiaries),)


def _account_row(a: Account | None) -> dict:
    assert a is not None
    return _slots_row(a)


def _slots_row(obj: Any) -> dict:
    return {name: getattr(obj, name) for name in obj.__slots__}


def clean_text(text: str) -> str:
    """Any string → one every database stores (no NULs, no lone surrogates)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _rejection_row(r: Rejection) -> tuple:
    return tuple(clean_text(v) if i in _REJECTION_TEXT else v
                 for i, v in enumerate(_REJECTION_ROW(r)))


class MarketCounts(NamedTuple):
    """The sweep job's figures (:meth:`Store.market_counts`)."""

    overdue: int  # markets past their payout time with no payout seen (should stay 0)
    settled: int
    rejected: dict[str, int]  # by reason


def stored_settings(conn: Any) -> dict[str, str]:
    """The settings the database was built with ({} before its first write, or
    in a database built before it kept them)."""
    mt = t.market_settings.c
    return dict(conn.execute(select(mt.key, mt.value)).all())


def read_node_status(engine: Engine) -> tuple[dict, dict | None]:
    """The checkpoint row (``meta``) and the daemon's status row (None: never written), read
    together for ``status``; over any engine, a read-only one too (no Store needed)."""
    with engine.connect() as conn:
        meta = dict(conn.execute(select(t.meta)).mappings().one())
        row = conn.execute(select(t.node_status)).mappings().first()
    return meta, dict(row) if row else None


# --- reversible blocks: helpers of the undo log (rw12) -----------------------------------------
# Tables a rewind leaves as they are: what the node said about itself (its status row, the
# VESTS prices it reported, keyed by the block they were read at, kept so that SP conversions
# stay stable), the undo log itself, and the settings the database was built with (recorded
# once, before its first block: no block's state). Every other table of indexer.schema is
# restored.
UNDO_EXEMPT = frozenset({"node_status", "vesting_prices", "undo_log", "undo_blocks",
                         "market_settings"})
_UNDO = "curation_market.undo"  # the Connection.info key of the transaction's _UndoTx


class RewindRefused(ValueError):
    """A rewind that cannot restore the state asked for; nothing was changed."""


class Rewound(NamedTuple):
    checkpoint: int  # before the rewind
    to: int
    undone: int  # undo rows put back


class UndoWindow(NamedTuple):
    checkpoint: int
    checkpoint_id: str
    horizon: int  # the earliest block a rewind restores (the checkpoint: none)
    ids: dict[int, str]  # block ids known from the horizon to the checkpoint


def _undo_window(conn: Any) -> UndoWindow:
    m = t.meta.c
    checkpoint, checkpoint_id = conn.execute(select(m.last_block, m.last_block_id)
                                             .where(m.id == 1)).one()
    b = t.undo_blocks.c
    rows = conn.execute(select(b.num, b.block_id, b.base, b.base_id).order_by(b.num)).all()
    ids = {int(base): base_id for _, _, base, base_id in rows}
    ids.update({int(num): block_id for num, block_id, _, _ in rows})
    ids[int(checkpoint)] = checkpoint_id
    horizon = min((int(r.base) for r in rows), default=int(checkpoint))
    return UndoWindow(int(checkpoint), checkpoint_id, horizon, ids)


class _UndoTx:
    """The undo rows of one transaction: the first image of each row it writes."""

    __slots__ = ("block", "seen", "rows")

    def __init__(self, block: int):
        self.block = block
        self.seen: set[tuple[str, tuple]] = set()
        self.rows: list[dict] = []

    def before_rows(self, conn: Any, table: Table, cols: Sequence[str],
                    rows: Sequence[tuple]) -> None:
        try:
            at = [cols.index(c.name) for c in table.primary_key.columns]
        except ValueError:
            raise ValueError(f"undo log: {table.name} is written without its whole primary "
                             "key, so its prior rows cannot be found: write the key, or list "
                             "the table in indexer.store.UNDO_EXEMPT with the reason") from None
        self.before_keys(conn, table, [tuple(r[i] for i in at) for r in rows])

    def before_keys(self, conn: Any, table: Table, keys: Iterable[tuple]) -> None:
        name, seen = table.name, self.seen
        todo = [k for k in dict.fromkeys(keys) if (name, k) not in seen]
        if not todo:
            return
        pk = list(table.primary_key.columns)
        for chunk in _chunks(todo, CHUNK // len(pk)):
            where = pk[0].in_([k[0] for k in chunk]) if len(pk) == 1 else \
                tuple_(*pk).in_(list(chunk))
            found = {tuple(r[c.name] for c in pk): r
                     for r in conn.execute(select(table).where(where)).mappings()}
            for key in chunk:
                self._add(name, key, found.get(key))

    def before_where(self, conn: Any, table: Table, where: Any) -> None:
        pk = list(table.primary_key.columns)
        for r in conn.execute(select(table).where(where)).mappings():
            key = tuple(r[c.name] for c in pk)
            if (table.name, key) not in self.seen:
                self._add(table.name, key, r)

    def _add(self, name: str, key: tuple, row: Mapping[str, Any] | None) -> None:
        self.seen.add((name, key))
        self.rows.append({"block": self.block, "tbl": name, "key": json.dumps(list(key)),
                          "image": None if row is None else json.dumps(dict(row))})

    def write(self, conn: Any) -> None:
        if self.rows:
            conn.execute(insert(t.undo_log), self.rows)


def _undo_keys(conn: Any, table: Table, keys: Iterable[tuple]) -> None:
    """Before writing ``keys`` of ``table`` outside ``_many``: their prior images, when the
    transaction is logged."""
    undo = conn.info.get(_UNDO)
    if undo is not None:
        undo.before_keys(conn, table, keys)


def _undo_where(conn: Any, table: Table, where: Any) -> None:
    """Before an UPDATE or DELETE of ``table`` ``where``: the rows' prior images, when the
    transaction is logged."""
    undo = conn.info.get(_UNDO)
    if undo is not None:
        undo.before_where(conn, table, where)


def _restore(conn: Any, table: Table, key: list, image: dict | None) -> None:
    """One row back to its image (None: it did not exist)."""
    pk = list(table.primary_key.columns)
    conn.execute(table.delete().where(and_(*(c == v for c, v in zip(pk, key, strict=True)))))
    if image is not None:
        conn.execute(insert(table).values(image))
