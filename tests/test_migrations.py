"""Alembic migrations against the models: ``db upgrade`` to head on an empty database, then
``compare_metadata`` must find no difference from whatever indexer/schema.py holds now (so a
table added to the models without a revision fails here). SQLite always; PostgreSQL when
CURATION_TEST_PG_URL is set (see tests/conftest.py)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from curation_market.migrations import current, upgrade
from indexer import schema as t
from indexer.store import Store


def _diff(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), t.metadata)
    finally:
        engine.dispose()


def test_upgrade_head_matches_the_models(db_url) -> None:
    url = db_url("migrated")
    before, after = upgrade(url)
    assert before is None and after is not None
    assert _diff(url) == []
    assert upgrade(url) == (after, after)  # a second upgrade is a no-op


def test_a_store_works_on_a_migrated_database(db_url) -> None:
    url = db_url("migrated")
    upgrade(url)
    store = Store(create_engine(url))
    assert store.new_state().meta.last_block == 0


def test_a_database_made_before_migrations_is_adopted(db_url) -> None:
    url = db_url("legacy")
    Store(create_engine(url))  # create_all, no alembic_version
    assert current(url) is None
    _, after = upgrade(url)
    assert after is not None and _diff(url) == []
    assert "alembic_version" in inspect(create_engine(url)).get_table_names()


def test_the_check_sees_a_table_without_a_revision(tmp_path) -> None:
    from sqlalchemy import Column, Integer, MetaData, Table

    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    more = MetaData()
    for table in t.metadata.sorted_tables:
        table.to_metadata(more)
    Table("not_migrated", more, Column("id", Integer, primary_key=True))
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), more)
    assert [d[0] for d in diff] == ["add_table"] and diff[0][1].name == "not_migrated"
