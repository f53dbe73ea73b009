"""What the daemon's jobs share: one plain object, passed to plain functions.

The jobs (:mod:`curation_market.daemon.jobs`) are module-level functions of a
:class:`Context`, so a test calls ``follow(ctx)`` itself, in its own thread and order, and
APScheduler (:mod:`curation_market.daemon.run`) is only what calls them on a timer in the
running daemon.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine

from curation.chains import ChainProfile
from curation.market import MarketConfig
from curation.records import Block
from curation_market.config import Settings
from curation_market.daemon.metrics import Metrics
from curation_market.progress import BatchLog
from indexer.chain import Fetcher, NodeClient, NodeState
from indexer.ingest import Ingester
from indexer.store import Store


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


@dataclass(eq=False)
class Context:
    """The daemon's state between job runs. Built by :meth:`create`; :func:`~curation_market.
    daemon.run.start` then binds the chain and starts the fetcher."""

    settings: Settings
    cfg: MarketConfig  # the chain id and name become the node's in ``adopt_chain``
    store: Store
    client: NodeClient
    head_mode: bool = False
    until: int | None = None  # stop once this block is indexed
    from_block: int = 0  # fresh database: the first block (0: the node's first)
    metrics: Metrics = field(default_factory=Metrics)
    metrics_port: int = 0
    serve_metrics: bool = False
    profile: ChainProfile | None = None
    fetcher: Fetcher | None = None
    node: NodeState | None = None  # the node's state as last seen
    rolling: Rolling = field(default_factory=Rolling)
    provisional: dict = field(default_factory=dict)  # head mode: the view of reversible blocks
    shown_ids: dict[int, str] = field(default_factory=dict)  # head mode: ids shown last tick
    stale: bool = False  # the node's head was older than stale_seconds at the last check
    forks_seen: int = 0  # head mode: ticks where a shown block was replaced
    fork_rewinds: int = 0  # written blocks rewound to where the node agrees (daemon.forks)
    stopping: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None  # what stopped it, if anything did
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    counted: tuple[int, int] = (0, 0)  # blocks, ops of the current follow run in ``rolling``
    published: float = 0.0  # monotonic time of the last status row
    batch_log: BatchLog = field(default_factory=BatchLog)  # a line (or a bar) per batch
    ingester: Ingester = field(init=False)  # set by create(), again by adopt_chain

    @classmethod
    def create(cls, settings: Settings, urls: Sequence[str], engine: Engine,
               head_mode: bool | None = None, metrics_port: int | None = None,
               until: int | None = None, from_block: int | None = None) -> Context:
        """Options given here win over ``settings.node``; nothing is asked of the node yet."""
        n = settings.node
        cfg = settings.market_config()
        # the chain id is the node's unless configured: checked and bound in adopt_chain
        store = Store(engine, settings.chain.chain_id, cfg.rules.label)
        client = NodeClient(urls, n.timeout_seconds, n.retries, n.backoff_seconds,
                            call_limit=n.batch_calls)
        ctx = cls(settings, cfg, store, client,
                  head_mode=n.head_mode if head_mode is None else head_mode,
                  until=until, from_block=n.start_block if from_block is None else from_block,
                  metrics_port=n.metrics_port if metrics_port is None else metrics_port,
                  serve_metrics=metrics_port is not None or n.metrics_port > 0)
        ctx.ingester = new_ingester(ctx)
        return ctx

    def stop(self, *_: object) -> None:
        """Ask every job to end at its next batch boundary (also the signal handler)."""
        self.stopping.set()


def new_ingester(ctx: Context) -> Ingester:
    """The ingester of ``ctx.cfg``, reading the vesting of new committers before each batch."""
    from curation_market.daemon.snapshots import snapshot_committers

    def before_batch(blocks: list[Block]) -> None:
        snapshot_committers(ctx, blocks)

    def tip() -> int | None:
        """Where the fetcher is heading: the node's LIB (or ``until``), so that a catch-up
        run ending far below it writes undo data for its last block only."""
        if ctx.node is None:
            return ctx.until
        return ctx.node.irreversible if ctx.until is None else \
            min(ctx.until, ctx.node.irreversible)

    return Ingester(ctx.store, ctx.cfg, ctx.settings.ingest.batch_blocks,
                    before_batch=before_batch,
                    reversible_blocks=ctx.settings.ingest.reversible_blocks, tip=tip)


def new_fetcher(ctx: Context, start: int) -> Fetcher:
    """The fetching thread from block ``start`` on, started."""
    n = ctx.settings.node
    return Fetcher(ctx.client, start, n.batch_size, n.queue_batches, n.poll_seconds,
                   ctx.until, n.history_wait_seconds).start()
