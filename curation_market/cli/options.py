"""Command-line options shared by the per-area CLI modules (one wording everywhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c",
                                                help="config.toml (defaults if omitted)")]
DbOpt = Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL; default from "
                                           "the config's ingest.db")]
NodesOpt = Annotated[list[str] | None, typer.Option(
    "--node", help="node URL; repeat for failover (default: the config's node.urls)")]
