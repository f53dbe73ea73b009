"""The daemon's lifecycle: start, schedule the jobs, stop at a batch boundary.

:func:`start` binds the chain and starts the fetcher; :func:`run` then hands the jobs of
:mod:`curation_market.daemon.jobs` to APScheduler (one background thread each, ``coalesce``,
``max_instances=1``: never two runs of one job at once) until a signal, ``until`` or a fatal
error stops it; :func:`finish` stops the fetcher and writes the last status row. A kill at
any moment loses at most the batch in flight; the next start resumes from the checkpoint.
SIGTERM/SIGINT stop at a batch boundary.

:class:`Daemon` is the same as one object, for callers that only run it (the CLI).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine

from curation.chains import ChainProfile
from curation_market.config import Settings
from curation_market.daemon.context import Context, new_fetcher, new_ingester
from curation_market.daemon.forks import rewind_to_fork
from curation_market.daemon.jobs import follow, health, sweep, upkeep
from curation_market.daemon.snapshots import repair_snapshots
from curation_market.daemon.status import publish_progress

log = logging.getLogger("curation.daemon")
# "skipped: maximum number of running instances" is the normal case for a follow run longer
# than the poll interval, not news
logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)


def adopt_chain(ctx: Context) -> ChainProfile:
    """Ask the node which chain it follows; a configured chain.name or chain.chain_id that
    contradicts it, or a database built on another chain, is refused (ConfigError /
    ValueError) before anything is fetched. The market then hashes with the node's id."""
    profile = ctx.settings.chain.against(ctx.client.profile(), ctx.client.url)
    ctx.store.claim_chain(profile.chain_id)
    if (ctx.cfg.chain_id, ctx.cfg.chain) != (profile.chain_id, profile.name):
        ctx.cfg = replace(ctx.cfg, chain_id=profile.chain_id, chain=profile.name)
        ctx.ingester = new_ingester(ctx)
    log.info("node %s follows %s (chain id %s, hardfork %s)", ctx.client.url,
             profile.name, profile.chain_id, profile.hardfork_version)
    ctx.profile = profile
    return profile


def start_block(ctx: Context) -> int:
    """Where to fetch from: after the checkpoint; on a fresh database ``from_block``, or
    else the lowest block the node serves (a full node: 1; the test node: its slice)."""
    checkpoint = ctx.ingester.checkpoint
    if checkpoint:
        if ctx.from_block and ctx.from_block > checkpoint + 1:
            log.warning("--from-block %d ignored: the database resumes at block %d",
                        ctx.from_block, checkpoint + 1)
        return checkpoint + 1
    if ctx.from_block:
        log.info("fresh database: starting at block %d (from_block)", ctx.from_block)
        return ctx.from_block
    if ctx.node is None:
        ctx.node = ctx.client.state()
    first = ctx.client.first_block(ctx.node.irreversible)
    log.info("fresh database: starting at block %d, the first the node serves", first)
    return first


def start(ctx: Context) -> None:
    """Everything before the first job: the chain bound, metrics served, a stored block the
    node disagrees with rewound (:mod:`.forks`), the node's VESTS price recorded, old account
    rows repaired, the fetcher started, a first health check. Raises ValueError
    (ConfigError) when the config or the database contradicts the node."""
    adopt_chain(ctx)
    if ctx.serve_metrics:
        ctx.metrics_port = ctx.metrics.serve(ctx.metrics_port)
        log.info("metrics on http://127.0.0.1:%d/metrics", ctx.metrics_port)
    ctx.node = ctx.client.state()
    rewind_to_fork(ctx)  # a stored block the node disagrees with: back to where they agree
    ctx.store.set_globals(ctx.node.total_vesting_fund, ctx.node.total_vesting_shares)
    ctx.store.add_globals(ctx.node.head, ctx.node.total_vesting_fund,
                          ctx.node.total_vesting_shares)
    repair_snapshots(ctx)
    # the ingester's state was read before: on a fresh database it holds no globals, and
    # every commit's Steem Power would count as unknown (0) until a restart
    ctx.ingester.state.globals = ctx.store.new_state().globals
    ctx.rolling.add(0, 0)
    ctx.fetcher = new_fetcher(ctx, start_block(ctx))
    health(ctx)


