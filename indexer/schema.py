"""Database tables (SQLAlchemy Core). One table per entity, keyed by its chain identity."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

meta = Table(
    "meta", metadata,
    Column("id", Integer, primary_key=True),
    Column("last_block", BigInteger, nullable=False),  # the checkpoint
    Column("last_block_id", String(40), nullable=False),
    Column("last_time", BigInteger, nullable=False),
    Column("next_post_id", BigInteger, nullable=False),
    Column("total_vesting_fund", BigInteger, nullable=False),
    Column("total_vesting_shares", BigInteger, nullable=False),
    Column("chain_id", String(64), nullable=False),
    Column("rules", Text, nullable=False),
)

# Every setting that changes results and the rules label does not name: all of [market],
# rules.underdog_floor and rules.author_window_days (curation.market.MarketConfig.settings),
# by config key ("market.window_seconds"), as text: written by the first block write,
# compared at every writer's start (a mismatch is refused), read by serve and report for the
# windows. Empty in a database built before migration 0006 until a writer adopts its config
# (README "One database, one market").
market_settings = Table(
    "market_settings", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

posts = Table(
    "posts", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("author", Text, nullable=False),
    Column("permlink", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("block", BigInteger, nullable=False),
    Column("parent_author", Text, nullable=False),
    Column("parent_permlink", Text, nullable=False),
    Column("is_market", Boolean, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("declined", Boolean, nullable=False),
    Column("beneficiaries", Text, nullable=False),  # comma-separated account names
    Column("net_rshares", BigInteger, nullable=False),
    Column("abs_rshares", BigInteger, nullable=False),
    Column("payout", BigInteger),
    Column("paid_block", BigInteger),
    UniqueConstraint("author", "permlink", name="uq_posts_key"),
)
Index("ix_posts_paid_block", posts.c.paid_block)

votes = Table(
    "votes", metadata,
    Column("post_id", BigInteger, primary_key=True),
    Column("voter", Text, primary_key=True),
    Column("rshares", BigInteger, nullable=False),
)

commits = Table(
    "commits", metadata,
    Column("post_id", BigInteger, primary_key=True),
    Column("predictor", Text, primary_key=True),
    Column("commitment", String(64), nullable=False),
    Column("block", BigInteger, nullable=False),
    Column("trx", Integer, nullable=False),
    Column("op", Integer, nullable=False),
    Column("sub", Integer, nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("sp", BigInteger, nullable=False),
    Column("sp_known", Boolean, nullable=False),
    Column("abs_at_commit", BigInteger, nullable=False),
    Column("prediction", BigInteger),
    Column("stake", BigInteger),
    Column("bid", BigInteger),  # thousandths (600 = 0.600); a float before migration 0006
    Column("reveal_block", BigInteger),
    Column("status", String(8), nullable=False),
    Column("voted", Boolean, nullable=False),
    Column("qualified", Boolean, nullable=False),
    Column("ep", BigInteger),
    Column("d", Float),
    Column("cp", Float),
    Column("n", Integer),
    Column("r", Integer),
    Column("rp", Float),
    Column("ia", Float),
    Column("weight", Float),
    Column("reward", BigInteger),
    Column("hit", Boolean),  # revealed inside the band (counted toward R); NULL until settled
)
Index("ix_commits_predictor", commits.c.predictor)
# the commit's own columns (curation.state.Commit) come first, then settlement's record
# (rewards.settle.CommitResult) field by field: voted .. reward, hit

curators = Table(
    "curators", metadata,
    Column("name", Text, primary_key=True),
    Column("n", Integer, nullable=False),
    Column("hits", Integer, nullable=False),
    Column("open_commits", Integer, nullable=False),
    Column("earned", BigInteger, nullable=False),
    Column("rewarded", Integer, nullable=False),
)

accounts = Table(
    "accounts", metadata,
    Column("name", Text, primary_key=True),
    Column("vesting_shares", BigInteger, nullable=False),
    Column("delegated", BigInteger, nullable=False),
    Column("received", BigInteger, nullable=False),
    Column("to_withdraw", BigInteger, nullable=False),
    Column("withdrawn", BigInteger, nullable=False),
    Column("vesting_withdraw_rate", BigInteger, nullable=False, server_default="0"),
    # the block at which a node snapshot of the account was read (0 = built from ops):
    # vesting ops at or before it are already in the snapshot and are skipped
    Column("as_of_block", BigInteger, nullable=False, server_default="0"),
)

delegations = Table(
    "delegations", metadata,
    Column("delegator", Text, primary_key=True),
    Column("delegatee", Text, primary_key=True),
    Column("vests", BigInteger, nullable=False),
)

# Lowered or removed delegations on their way back to the delegator (the chain's
# vesting_delegation_expiration objects): the delegatee lost them at once, the delegator's
# delegated_vesting_shares drops at return_vesting_delegation. Keyed by the lowering op.
delegation_returns = Table(
    "delegation_returns", metadata,
    Column("delegator", Text, primary_key=True),
    Column("block", BigInteger, primary_key=True, autoincrement=False),
    Column("trx", BigInteger, primary_key=True, autoincrement=False),
    Column("op", Integer, primary_key=True, autoincrement=False),
    Column("vests", BigInteger, nullable=False),
    Column("expires", BigInteger, nullable=False),  # chain time the chain returns them
)

# The VESTS→SP price over time: (total_vesting_fund, total_vesting_shares) read at a block.
# SP at a commit uses the latest row at or before the commit's block (else the earliest).
vesting_prices = Table(
    "vesting_prices", metadata,
    Column("block", BigInteger, primary_key=True, autoincrement=False),
    Column("total_vesting_fund", BigInteger, nullable=False),
    Column("total_vesting_shares", BigInteger, nullable=False),
)

author_history = Table(
    "author_history", metadata,
    Column("post_id", BigInteger, primary_key=True, autoincrement=False),
    Column("author", Text, nullable=False),
    Column("is_reply", Boolean, nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("r", Float, nullable=False),
    Column("w", Float, nullable=False),
)
Index("ix_author_history_author", author_history.c.author, author_history.c.is_reply,
      author_history.c.time)

settlements = Table(
    "settlements", metadata,
    Column("post_id", BigInteger, primary_key=True, autoincrement=False),
    Column("block", BigInteger, nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("final_payout", BigInteger, nullable=False),
    Column("pool", BigInteger, nullable=False),
    Column("returned", BigInteger, nullable=False),
    Column("underdog_returned", BigInteger, nullable=False),
    Column("rules", Text, nullable=False),
    Column("r", Float, nullable=False),
    Column("x", Float, nullable=False),
    Column("f", Float),
    Column("author_average", Float),
    Column("n_commits", Integer, nullable=False),
    Column("n_revealed", Integer, nullable=False),
    Column("n_qualified", Integer, nullable=False),
)
Index("ix_settlements_block", settlements.c.block)

rejections = Table(
    "rejections", metadata,
    Column("block", BigInteger, primary_key=True, autoincrement=False),
    Column("trx", BigInteger, primary_key=True, autoincrement=False),
    Column("op", Integer, primary_key=True, autoincrement=False),
    Column("sub", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(40), nullable=False),
    Column("reason", String(40), nullable=False),
    Column("detail", Text, nullable=False),
    Column("account", Text, nullable=False),
    Column("author", Text, nullable=False),
    Column("permlink", Text, nullable=False),
)
Index("ix_rejections_reason", rejections.c.reason)
Index("ix_rejections_account", rejections.c.account)

# --- following a node (indexer.chain, curation_market.daemon) --------------------------
# Rolling figures of the daemon for `status` and the metrics; one row, rewritten each tick.
# Not market state: nothing the report shows depends on it.
node_status = Table(
    "node_status", metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False),
    Column("head", BigInteger, nullable=False),
    Column("irreversible", BigInteger, nullable=False),
    Column("head_time", BigInteger, nullable=False),  # chain time of the node's head block
    Column("ops_per_second", Float, nullable=False),
    Column("blocks_per_second", Float, nullable=False),
    Column("checked_at", BigInteger, nullable=False),  # wall clock, for health only
    Column("metrics_port", Integer, nullable=False),
    Column("provisional", Text, nullable=False),  # head mode: JSON summary of reversible blocks
)

# Accounts whose vesting was read from the node when they first committed (the daemon): the
# snapshot at the node's head, rewound along the account's history to ``as_of_block`` (the
# block before the batch that holds the commit), so that every later op is applied once.
# ``as_of_block`` NULL: a row read before migration 0004 (head state, later ops applied
# again); the daemon reads such accounts afresh when it starts.
account_snapshots = Table(
    "account_snapshots", metadata,
    Column("name", Text, primary_key=True),
    Column("read_block", BigInteger, nullable=False),  # first block of the batch it was read for
    Column("as_of_block", BigInteger),  # the block the accounts row then described
    Column("head_block", BigInteger),  # the node's head when find_accounts answered
    Column("exact", Boolean),  # False: some op could not be undone exactly (see note)
    Column("approx_vests", BigInteger, nullable=False, server_default="0"),
    Column("note", Text, nullable=False, server_default=""),
)

# --- API aggregates (api13): kept by the store at each batch, read by indexer.readmodel ------
# The per-request GROUP BY over the whole commits table cost 1.3–1.6 s per list and a 503 on
# the leaderboard at 3 M commits. These tables hold the same sums, written in the batch's
# transaction (indexer.store.Store._write_api_aggregates); migration 0005 backfills them.
# Names compare by code point on every database (PostgreSQL: the column's collation is "C"),
# so an index on (earned, name) serves the leaderboard's order directly.
CODE_POINT_TEXT = Text().with_variant(Text(collation="C"), "postgresql")

# per market: what the lists show beside each market (all commits, revealed ones)
api_market_counts = Table(
    "api_market_counts", metadata,
    Column("post_id", BigInteger, primary_key=True, autoincrement=False),
    Column("n_commits", Integer, nullable=False),
    Column("n_revealed", Integer, nullable=False),
)

# per curator over every settled market: readmodel's totals (earned, predictions, in_band,
# rewarded) without a range
api_curator_totals = Table(
    "api_curator_totals", metadata,
    Column("name", CODE_POINT_TEXT, primary_key=True),
    Column("earned", BigInteger, nullable=False),
    Column("predictions", Integer, nullable=False),
    Column("in_band", Integer, nullable=False),
    Column("rewarded", Integer, nullable=False),
)
Index("ix_api_curator_totals_rank", api_curator_totals.c.earned.desc(),
      api_curator_totals.c.name)

# the same per curator and UTC day of settlement (chain time // 86400): a leaderboard over a
# range sums the whole days inside it here and reads only its two partial edge days raw
api_curator_days = Table(
    "api_curator_days", metadata,
    Column("day", BigInteger, primary_key=True, autoincrement=False),
    Column("name", CODE_POINT_TEXT, primary_key=True),
    Column("earned", BigInteger, nullable=False),
    Column("predictions", Integer, nullable=False),
    Column("in_band", Integer, nullable=False),
    Column("rewarded", Integer, nullable=False),
)

# indexes the read model's queries use (EXPLAIN checked in tests/test_api_speed.py)
Index("ix_settlements_time", settlements.c.time)
Index("ix_commits_predictor_position", commits.c.predictor, commits.c.block, commits.c.trx,
      commits.c.op, commits.c.sub)
Index("ix_posts_category", posts.c.parent_author, posts.c.parent_permlink, posts.c.id)
Index("ix_rejections_account_position", rejections.c.account, rejections.c.block,
      rejections.c.trx, rejections.c.op, rejections.c.sub)

# --- reversible blocks: the undo log (indexer.store, "reversible blocks") ------------------
# HAF keeps, per registered table, a shadow table of prior row images tagged with the block
# that changed them, and hive.back_from_fork puts back the earliest image of every row
# changed above the fork point (docs/node.md). The same here in one table for every market
# table: each write made while the last ``[ingest] reversible_blocks`` blocks are logged
# records, before it happens, the row's prior image (JSON of every column) or NULL when the
# key did not exist ("inserted"). Rows of blocks older than the window are pruned in the same
# transaction as each batch.
undo_log = Table(
    "undo_log", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),  # write order: undone newest first
    Column("block", BigInteger, nullable=False),  # the block whose write this undoes
    Column("tbl", String(64), nullable=False),
    Column("key", Text, nullable=False),  # JSON list of the primary key's values
    Column("image", Text),  # JSON object of the row before the write; NULL: it was inserted
)
Index("ix_undo_log_block", undo_log.c.block)

# The blocks written with undo data, one flush each: their ids (to find a fork point against
# a node) and the checkpoint before them (``base``/``base_id``): the oldest base is the
# horizon, the earliest block a rewind can restore.
undo_blocks = Table(
    "undo_blocks", metadata,
    Column("num", BigInteger, primary_key=True, autoincrement=False),
    Column("block_id", String(40), nullable=False),
    Column("base", BigInteger, nullable=False),
    Column("base_id", String(40), nullable=False),
)
