"""``curation-market serve`` (the HTTP API and page) and ``db upgrade`` (Alembic migrations).

``serve`` reads only: it refuses a database that is missing or not a curation-market one (as
``report`` does, :func:`.common.open_reader`) and hands the API a read-only URL (a SQLite file
opened ``mode=ro``; the API's engine makes PostgreSQL sessions read-only itself)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy import Engine

from curation_market.cli.common import (
    ConfigOpt,
    DbOpt,
    db_error,
    fail,
    open_reader,
    readonly_url,
    safe_url,
    settings_from,
)
from curation_market.config import Settings

if TYPE_CHECKING:
    from curation_market.api.client import ClientSettings

db_app = typer.Typer(help="Database schema: Alembic migrations.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command()(serve)
    app.add_typer(db_app, name="db")


def _url(db: str | None, config: Path | None) -> tuple[str, Settings]:
    settings = settings_from(config)
    return db or settings.ingest.db, settings


def check_windows(engine: Engine, url: str) -> None:
    """Refuse (exit 2) a database with indexed blocks but no recorded windows (built before
    migration 0006, no writer since): the phases and seals it serves are judged by the
    windows it was built with, never by this server's config or the defaults."""
    from indexer.readmodel import market_windows, meta_row

    try:
        with engine.connect() as conn:
            row, found = meta_row(conn), market_windows(conn)
    finally:
        engine.dispose()
    if found is None and row is not None and row["last_block"]:
        raise fail(f"{safe_url(url)} records no market windows (indexed before they were "
                   "kept): resume its writer once (`curation-market run` or `replay` with the "
                   "config it was built with) to record them")


def serve(
    db: DbOpt = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free)")] = 8000,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    config: Annotated[Path | None, typer.Option("--config", "-c", help="config.toml (chain "
                                                "name, rules' author window; the market "
                                                "windows are the database's)")] = None,
    statement_timeout: Annotated[float, typer.Option(min=0.01, help="seconds per SQL "
                                                     "statement")] = 5.0,
    max_active: Annotated[int, typer.Option(
        min=1, max=32, help="API requests served at once (also the database pool's size)")]
    = 16,
    max_queue: Annotated[int, typer.Option(
        min=0, max=100_000, help="API requests waiting beyond those; more get 503 with "
                                 "Retry-After")] = 256,
    queue_timeout: Annotated[float, typer.Option(
        min=0.0, help="seconds a request may wait for its turn before a 503")] = 10.0,
    node_url: Annotated[str | None, typer.Option(
        help="JSON-RPC node the page broadcasts curators' signed ops to (overrides "
             "[serve] node_url; it must answer CORS)")] = None,
    cache_entries: Annotated[int, typer.Option(
        min=0, help="answers kept per process by block (ETag); 0: every request runs")]
    = 4096,
    workers: Annotated[int, typer.Option(
        min=1, max=64, help="server processes sharing the port (each with its own "
                            "read-only connections, admission and cache)")] = 1,
) -> None:
    """Serve the read-only HTTP API (/api/..., schema at /openapi.json, docs at /docs) and the
    page at /. Each request is logged (method, path, status, milliseconds)."""
    import logging

    import uvicorn

    from curation_market import logs
    from curation_market.api.app import Limits, app_from_url

    if not logging.getLogger().handlers:  # called without the app's callback (a library)
        logs.setup()
    url, settings = _url(db, config)
    check_windows(open_reader(settings, url, check_rules=False), url)
    limits = Limits(max_active, max_queue, queue_timeout)
    currency = "HBD" if settings.chain.name == "hive" else "SBD"
    if node_url is not None and not node_url.startswith(("http://", "https://")):
        raise typer.BadParameter("expected an http:// or https:// URL", param_hint="--node-url")
    app = app_from_url(readonly_url(url), settings.market_config(),
                       statement_timeout, limits, currency, page_settings(settings, node_url),
                       cache_entries)
    # Bind first so that the line below names the real port (with --port 0 the kernel picks).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = listening_socket(family)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise typer.BadParameter(f"cannot listen on {host}:{port}: {exc.strerror}",
                                 param_hint="--host/--port") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    typer.echo(f"serving {safe_url(url)} on http://{shown}:{bound}/ (schema: /openapi.json)",
               err=True)
    # our own request log (curation.api) replaces uvicorn's access log: it also says how long
    # each request took and when one was shed; uvicorn's own lines follow -v like beem's
    if workers == 1:
        uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False,
                                      timeout_graceful_shutdown=5)).run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    # the workers are spawned: each builds the same app from what this process checked
    os.environ[WORKER_ENV] = json.dumps({
        "url": readonly_url(url), "config": str(config) if config else None,
        "statement_timeout": statement_timeout, "currency": currency,
        "cache_entries": cache_entries, "node_url": node_url,
        "limits": [max_active, max_queue, queue_timeout]})
    Multiprocess(uvicorn.Config(f"{__name__}:worker_app", factory=True, workers=workers,
                                log_config=None, access_log=False,
                                timeout_graceful_shutdown=5), sockets=[sock]).run()


