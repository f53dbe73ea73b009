"""The daemon beside a node: follow irreversible blocks into the database, crash-safe.

Jobs (APScheduler, one background thread each, never two of one job at once):

- **follow**: drain what the fetcher thread queued, check ``previous`` links, write through the
  same :class:`~indexer.ingest.Ingester` as ``replay`` (state and checkpoint in one transaction
  per batch). Settlement happens inside it, at the block carrying a post's payout, so it is
  driven by chain time only. In head mode it then recomputes a provisional view of the
  reversible blocks, in memory, never written as market state.
- **sweep**: counts markets whose payout time (chain time) has passed with no payout seen.
- **upkeep**: counts the author history inside the rule set's window (chain time); the averages
  themselves are computed at settlement from that history.
- **health**: node head, LIB, staleness (the one use of wall-clock time), rolling figures into
  ``node_status`` for ``status``.

A kill at any moment loses at most the batch in flight; the next start resumes from the
checkpoint. SIGTERM/SIGINT stop at a batch boundary.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import orjson
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy import column as sa_column
from sqlalchemy import table as sa_table

from curation.chains import ChainProfile
from curation.market import Applier
from curation.records import Block, CommitMsg, MarketOp
from curation.state import Account
from curation_market.config import Settings
from curation_market.daemon.metrics import Metrics
from curation_market.progress import BatchLog
from indexer import schema as t
from indexer.accounts import account_from
from indexer.chain import Batch, ChainError, Fetcher, NodeClient, NodeState, linked
from indexer.history import Reconstruction, Rewind, read_back
from indexer.ingest import Ingester, Stats
from indexer.store import Store

log = logging.getLogger("curation.daemon")
# "skipped: maximum number of running instances" is the normal case for a follow run longer
# than the poll interval, not news
logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
PAYOUT_SECONDS = 7 * 86400


@dataclass
class Rolling:
    """ops/s and blocks/s over the last ``window`` seconds of writing."""

    window: float = 30.0
    points: deque = field(default_factory=deque)  # (monotonic, blocks, ops)

    def add(self, blocks: int, ops: int) -> None:
        now = time.monotonic()
        self.points.append((now, blocks, ops))
        while self.points and now - self.points[0][0] > self.window:
            self.points.popleft()

    def rates(self) -> tuple[float, float]:
        if len(self.points) < 2:
            return 0.0, 0.0
        span = self.points[-1][0] - self.points[0][0]
        if span <= 0:
            return 0.0, 0.0
        blocks = sum(p[1] for p in list(self.points)[1:])
        ops = sum(p[2] for p in list(self.points)[1:])
        return blocks / span, ops / span


class Daemon:
    def __init__(self, settings: Settings, urls: Sequence[str], engine: Engine,
                 head_mode: bool | None = None, metrics_port: int | None = None,
                 until: int | None = None, from_block: int | None = None):
        n = settings.node
        self.settings = settings
        self.cfg = settings.market_config()
        # the chain id is the node's unless configured: checked and bound in run()
        self.store = Store(engine, settings.chain.chain_id, self.cfg.rules.label)
        self.ingester = Ingester(self.store, self.cfg, settings.ingest.batch_blocks,
                                 before_batch=self._snapshot_committers)
        self.profile: ChainProfile | None = None
        self.client = NodeClient(urls, n.timeout_seconds, n.retries, n.backoff_seconds,
                                 call_limit=n.batch_calls)
        self.head_mode = n.head_mode if head_mode is None else head_mode
        self.metrics = Metrics()
        self.metrics_port = n.metrics_port if metrics_port is None else metrics_port
        self.serve_metrics = metrics_port is not None or n.metrics_port > 0
        self.until = until
        self.from_block = n.start_block if from_block is None else from_block
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.rolling = Rolling()
        self.fetcher: Fetcher | None = None
        self.node: NodeState | None = None
        self.provisional: dict = {}
        self.shown_ids: dict[int, str] = {}  # head mode: ids of the blocks shown last tick
        self.stale = False  # the node's head was older than stale_seconds at the last check
        self.forks_seen = 0  # head mode: ticks where a shown block was replaced
        self._write_lock = threading.Lock()
        self._counted = (0, 0)  # blocks, ops of the current follow run already in ``rolling``
        self._published = 0.0  # monotonic time of the last status row
        self.batch_log = BatchLog()  # a line (or a bar on a terminal) per committed batch

    # --- lifecycle ----------------------------------------------------------------------
    def run(self) -> int:
        """Run until stopped (signal, ``until`` reached, or a fatal error); exit code."""
        from apscheduler.schedulers.background import BackgroundScheduler

        n = self.settings.node
        try:
            self.adopt_chain()
        except ValueError as exc:  # the config contradicts the node, or the db another chain
            self.error = exc
            log.error("stopped: %s", exc)
            return 1
        if self.serve_metrics:
            self.metrics_port = self.metrics.serve(self.metrics_port)
            log.info("metrics on http://127.0.0.1:%d/metrics", self.metrics_port)
        self.node = self.client.state()
        self.store.set_globals(self.node.total_vesting_fund, self.node.total_vesting_shares)
        self.store.add_globals(self.node.head, self.node.total_vesting_fund,
                               self.node.total_vesting_shares)
        self.repair_snapshots()
        # the ingester's state was read before: on a fresh database it holds no globals, and
        # every commit's Steem Power would count as unknown (0) until a restart
        self.ingester.state.globals = self.store.new_state().globals
        self.rolling.add(0, 0)
        self.fetcher = Fetcher(self.client, self.start_block(), n.batch_size,
                               n.queue_batches, n.poll_seconds, self.until,
                               n.history_wait_seconds).start()
        self.health()
        sched = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1,
                                                  "misfire_grace_time": None})
        sched.add_job(self._guard(self.follow), "interval", seconds=min(n.poll_seconds, 1.0),
                      id="follow")
        sched.add_job(self._guard(self.sweep), "interval", seconds=n.sweep_seconds, id="sweep")
        sched.add_job(self._guard(self.upkeep), "interval", seconds=n.upkeep_seconds,
                      id="upkeep")
        sched.add_job(self._guard(self.health), "interval", seconds=n.health_seconds,
                      id="health")
        self._install_signals()
        sched.start()
        try:
            while not self.stopping.wait(0.2):
                pass
        finally:
            self.fetcher.stop()
            sched.shutdown(wait=True)  # a follow run in progress ends at its batch boundary
            self._publish_progress()  # no node call: a node that is down would delay the stop
            self.metrics.stop()
        if self.error is not None:
            log.error("stopped: %s", self.error)
            return 1
        return 0

    def adopt_chain(self) -> ChainProfile:
        """Ask the node which chain it follows; a configured chain.name or chain.chain_id that
        contradicts it, or a database built on another chain, is refused (ConfigError /
        ValueError) before anything is fetched. The market then hashes with the node's id."""
        profile = self.settings.chain.against(self.client.profile(), self.client.url)
        self.store.claim_chain(profile.chain_id)
        if (self.cfg.chain_id, self.cfg.chain) != (profile.chain_id, profile.name):
            self.cfg = replace(self.cfg, chain_id=profile.chain_id, chain=profile.name)
            self.ingester = Ingester(self.store, self.cfg, self.settings.ingest.batch_blocks,
                                     before_batch=self._snapshot_committers)
        log.info("node %s follows %s (chain id %s, hardfork %s)", self.client.url,
                 profile.name, profile.chain_id, profile.hardfork_version)
        self.profile = profile
        return profile

    def start_block(self) -> int:
        """Where to fetch from: after the checkpoint; on a fresh database ``from_block``, or
        else the lowest block the node serves (a full node: 1; the test node: its slice)."""
        checkpoint = self.ingester.checkpoint
        if checkpoint:
            if self.from_block and self.from_block > checkpoint + 1:
                log.warning("--from-block %d ignored: the database resumes at block %d",
                            self.from_block, checkpoint + 1)
            return checkpoint + 1
        if self.from_block:
            log.info("fresh database: starting at block %d (from_block)", self.from_block)
            return self.from_block
        assert self.node is not None
        first = self.client.first_block(self.node.irreversible)
        log.info("fresh database: starting at block %d, the first the node serves", first)
        return first

    def stop(self, *_: object) -> None:
        self.stopping.set()

    def _install_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)

    def _guard(self, job):  # type: ignore[no-untyped-def]
        def run() -> None:
            if self.stopping.is_set():
                return
            try:
                job()
            except Exception as exc:  # noqa: BLE001 - a fatal error stops the daemon, said once
                self.error = exc
                self.stopping.set()
        run.__name__ = job.__name__
        return run

    # --- follow -------------------------------------------------------------------------
    def follow(self) -> Stats | None:
        """Write everything the fetcher has queued; one or more batches, then return."""
        assert self.fetcher is not None
        with self._write_lock:
            meta = self.ingester.state.meta
            self._counted = (0, 0)
            stats = self.ingester.run(
                linked(self._blocks(self.fetcher.drain()), meta.last_block, meta.last_block_id),
                progress=self._progress, stop=self.stopping.is_set)
            self._count(stats)
            self._publish_progress()
            if self.until is not None and self.ingester.checkpoint >= self.until:
                self.stopping.set()
            if self.head_mode and not self.stopping.is_set():
                self.show_provisional()
            return stats

    def _progress(self, stats: Stats) -> None:
        """After each committed batch: a catch-up is one long follow run, so the rates and
        the status row are refreshed from here too (the status row at most once a second)."""
        self._count(stats)
        self.metrics.indexed_block.set(stats.last_block)
        self.batch_log(stats, self.node.irreversible if self.node is not None else None)
        if time.monotonic() - self._published >= 1.0:
            self._publish_progress()

    def _count(self, stats: Stats) -> None:
        """Add what ``stats`` (cumulative over one follow run) holds beyond what was added."""
        blocks, ops = stats.blocks - self._counted[0], stats.ops - self._counted[1]
        if blocks:
            self.rolling.add(blocks, ops)
        self._counted = (stats.blocks, stats.ops)

    def _blocks(self, batches: Iterator[Batch]) -> Iterator[dict]:
        for batch in batches:
            self.node = batch.node
            yield from batch.blocks

    def _snapshot_committers(self, blocks: list[Block]) -> None:
        """Before each batch: the VESTS price the node reports, and the vesting of accounts
        committing for the first time, as it was at the end of the block before the batch.

        The node answers ``find_accounts`` at its head; :mod:`indexer.history` rewinds that
        snapshot along the account's history to ``blocks[0].num - 1`` and tags the row with
        that block (``Account.as_of_block``), so the engine applies every vesting op of the
        batch and after it exactly once, and none before (docs/node.md, "Steem Power from the
        node").
        """
        if self.node is not None:
            self.store.add_globals(self.node.head, self.node.total_vesting_fund,
                                   self.node.total_vesting_shares)
        names = {rec.signer for block in blocks for rec in block.records
                 if type(rec) is MarketOp and rec.signer is not None
                 and any(isinstance(m, CommitMsg) for m in rec.msgs)}
        if not names:
            return
        s = t.account_snapshots.c
        with self.store.engine.connect() as conn:
            known = set(conn.execute(select(s.name).where(s.name.in_(sorted(names))))
                        .scalars())
        todo = sorted(names - known)
        if todo:
            self.read_snapshots(todo, blocks[0].num - 1, blocks[0].num)

    def read_snapshots(self, names: Sequence[str], target: int, read_block: int,
                       note: str = "") -> dict[str, Reconstruction]:
        """Read ``names`` from the node and write their vesting at the end of ``target``
        (accounts, the delegations the rewind learnt, account_snapshots) in one transaction."""
        snap = self.client.account_snapshot(list(names))
        if snap.head < target:
            raise ChainError(f"node {self.client.url} is at block {snap.head:,}, behind the "
                             f"block {target:,} the accounts are wanted at")
        self.store.add_globals(snap.head, snap.total_vesting_fund, snap.total_vesting_shares)
        prices = self._prices(target, snap.head)
        found = {o.get("name"): o for o in snap.accounts if isinstance(o, dict)}
        out: dict[str, Reconstruction] = {}
        for name in names:
            obj = found.get(name)
            if obj is None:
                out[name] = Reconstruction(Account(name, as_of_block=target), {}, True,
                                           ["not an account on the node"], 0)
                continue
            head_state = account_from(obj, snap.head)
            rewind = Rewind(head_state, snap.head, target, self.cfg.chain)
            try:
                read = read_back(self.client.history_page, rewind)
            except ChainError as exc:  # no account history on this node (plugin off)
                out[name] = Reconstruction(head_state, {}, False, [
                    f"no account history ({str(exc)[:120]}): the vesting of block {snap.head} "
                    f"stands for block {target}; ops up to {snap.head} are not applied again"],
                    0)
                continue
            rec = rewind.result(read.complete, prices)
            if not read.filtered:
                rec.notes.append("the node ignores the operation filter (steemd): history "
                                 "read unfiltered")
            rec.notes.insert(0, f"{read.entries} history entries in {read.calls} call(s)")
            out[name] = rec
        self._write_snapshots(out, snap.head, read_block, note)
        approx = [n for n, r in out.items() if not r.exact]
        if approx:
            log.warning("vesting of %s at block %d is approximate: %s", ", ".join(approx),
                        target, "; ".join(out[n].notes[-1] for n in approx)[:300])
        return out

    def _prices(self, first: int, last: int) -> list[tuple[int, int, int]]:
        """The recorded VESTS prices a rewind from ``last`` to ``first`` can use: the latest
        at or before ``first`` (else the earliest) and every one up to ``last``."""
        p = t.vesting_prices.c
        cols = select(p.block, p.total_vesting_fund, p.total_vesting_shares)
        with self.store.engine.connect() as conn:
            before = conn.execute(cols.where(p.block <= first).order_by(p.block.desc())
                                  .limit(1)).all()
            inside = conn.execute(cols.where(p.block > first, p.block <= last)
                                  .order_by(p.block)).all()
        return sorted({(int(b), int(f), int(v)) for b, f, v in before + inside})

    def _write_snapshots(self, recs: dict[str, Reconstruction], head: int, read_block: int,
                         note: str) -> None:
        ins = self.store._insert  # noqa: SLF001 - the dialect's upsert
        with self.store.engine.begin() as conn:
            for name, rec in recs.items():
                acct = rec.account
                row = {k: getattr(acct, k) for k in acct.__slots__}
                conn.execute(ins(t.accounts).values(row).on_conflict_do_update(
                    index_elements=["name"], set_={k: v for k, v in row.items() if k != "name"}))
                for (a, b), vests in sorted(rec.pairs.items()):
                    conn.execute(ins(t.delegations).values(delegator=a, delegatee=b, vests=vests)
                                 .on_conflict_do_update(index_elements=["delegator", "delegatee"],
                                                        set_={"vests": vests}))
                snap = {"read_block": read_block, "as_of_block": acct.as_of_block,
                        "head_block": head, "exact": rec.exact,
                        "approx_vests": rec.approx_vests,
                        "note": "; ".join(([note] if note else []) + rec.notes)[:2000]}
                conn.execute(ins(t.account_snapshots).values(name=name, **snap)
                             .on_conflict_do_update(index_elements=["name"], set_=snap))

    def repair_snapshots(self) -> list[str]:
        """Accounts read before snapshots were tagged (migration 0004, or a node_accounts
        table left by an older daemon): their rows hold the node's head state with later
        ops applied again. They are read afresh, as of the checkpoint."""
        engine = self.store.engine
        s = t.account_snapshots.c
        if "node_accounts" in inspect(engine).get_table_names():
            legacy = sa_table("node_accounts", sa_column("name"), sa_column("block"))
            with engine.begin() as conn:
                have = set(conn.execute(select(s.name)).scalars())
                rows = [{"name": n, "read_block": b, "note": "read before 0004"}
                        for n, b in conn.execute(select(legacy.c.name, legacy.c.block))
                        if n not in have]
                if rows:
                    conn.execute(t.account_snapshots.insert(), rows)
                conn.exec_driver_sql("DROP TABLE node_accounts")
        with engine.connect() as conn:
            stale = list(conn.execute(select(s.name, s.read_block)
                                      .where(s.as_of_block.is_(None)).order_by(s.name)))
        checkpoint = self.ingester.checkpoint
        for name, read_block in stale:
            self.read_snapshots([name], checkpoint, read_block,
                                f"re-read at block {checkpoint}: the head snapshot of block "
                                f"{read_block}'s batch was counted twice before")
        if stale:
            self.ingester.state.accounts.clear()
            self.ingester.state.delegations.clear()
            log.info("re-read %d account(s) read before snapshots were tagged", len(stale))
        return [n for n, _ in stale]

    # --- head mode ----------------------------------------------------------------------
    def show_provisional(self) -> None:
        """Apply the reversible blocks to a throwaway state: what the head shows right now.

        Recomputed from the irreversible state every tick, never written as market state, so a
        fork needs no rollback: the next tick simply no longer contains the orphaned blocks.
        """
        try:
            self._show_provisional()
        except ChainError as exc:  # a lagging node or a fork mid-batch: nothing to show now
            log.info("provisional view skipped: %s", exc)
            self.provisional = {}

    def _show_provisional(self) -> None:
        node = self.client.state()
        self.node = node
        first = self.ingester.checkpoint + 1
        if first > node.head or node.head - first >= self.settings.node.batch_size:
            # nothing reversible yet, or still catching up: the view would be stale at once
            self.provisional = {}
            return
        raws = self.client.blocks(first, node.head, include_reversible=True)
        if not raws:  # the node's history has no trustworthy ops for them yet
            self.provisional = {}
            return
        ids = {r["block_num"]: r["block_id"] for r in raws}
        if any(self.shown_ids.get(n, i) != i for n, i in ids.items()):
            self.forks_seen += 1
            self.metrics.forks.set(self.forks_seen)
            log.info("fork: reversible blocks replaced; provisional view recomputed")
        self.shown_ids = ids
        state = self.store.new_state()
        meta = state.meta
        blocks = [self.ingester.adapter.block(r) for r in
                  linked(iter(raws), meta.last_block, meta.last_block_id)]
        self.store.prefetch(state, blocks)
        applier = Applier(state, self.cfg)
        for b in blocks:
            applier.apply(b)
        commits = [c for c in state.commits.values() if c is not None and c.block >= first]
        self.provisional = {
            "from_block": first, "to_block": raws[-1]["block_num"],
            "head_id": raws[-1]["block_id"],
            "new_posts": sum(1 for p in state.posts.values() if p is not None
                             and p.block >= first),
            "commits": len(commits),
            "reveals": sum(1 for c in state.commits.values()
                           if c is not None and (c.reveal_block or 0) >= first),
            "settlements": len(state.settled), "rejections": len(state.rejections),
        }
        self.metrics.provisional_blocks.set(len(raws))
        self._write_status()

    # --- sweep, upkeep, health ----------------------------------------------------------
    def sweep(self) -> None:
        """Markets past payout time by chain time without a payout op (should stay 0)."""
        with self.store.engine.connect() as conn:
            now = conn.execute(select(t.meta.c.last_time)).scalar_one()
            p = t.posts.c
            overdue = conn.execute(select(func.count()).select_from(t.posts).where(
                p.is_market, p.paid_block.is_(None), p.deleted.is_(False),
                p.created + PAYOUT_SECONDS < now)).scalar_one()
            settled = conn.execute(select(func.count()).select_from(t.settlements)).scalar_one()
            reasons = conn.execute(select(t.rejections.c.reason, func.count())
                                   .group_by(t.rejections.c.reason)).all()
        self.metrics.overdue_markets.set(overdue)
        self.metrics.settlements.set(settled)
        for reason, count in reasons:
            self.metrics.rejected_ops.labels(reason=reason).set(count)

    def upkeep(self) -> None:
        """Author history inside the window (chain time): the size the averages draw on."""
        with self.store.engine.connect() as conn:
            now = conn.execute(select(t.meta.c.last_time)).scalar_one()
            h = t.author_history.c
            n = conn.execute(select(func.count()).select_from(t.author_history).where(
                h.time >= now - self.cfg.rules.author_window)).scalar_one()
        log.info("author history inside the window: %d entries", n)

    def health(self) -> None:
        try:
            self.node = self.client.state()
        except ChainError as exc:
            log.warning("node unreachable: %s", exc)
            self._publish_progress()  # still running: ``status`` must not call it stopped
            return
        age = int(time.time() - self.node.head_time)
        stale = age > self.settings.node.stale_seconds
        if stale and not self.stale:  # said when it happens, not at every health tick
            log.warning("node %s is stale: head block %d is %ds old (the metric node_stale "
                        "stays 1 while it lasts)", self.node.url, self.node.head, age)
        elif self.stale and not stale:
            log.info("node %s is fresh again: head block %d", self.node.url, self.node.head)
        self.stale = stale
        self.metrics.node_stale.set(1 if stale else 0)
        self.metrics.failovers.set(self.client.failovers)
        self._publish_progress()
        self.sweep()

    def _publish_progress(self) -> None:
        self._published = time.monotonic()
        meta = self.ingester.state.meta
        m = self.metrics
        m.indexed_block.set(meta.last_block)
        bps, ops = self.rolling.rates()
        m.blocks_per_second.set(bps)
        m.ops_per_second.set(ops)
        if self.node is not None:
            m.irreversible_block.set(self.node.irreversible)
            m.head_block.set(self.node.head)
            m.lag_blocks.set(max(0, self.node.irreversible - meta.last_block))
            if meta.last_time:
                m.lag_seconds.set(max(0, self.node.head_time - meta.last_time))
        self._write_status()

    def _write_status(self) -> None:
        if self.node is None:
            return
        bps, ops = self.rolling.rates()
        row = {"url": self.node.url, "head": self.node.head,
               "irreversible": self.node.irreversible, "head_time": self.node.head_time,
               "ops_per_second": ops, "blocks_per_second": bps, "checked_at": int(time.time()),
               "metrics_port": self.metrics_port if self.serve_metrics else 0,
               "provisional": orjson.dumps(self.provisional).decode()}
        upsert = self.store._insert(t.node_status)  # noqa: SLF001 - the dialect's upsert
        with self.store.engine.begin() as conn:  # jobs on two threads may both write it
            conn.execute(upsert.values(id=1, **row).on_conflict_do_update(
                index_elements=["id"], set_=row))


