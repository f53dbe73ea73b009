"""``curation-market serve`` (the HTTP API and page) and ``db upgrade`` (Alembic migrations)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

db_app = typer.Typer(help="Database schema: Alembic migrations.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command()(serve)
    app.add_typer(db_app, name="db")


def _url(db: str | None, config: Path | None) -> tuple[str, object]:
    from service.cli import settings_from

    settings = settings_from(config)
    return db or settings.ingest.db, settings


def serve(
    db: Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL; default from config "
                                           "[ingest] db")] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free)")] = 8000,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    config: Annotated[Path | None, typer.Option("--config", "-c", help="config.toml (market "
                                                "windows for the phases)")] = None,
    statement_timeout: Annotated[float, typer.Option(min=0.01, help="seconds per SQL "
                                                     "statement")] = 5.0,
) -> None:
    """Serve the read-only HTTP API (/api/..., schema at /openapi.json) and the page at /."""
    import uvicorn

    from service.api import app_from_url

    url, settings = _url(db, config)
    app = app_from_url(url, settings.market_config(), statement_timeout)  # type: ignore[attr-defined]
    typer.echo(f"serving {url} on http://{host}:{port}/ (schema: /openapi.json)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@db_app.command("upgrade")
def upgrade(
    db: Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL; default from config "
                                           "[ingest] db")] = None,
    revision: Annotated[str, typer.Option(help="target revision")] = "head",
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
) -> None:
    """Bring the database schema to the latest (or given) migration."""
    from service.migrations import upgrade as do_upgrade

    url, _ = _url(db, config)
    before, after = do_upgrade(url, revision)
    typer.echo(f"{url}: {before or 'empty'} → {after}")
