"""Subcommands of ``curation-market`` for this area, registered by :mod:`service.cli`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