def finish(ctx: Context) -> None:
    """Stop the fetcher, write the last status row (no node call: a node that is down would
    delay the stop), free the metrics port. Call once the jobs have stopped."""
    if ctx.fetcher is not None:
        ctx.fetcher.stop()
    publish_progress(ctx)
    ctx.metrics.stop()


@contextmanager
def started(ctx: Context) -> Iterator[Context]:
    """``start`` … ``finish`` around a block that calls the jobs itself (tests, tools)."""
    start(ctx)
    try:
        yield ctx
    finally:
        ctx.stopping.set()
        finish(ctx)


def guard(ctx: Context, job: Callable[[Context], Any]) -> Callable[[], None]:
    """``job`` as the scheduler calls it: skipped once stopping; an exception is fatal,
    kept in ``ctx.error`` and stops the daemon (said once, by :func:`run`)."""
    def call() -> None:
        if ctx.stopping.is_set():
            return
        try:
            job(ctx)
        except Exception as exc:  # noqa: BLE001 - a fatal error stops the daemon, said once
            ctx.error = exc
            ctx.stopping.set()
    call.__name__ = job.__name__
    return call


def run(ctx: Context) -> int:
    """Run until stopped (signal, ``until`` reached, or a fatal error); the exit code."""
    from apscheduler.schedulers.background import BackgroundScheduler

    n = ctx.settings.node
    try:
        start(ctx)
    except Exception as exc:
        if ctx.fetcher is not None:
            ctx.fetcher.stop()
        ctx.metrics.stop()
        if not isinstance(exc, ValueError):  # e.g. the node unreachable: the caller says it
            raise
        ctx.error = exc  # the config contradicts the node, or the db another chain
        log.error("stopped: %s", exc)
        return 1
    sched = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1,
                                              "misfire_grace_time": None})
    for job, seconds in ((follow, min(n.poll_seconds, 1.0)), (sweep, n.sweep_seconds),
                         (upkeep, n.upkeep_seconds), (health, n.health_seconds)):
        sched.add_job(guard(ctx, job), "interval", seconds=seconds, id=job.__name__)
    restore = _install_signals(ctx)
    sched.start()
    try:
        while not ctx.stopping.wait(0.2):
            pass
    finally:
        if ctx.fetcher is not None:
            ctx.fetcher.stop()
        sched.shutdown(wait=True)  # a follow run in progress ends at its batch boundary
        finish(ctx)
        restore()
    if ctx.error is not None:
        log.error("stopped: %s", ctx.error)
        return 1
    return 0


def _install_signals(ctx: Context) -> Callable[[], None]:
    """SIGTERM/SIGINT stop at a batch boundary; returns what puts the old handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {sig: signal.signal(sig, ctx.stop) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return restore


class Daemon:
    """The daemon as one object: ``Daemon(...).run()``. Its attributes are the context's
    (``daemon.error``, ``daemon.ingester``, …); the jobs take ``daemon.ctx``."""

    def __init__(self, settings: Settings, urls: Sequence[str], engine: Engine,
                 head_mode: bool | None = None, metrics_port: int | None = None,
                 until: int | None = None, from_block: int | None = None):
        self.ctx = Context.create(settings, urls, engine, head_mode, metrics_port, until,
                                  from_block)

    def run(self) -> int:
        return run(self.ctx)

    def stop(self, *_: object) -> None:
        self.ctx.stop()

    def __getattr__(self, name: str) -> Any:
        if name == "ctx":  # not set yet: no recursion
            raise AttributeError(name)
        return getattr(self.ctx, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "ctx":
            object.__setattr__(self, name, value)
        else:
            setattr(self.ctx, name, value)
