"""Alembic migrations for the tables of :mod:`indexer.schema`, configured in code (no
alembic.ini to ship or find): the one authority on the schema. ``curation-market db upgrade``
calls :func:`upgrade`; :class:`indexer.store.Store` calls :func:`migrate` on its own
connection (so an in-memory SQLite database, which lives in that connection, is migrated
too), never ``create_all``.

A database created before migrations existed (``replay`` made its tables with ``create_all``)
has the tables but no ``alembic_version``: it is stamped at the newest revision whose tables it
already has (see ``ADOPT``), then upgraded.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, create_engine, inspect

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).parent
# (a table the revision created, revision), newest first: how far a create_all database is
ADOPT = [("api_curator_totals", "0007"), ("market_settings", "0006"), ("undo_blocks", "0005"),
         ("account_snapshots", "0004"), ("vesting_prices", "0003"), ("node_status", "0002"),
         ("meta", "0001")]


def head() -> str:
    """The newest revision shipped: ADOPT's first (tests/test_migrations.py checks that it is
    Alembic's head). Known without importing Alembic (a quarter of a second of CPU), so a
    command that opens a database already at the head never imports it."""
    return ADOPT[0][1]


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """``connection``: env.py runs the migrations on it (inside the caller's transaction)
    instead of opening its own engine from ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def script_head() -> str | None:
    """The head as Alembic reads it from the scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def revision_of(conn: Connection) -> str | None:
    """The revision stamped in ``alembic_version`` (None: no such table, or no row); plain
    SQL, as Alembic reads it."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def adoptable_of(conn: Connection) -> str | None:
    """The revision a database made by ``create_all`` (tables, no ``alembic_version``)
    matches; None for an empty database or one that migrations already manage."""
    if revision_of(conn) is not None:
        return None
    tables = set(inspect(conn).get_table_names())
    return next((rev for table, rev in ADOPT if table in tables), None)


def migrate(conn: Connection, revision: str = "head", *, replay_fresh: bool = True
            ) -> tuple[str | None, str | None]:
    """Bring the database behind ``conn`` to ``revision`` (adopting a create_all one first);
    the revisions before and after. The caller commits. A database already at the head costs
    one query.

    ``replay_fresh``: an empty SQLite database taken to the head gets the DDL that these
    migrations produced once in this process (:func:`_sqlite_head`), replayed statement by
    statement: the same schema, byte for byte in ``sqlite_master``, for the cost of
    ``create_all`` instead of Alembic's (tests make hundreds of in-memory stores).
    """
    before = revision_of(conn)
    target = head() if revision == "head" else revision
    if before is not None and before == target:
        return before, before
    if before is None and replay_fresh and target == head() and conn.dialect.name == "sqlite" \
            and not inspect(conn).get_table_names():
        for sql in _sqlite_head():
            conn.exec_driver_sql(sql)
        return None, target
    from alembic import command

    cfg = alembic_config(connection=conn)
    if before is None:
        made = adoptable_of(conn)
        if made:
            command.stamp(cfg, made)
    command.upgrade(cfg, revision)
    return before, revision_of(conn)


@cache
def _sqlite_head() -> tuple[str, ...]:
    """The statements that make an empty SQLite database what the migrations make of it:
    the migrations run once on a private in-memory database, then its ``sqlite_master`` (in
    creation order) and its ``alembic_version`` row are read back."""
    engine = create_engine("sqlite://")
    try:
        with engine.begin() as conn:
            migrate(conn, replay_fresh=False)
            ddl = [sql for name, sql in conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")
                if not name.startswith("sqlite_")]
            rows = [r for (r,) in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]
    finally:
        engine.dispose()
    if len(rows) != 1 or not rows[0].isalnum():  # a revision id, quoted below as it is
        raise RuntimeError(f"unexpected alembic_version after the migrations: {rows}")
    return (*ddl, f"INSERT INTO alembic_version (version_num) VALUES ('{rows[0]}')")


def current(url: str) -> str | None:
    """:func:`revision_of` for a URL."""
    return _on_url(url, revision_of)


def adoptable(url: str) -> str | None:
    """:func:`adoptable_of` for a URL."""
    return _on_url(url, adoptable_of)


def _on_url(url: str, read: Callable[[Connection], str | None]) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return read(conn)
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade ``url`` to ``revision``; returns the revisions before and after."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:  # the migrations themselves: no replayed DDL
            return migrate(conn, revision, replay_fresh=False)
    finally:
        engine.dispose()