WORKER_ENV = "CURATION_MARKET_SERVE_WORKER"


def worker_app() -> object:
    """The app of one ``serve --workers N`` process (uvicorn's factory, in the child)."""
    from curation_market import logs
    from curation_market.api.app import Limits, app_from_url

    given = json.loads(os.environ[WORKER_ENV])
    logs.setup()
    settings = settings_from(Path(given["config"]) if given["config"] else None)
    return app_from_url(given["url"], settings.market_config(), given["statement_timeout"],
                        Limits(*given["limits"]), given["currency"],
                        page_settings(settings, given["node_url"]), given["cache_entries"])


def listening_socket(family: socket.AddressFamily) -> socket.socket:
    """A TCP socket whose accepted connections send at once (``TCP_NODELAY``).

    asyncio turns Nagle's algorithm off only on sockets whose ``proto`` is ``IPPROTO_TCP``
    (``base_events._set_nodelay``), and a socket made as ``socket(family, SOCK_STREAM)`` says
    0, as do the connections it accepts. uvicorn writes a response's head and body in two
    sends, so on a kept-alive connection the body waited for the client's delayed ACK of the
    head: 44 ms per request (a fresh connection is in quick-ACK mode: 5 ms). Measured with
    ``benchmarks/load_api.py --keepalive``."""
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def page_settings(settings: Settings, node_url: str | None = None) -> ClientSettings:
    """What the page is told (``/api/client-config``): the node it broadcasts to (the option,
    else ``[serve] node_url``) and the staked rule set, whose dialog asks for stake and bid."""
    from curation_market.api.client import ClientSettings

    staked = settings.staked_rules()
    return ClientSettings(chain=settings.chain.name, node_url=node_url or settings.serve.node_url,
                          staked=staked[0] if staked else None)


@db_app.command("upgrade")
def upgrade(
    db: DbOpt = None,
    revision: Annotated[str, typer.Option(help="target revision")] = "head",
    config: ConfigOpt = None,
) -> None:
    """Bring the database schema to the latest (or given) migration."""
    from indexer.migrations import adoptable, current
    from indexer.migrations import upgrade as do_upgrade

    url, _ = _url(db, config)
    try:
        found = current(url)
        adopted = adoptable(url) if found is None else None
        before, after = do_upgrade(url, revision)
    except Exception as exc:  # noqa: BLE001 - no server, bad credentials, not a database
        raise fail(f"cannot upgrade {safe_url(url)}: {db_error(exc)}") from None
    if found is not None:
        what = f"at revision {found}" + (", nothing to do" if found == after else
                                         f" → {after}")
    elif adopted is not None:  # say what was really there: tables, and no migration record
        what = (f"tables made by create_all (replay/demo), no migration record: adopted at "
                f"revision {adopted}" + ("" if adopted == after else f" → {after}"))
    else:
        what = f"empty database → {after}"
    typer.echo(f"{safe_url(url)}: {what}")
