"""``curation-market run`` (the daemon beside a node), ``curation-market status`` (what it
wrote, read on a read-only connection) and ``curation-market rewind`` (back to an earlier block
of the undo window)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from curation_market.cli.common import ConfigOpt as Config
from curation_market.cli.common import DbOpt as Db
from curation_market.cli.common import NodesOpt as Nodes
from curation_market.cli.common import (
    check_format,
    err,
    fail,
    open_as_built,
    open_reader,
    open_store,
    settings_from,
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command()(run)
    app.command()(status)
    app.command()(rewind)


def run(
    node: Nodes = None,
    config: Config = None,
    db: Db = None,
    metrics_port: Annotated[int | None, typer.Option(
        help="serve Prometheus metrics on this port (0: a free one, printed)")] = None,
    head_mode: Annotated[bool | None, typer.Option(
        "--head-mode/--irreversible",
        help="also show provisional data of reversible blocks")] = None,
    until: Annotated[int | None, typer.Option(
        help="stop once this block is indexed (tests, benchmarks)")] = None,
    from_block: Annotated[int | None, typer.Option(
        help="fresh database: index from this block (default: the config's node.start_block;"
             " 0: the first block the node serves)")] = None,
) -> None:
    """Follow a node: catch up, then index every block as it becomes irreversible."""
    from curation_market import logs
    from curation_market.config import ConfigError
    from curation_market.daemon.run import Daemon

    if not logging.getLogger().handlers:  # called without the app's callback (a library)
        logs.setup()
    settings = settings_from(config)
    urls = node or settings.node.urls
    if not urls:
        raise fail("no node: give --node URL or set [node] urls in the config")
    store = open_store(settings, db)  # checks the database before anything starts
    daemon = Daemon(settings, urls, store.engine, head_mode, metrics_port, until,
                    from_block)
    # a node that fails is exit 1 (docs/node.md): worth a restart, unlike a bad option (2)
    try:
        code = daemon.run()
    except Exception as exc:  # noqa: BLE001 - node unreachable at start, said plainly
        raise fail(logs.with_cause(str(exc)), 1) from None
    if code:
        # a config that disagrees with the node (its chain id) is fixed by the operator,
        # not by a restart: exit 2 like any bad option
        bad_config = isinstance(daemon.error, ConfigError)
        raise fail(logs.with_cause(str(daemon.error)), 2 if bad_config else 1)
    err.print(f"stopped at block {daemon.ingester.checkpoint:,}")


def rewind(
    to: Annotated[int, typer.Option("--to", help="the block whose state to restore", min=0)],
    config: Config = None,
    db: Db = None,
    force: Annotated[bool, typer.Option(
        "--force", help="rewind even though the daemon's status row is fresh")] = False,
) -> None:
    """Put the database back to the state right after block TO (a wrong or forked block
    above it), in one transaction; the daemon then resumes at TO + 1. Stop the daemon first.
    Only the last reversible_blocks blocks (the config's ingest section) can be rewound."""
    from curation_market.daemon.status import status as read_status
    from indexer.store import RewindRefused

    settings = settings_from(config)
    store = open_as_built(settings, db)
    doc = read_status(store.engine, None, settings.node.health_seconds)
    if doc.get("daemon") == "running" and not force:
        # its state in memory would be written over the rewound one at its next batch
        raise fail(f"the daemon looks running (its status row is {doc['status_age_seconds']}"
                   f" s old, fresh for {doc['status_stale_after_seconds']} s): stop it first "
                   "and wait that long, or --force")
    try:
        done = store.rewind(to)
    except RewindRefused as exc:
        raise fail(str(exc)) from None
    if done.checkpoint == to:
        err.print(f"already at block {to:,}: nothing to rewind"
                  + (f" ({done.undone:,} rows written for the next block undone)"
                     if done.undone else ""))
        return
    err.print(f"rewound from block {done.checkpoint:,} to block {to:,} "
              f"({done.checkpoint - to:,} blocks, {done.undone:,} rows restored)")


def status(
    node: Annotated[str | None, typer.Option(
        "--node", help="ask this node for its head and LIB now")] = None,
    config: Config = None,
    db: Db = None,
    fmt: Annotated[str, typer.Option("--format", help="text | json")] = "text",
) -> None:
    """Indexed block, last irreversible block, lag in blocks and seconds, ops/s."""
    import orjson

    from curation_market.daemon.status import status as read_status
    from indexer.chain import ChainError, NodeClient

    check_format(fmt, "text", "json")
    settings = settings_from(config)
    engine = open_reader(settings, db)
    client = None
    if node:
        n = settings.node
        client = NodeClient([node], n.timeout_seconds, 1, 0)
    try:
        doc = read_status(engine, client, settings.node.health_seconds)
    except ChainError as exc:
        from curation_market.logs import with_cause

        raise fail(with_cause(str(exc)), 1) from None
    if fmt == "json":
        typer.echo(orjson.dumps(doc).decode())
        return
    for label, text in status_lines(doc):
        typer.echo(f"{label:<24} {text}")


def _ago(seconds: int) -> str:
    """``4h 2m``, ``5m 3s``, ``12s``: an age a person reads at a glance."""
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    parts = [(d, "d"), (h, "h"), (m, "m"), (sec, "s")]
    shown = [f"{v}{u}" for v, u in parts if v][:2]
    return " ".join(shown) or "0s"


def status_lines(doc: dict) -> list[tuple[str, str]]:
    """The text form of ``status``: the daemon's state first, then the figures."""
    from curation.chaintime import format_time

    lines: list[tuple[str, str]] = []
    if "daemon" in doc:
        age = doc["status_age_seconds"]
        if doc["daemon"] == "running":
            state = f"running (status written {_ago(age)} ago)"
        else:
            state = (f"not running: its last status was written {_ago(age)} ago, over "
                     f"{_ago(doc['status_stale_after_seconds'])} (3 health intervals)")
        lines.append(("daemon", state))
        chain = f"head {doc['status_head_block']:,} at {format_time(doc['status_head_time'])}"
        if "status_age_blocks" in doc:
            chain += (f"; the chain moved {doc['status_age_blocks']:,} blocks "
                      f"({_ago(doc['status_age_chain_seconds'])} chain time) since")
        lines.append(("last status", f"{doc['status_written']} (wall clock); {chain}"))
    labels = [("indexed_block", "indexed block"), ("irreversible_block",
                                                    "last irreversible block"),
              ("head_block", "head block"), ("lag_blocks", "lag (blocks)"),
              ("lag_seconds", "lag (seconds)"), ("ops_per_second", "ops/s"),
              ("blocks_per_second", "blocks/s"), ("node", "node"),
              ("metrics_port", "metrics port"), ("provisional", "provisional (head mode)")]
    for key, label in labels:
        if key in doc and doc[key] not in (None, {}):
            value = doc[key]
            text = f"{value:,}" if isinstance(value, int) and key != "metrics_port" \
                else str(value)
            last = doc.get(f"last_{key}")
            if last is not None:
                text += f" (not running; {last} when last seen)"
            lines.append((label, text))
    return lines
