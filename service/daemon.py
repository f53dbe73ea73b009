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
from dataclasses import dataclass, field

import orjson
from sqlalchemy import Engine, func, select

from curation.market import Applier
from curation.records import Block, CommitMsg, MarketOp
from indexer import schema as t
from indexer.accounts import account_from
from indexer.chain import Batch, ChainError, Fetcher, NodeClient, NodeState, linked
from indexer.ingest import Ingester, Stats
from indexer.store import Store
from service.config import Settings
from service.metrics import Metrics

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
        self.store = Store(engine, settings.chain.chain_id, self.cfg.rules.label)
        self.ingester = Ingester(self.store, self.cfg, settings.ingest.batch_blocks,
                                 before_batch=self._snapshot_committers)
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

    # --- lifecycle ----------------------------------------------------------------------
    def run(self) -> int:
        """Run until stopped (signal, ``until`` reached, or a fatal error); exit code."""
        from apscheduler.schedulers.background import BackgroundScheduler

        n = self.settings.node
        if self.serve_metrics:
            self.metrics_port = self.metrics.serve(self.metrics_port)
            log.info("metrics on http://127.0.0.1:%d/metrics", self.metrics_port)
        self.node = self.client.state()
        self.store.set_globals(self.node.total_vesting_fund, self.node.total_vesting_shares)
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
        """Read from the node the vesting of accounts committing for the first time.

        The node reports *current* vesting (at its head), not the vesting at the commit's
        block: close when following the LIB (a few blocks later), approximate during a catch-up
        over old blocks, where later vesting changes are also applied again as their ops are
        indexed (see docs/node.md).
        """
        names = {rec.signer for block in blocks for rec in block.records
                 if type(rec) is MarketOp and rec.signer is not None
                 and any(isinstance(m, CommitMsg) for m in rec.msgs)}
        if not names:
            return
        with self.store.engine.connect() as conn:
            known = set(conn.execute(select(t.node_accounts.c.name).where(
                t.node_accounts.c.name.in_(sorted(names)))).scalars())
        todo = sorted(names - known)
        if not todo:
            return
        found = {a.name: a for a in (account_from(o) for o in self.client.accounts(todo))}
        first = blocks[0].num
        ins = self.store._insert(t.accounts)  # noqa: SLF001 - the dialect's upsert
        with self.store.engine.begin() as conn:
            for name in todo:
                acct = found.get(name)
                if acct is not None:
                    row = {k: getattr(acct, k) for k in acct.__slots__}
                    conn.execute(ins.values(row).on_conflict_do_update(
                        index_elements=["name"],
                        set_={k: v for k, v in row.items() if k != "name"}))
                conn.execute(self.store._insert(t.node_accounts)  # noqa: SLF001
                             .values(name=name, block=first).on_conflict_do_nothing())

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


def status(engine: Engine, client: NodeClient | None = None) -> dict:
    """What ``curation-market status`` prints: from the database, fresh from a node if given."""
    with engine.connect() as conn:
        meta = conn.execute(select(t.meta)).mappings().one()
        row = conn.execute(select(t.node_status)).mappings().first()
    doc = {"indexed_block": meta["last_block"], "indexed_time": meta["last_time"]}
    node = dict(row) if row else {}
    if client is not None:
        s = client.state()
        node |= {"url": s.url, "head": s.head, "irreversible": s.irreversible,
                 "head_time": s.head_time}
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