STALE_INTERVALS = 3  # a status row older than this many health intervals: not running


def status(engine: Engine, client: NodeClient | None = None, health_seconds: float = 10.0,
           now: float | None = None) -> dict:
    """What ``curation-market status`` prints: from the database, fresh from a node if given.

    The daemon rewrites its status row at least every ``health_seconds`` (wall clock) while it
    runs (and after every follow run, about once a second), so a row older than
    ``STALE_INTERVALS`` of them (3 s at least) means it is not running: the rates it holds are
    then history and are reported as 0, with the last ones beside them. The row's age is
    given in wall time and, with a node, in chain time too.
    """
    with engine.connect() as conn:
        meta = conn.execute(select(t.meta)).mappings().one()
        row = conn.execute(select(t.node_status)).mappings().first()
    doc = {"indexed_block": meta["last_block"], "indexed_time": meta["last_time"]}
    node = dict(row) if row else {}
    if row:
        age = max(0, int((time.time() if now is None else now) - row["checked_at"]))
        limit = max(STALE_INTERVALS * health_seconds, 3.0)
        running = age <= limit
        doc |= {"daemon": "running" if running else "not running",
                "status_written": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                time.gmtime(row["checked_at"])),
                "status_age_seconds": age, "status_stale_after_seconds": int(limit),
                "status_head_block": row["head"], "status_head_time": row["head_time"]}
        if not running:
            doc |= {"last_ops_per_second": round(row["ops_per_second"], 1),
                    "last_blocks_per_second": round(row["blocks_per_second"], 1)}
            node |= {"ops_per_second": 0.0, "blocks_per_second": 0.0}
    if client is not None:
        s = client.state()
        node |= {"url": s.url, "head": s.head, "irreversible": s.irreversible,
                 "head_time": s.head_time}
        if row:  # how far the chain moved since the row was written
            doc |= {"status_age_blocks": max(0, s.head - row["head"]),
                    "status_age_chain_seconds": max(0, s.head_time - row["head_time"])}
    if node:
        doc |= {"node": node.get("url"), "head_block": node.get("head"),
                "irreversible_block": node.get("irreversible"),
                "lag_blocks": max(0, (node.get("irreversible") or 0) - meta["last_block"]),
                "lag_seconds": max(0, (node.get("head_time") or 0) - meta["last_time"])
                if meta["last_time"] else None,
                "ops_per_second": round(node.get("ops_per_second") or 0.0, 1),
                "blocks_per_second": round(node.get("blocks_per_second") or 0.0, 1),
                "metrics_port": node.get("metrics_port") or None,
                "provisional": orjson.loads(node["provisional"]) if node.get("provisional")
                else {}}
    return doc
