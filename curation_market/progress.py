"""The daemon's catch-up, told batch by batch (like hivemind's ``hive sync``).

Called from the daemon's progress callback after each committed batch: the blocks it held,
blocks/s and ops/s over that batch, where it stands against the last irreversible block and
the time left at the recent pace. On a terminal this is a ``rich`` bar (the log lines of the
daemon print above it); anywhere else one INFO line per batch, which is what a service
manager's journal keeps.
"""

from __future__ import annotations

import atexit
import logging
import sys
from typing import Any

from indexer.ingest import Stats

log = logging.getLogger("curation.daemon")


def eta(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 1:
        return "<1s"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s" if m else f"{s}s"


class BatchLog:
    def __init__(self, terminal: bool | None = None):
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self._last: tuple[int, int, float] | None = None  # blocks, ops, seconds of the run
        self._pace = 0.0  # blocks/s, smoothed over batches (for the ETA)
        self._first_block: int | None = None
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, stats: Stats, lib: int | None) -> None:
        last = self._last
        if last is None or stats.blocks < last[0]:  # a new follow run starts from zero
            last = (0, 0, 0.0)
        blocks, ops = stats.blocks - last[0], stats.ops - last[1]
        took = max(stats.seconds - last[2], 1e-6)
        self._last = (stats.blocks, stats.ops, stats.seconds)
        bps, ops_s = blocks / took, ops / took
        self._pace = bps if not self._pace else 0.7 * self._pace + 0.3 * bps
        left = max(0, lib - stats.last_block) if lib is not None else None
        remaining = left / self._pace if left is not None and self._pace > 0 else None
        if self._first_block is None:
            self._first_block = stats.last_block - blocks
        if self.terminal:
            self._draw(stats, lib, bps, ops_s)
            return
        where = (f"block {stats.last_block:,} of LIB {lib:,}, {left:,} to go, ETA "
                 f"{eta(remaining)}" if lib is not None else f"block {stats.last_block:,}")
        log.info("batch of %s blocks (to %s): %s blocks/s, %s ops/s; %s", f"{blocks:,}",
                 f"{stats.last_block:,}", f"{bps:,.0f}", f"{ops_s:,.0f}", where)

    def _draw(self, stats: Stats, lib: int | None, bps: float, ops_s: float) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        start = self._first_block or 0
        total = max(1, (lib or stats.last_block) - start)
        done = min(total, stats.last_block - start)
        if self._bar is None:
            self._bar = Progress(TextColumn("[bold]catch-up"), BarColumn(bar_width=None),
                                 TaskProgressColumn(), TextColumn(
                                     "block {task.fields[block]:,} of {task.fields[lib]:,} · "
                                     "{task.fields[bps]:,.0f} blocks/s · "
                                     "{task.fields[ops]:,.0f} ops/s"),
                                 TimeRemainingColumn(), console=Console(stderr=True),
                                 transient=True)
            self._task = self._bar.add_task("catch-up", total=total, block=0, lib=0, bps=0.0,
                                            ops=0.0)
            self._bar.start()
            atexit.register(self.close)
        self._bar.update(self._task, total=total, completed=done, block=stats.last_block,
                         lib=lib or stats.last_block, bps=bps, ops=ops_s)
        if lib is not None and stats.last_block >= lib:
            self.close()
            log.info("caught up with the LIB at block %s", f"{stats.last_block:,}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            self._first_block = None
