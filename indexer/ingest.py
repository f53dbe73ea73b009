"""Checkpointed ingestion: block dicts → records → engine → database, batch by batch.

Blocks at or below the checkpoint are skipped, so re-running a range is a no-op and a run
killed at any moment resumes where its last committed batch ended.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from curation.market import Applier, MarketConfig
from curation.records import Block
from curation.state import Rejection, State
from indexer.blockfile import BadLine
from indexer.ops import Adapter, BadBlock
from indexer.store import Kept, Store


@dataclass
class Stats:
    blocks: int = 0
    ops: int = 0
    records: int = 0
    skipped: int = 0  # at or below the checkpoint
    bad_lines: int = 0
    seconds: float = 0.0
    last_block: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0


GC_THRESHOLD = (50_000, 20, 100)  # collections per allocations while ingesting


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less often while a replay runs.

    A batch allocates hundreds of thousands of small acyclic objects (dicts of parsed JSON,
    records, rows); with the default threshold (700) the collector runs thousands of times
    and, every so often, walks every live object — a quarter of a replay's time. Nothing here
    depends on when garbage is collected, and cycles are still collected, just in larger,
    rarer passes; the old thresholds come back afterwards.
    """
    old = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*old)


class Ingester:
    def __init__(self, store: Store, cfg: MarketConfig, batch_blocks: int = 2000,
                 batch_ops: int = 50_000,
                 before_batch: Callable[[list[Block]], None] | None = None,
                 keep_rows: bool = False, reversible_blocks: int = 0,
                 tip: Callable[[], int | None] | None = None):
        """``keep_rows``: keep the rows a batch loaded or wrote for the next batches
        (:class:`indexer.store.Kept`), for a run that is the database's only writer (a
        replay); the daemon, whose jobs write accounts between batches, reads them fresh.

        ``reversible_blocks`` (K, ``[ingest] reversible_blocks``): the last K blocks of a run
        are written one block per transaction with undo data, so that the state after any of
        them can be restored (``Store.rewind``; see :meth:`_commit_batch`); 0 writes none.
        ``tip``: the highest block the source will reach soon, if known (the daemon: the
        node's LIB), so that a run ending far below it (a catch-up between two fetches) logs
        only its last block, not K."""
        self.store, self.cfg = store, cfg
        self.reversible_blocks = reversible_blocks
        self.tip = tip
        store.reversible_blocks = reversible_blocks
        # sees each batch, adapted, before its rows are loaded (the daemon reads the vesting
        # of new committers from the node here, so the batch's prefetch finds it)
        self.before_batch = before_batch
        self.adapter = Adapter(cfg.market_id, cfg.limits, cfg.chain)
        self.batch_blocks, self.batch_ops = batch_blocks, batch_ops
        self.state: State = store.new_state()
        self.applier = Applier(self.state, cfg)
        self.kept = Kept() if keep_rows else None
        # a bad line is keyed by the last block read before it and its rank after that block,
        # so re-reading the same file records it once, however the batches fall
        self._last_seen = 0
        self._bad_since = 0
        self._leading: list[Rejection] = []  # bad lines before this run's first block
        self._claimed = False

    @property
    def checkpoint(self) -> int:
        return self.state.meta.last_block

    def run(self, source: Iterable[dict | Block | BadLine],
            progress: Callable[[Stats], None] | None = None,
            stop: Callable[[], bool] | None = None) -> Stats:
        """Ingest until the source ends (or ``stop()`` says so at a batch boundary)."""
        with fewer_collections():
            return self._run(source, progress, stop)

    def _run(self, source: Iterable[dict | Block | BadLine],
             progress: Callable[[Stats], None] | None,
             stop: Callable[[], bool] | None) -> Stats:
        stats = Stats(last_block=self.checkpoint)
        started = time.perf_counter()
        batch: list[Block] = []
        pending_ops = 0
        hold = self.reversible_blocks  # the last blocks wait for the next batch (see below)
        for raw in source:
            block = self._adapt(raw, batch, stats)
            if block is None:
                continue
            batch.append(block)
            pending_ops += block.n_ops
            if len(batch) >= self.batch_blocks + hold or pending_ops >= self.batch_ops:
                if hold:
                    if len(batch) <= hold:
                        continue
                    self._commit_batch(batch[:-hold], stats, final=False)
                    batch = batch[-hold:]
                    pending_ops = sum(b.n_ops for b in batch)
                else:
                    self._commit_batch(batch, stats)
                    batch, pending_ops = [], 0
                stats.seconds = time.perf_counter() - started
                if progress:
                    progress(stats)
                if stop and stop():
                    if hold:  # stop at this batch's end: the held blocks are read again by
                        batch = []  # the next run (blocks above the checkpoint), their bad
                        last = self.checkpoint  # lines with them
                        self.state.rejections[:] = [r for r in self.state.rejections
                                                    if r.block <= last]
                    break
        self._key_leading(0)
        if batch or self.state.rejections:
            self._commit_batch(batch, stats)
        stats.seconds = time.perf_counter() - started
        return stats

    def _adapt(self, raw: dict | Block | BadLine, batch: list[Block],
               stats: Stats) -> Block | None:
        last = batch[-1].num if batch else self.checkpoint
        try:
            if type(raw) is Block:  # adapted already (read_blocks' fast path)
                block = raw
            elif isinstance(raw, BadLine):
                raise BadBlock(f"{raw.source}:{raw.line_no}: {raw.reason}")
            else:
                block = self.adapter.block(raw)
        except BadBlock as exc:
            stats.bad_lines += 1
            self._bad_since += 1
            bad = Rejection(self._last_seen, -1, self._bad_since, 0, "block", "malformed_block",
                            str(exc)[:200], "")
            if self._last_seen == 0:
                self._leading.append(bad)  # keyed once the first readable block is known
            else:
                self.state.rejections.append(bad)
            return None
        if self._leading:
            self._key_leading(block.num)
        if block.num <= self._last_seen:  # the stream itself went backwards
            stats.bad_lines += 1
            self._bad_since += 1  # keyed by rank like bad lines: two repeats are two rows
            self.state.rejections.append(Rejection(
                self._last_seen, -2, self._bad_since, 0, "block", "out_of_order_block",
                f"block {block.num} after block {self._last_seen}", ""))
            return None
        self._last_seen, self._bad_since = block.num, 0
        if block.num <= last:  # already ingested by an earlier run
            stats.skipped += 1
            return None
        return block

    def _key_leading(self, first: int) -> None:
        """Bad lines ahead of a run's first readable block are keyed *before* that block
        (trx -3): keyed after "block 0" instead, the leading bad line of every resumed chunk
        shared one key and all but the first were dropped. A run with no readable block at
        all keeps the after-block-0 key."""
        for bad in self._leading:
            bad.block, bad.trx = first, (-3 if first else -1)
            self.state.rejections.append(bad)
        self._leading.clear()

    def _commit_batch(self, batch: list[Block], stats: Stats, final: bool = True) -> None:
        """Write ``batch``; with ``reversible_blocks`` (K), so that the state after each of
        the run's last K blocks can be restored at a cost a long replay does not notice.

        A run holds the last K blocks of every batch back for the next one (:meth:`_run`), so
        only the run's final batch (the source ended) ends with K blocks still unwritten (a
        ``stop`` leaves the held blocks to the next run, which reads them again): they are
        written one block per transaction with undo data (``logged``), after the rest in one
        transaction (which forgets older undo data, out of the window from then on). A batch
        before the final one is written in one transaction but for its
        last block, logged on its own: a run killed mid-way can still undo the block its
        checkpoint names. The state after a batch does not depend on where batches end, so
        none of this changes anything but the undo data."""
        k = self.reversible_blocks
        if k <= 0:
            self._commit(batch, stats)
            return
        tail = k if final else 1
        top = self.tip() if final and self.tip is not None and batch else None
        if top is not None:  # only the blocks within K of where the source is going
            tail = max(1, sum(1 for b in batch if b.num > top - k))
        if len(batch) > tail:
            self._commit(batch[:-tail], stats)
        for block in batch[-tail:]:
            self._commit([block], stats, logged=True)
        if not batch:  # only rejections (bad lines after the last block): part of it
            self._commit([], stats, logged=True)

    def _commit(self, batch: list[Block], stats: Stats, logged: bool = False) -> None:
        state = self.state
        if not self._claimed:
            # the database keeps the chain id its reveals were judged with: bound at the first
            # write, refused when it was built on another chain (never a silent mix)
            self.store.claim_chain(self.cfg.chain_id)
            self._claimed = True
        later = []  # bad lines read after this batch's last block (held-back blocks)
        if batch and any(r.block > batch[-1].num for r in state.rejections):
            last = batch[-1].num
            later = [r for r in state.rejections if r.block > last]
            state.rejections[:] = [r for r in state.rejections if r.block <= last]
        if self.before_batch and batch:
            self.before_batch(batch)
        self.store.prefetch(state, batch, self.kept)
        first_new_id = state.meta.next_post_id
        for block in batch:
            self.applier.apply(block)
            stats.blocks += 1
            stats.ops += block.n_ops
            stats.records += len(block.records)
        self.store.flush(state, logged)
        if self.kept is not None:
            self.store.keep(state, self.kept, first_new_id)
        else:
            state.clear_written()
        state.rejections.extend(later)
        stats.last_block = state.meta.last_block
