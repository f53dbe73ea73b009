"""Alembic migrations for the tables of :mod:`indexer.schema`, configured in code (no
alembic.ini to ship or find): ``curation-market db upgrade`` calls :func:`upgrade`.

A database created before migrations existed (``replay`` makes its tables with
``create_all``) has the tables but no ``alembic_version``: it is stamped at the newest
revision whose tables it already has (see ``ADOPT``), then upgraded.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

HERE = Path(__file__).parent
# (a table the revision created, revision), newest first: how far a create_all database is
ADOPT = [("account_snapshots", "0004"), ("vesting_prices", "0003"), ("node_status", "0002"),
         ("meta", "0001")]


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def current(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def adoptable(url: str) -> str | None:
    """The revision a database made by ``create_all`` (tables, no ``alembic_version``)
    matches; None for an empty database or one that migrations already manage."""
    if current(url) is not None:
        return None
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    return next((rev for table, rev in ADOPT if table in tables), None)


def upgrade(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade ``url`` to ``revision``; returns the revisions before and after."""
    cfg = alembic_config(url)
    before = current(url)
    if before is None:
        # made by create_all before migrations: adopt it at the revision it matches
        made = adoptable(url)
        if made:
            command.stamp(cfg, made)
    command.upgrade(cfg, revision)
    return before, current(url)
