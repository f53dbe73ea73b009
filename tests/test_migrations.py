"""Alembic migrations against the models: ``db upgrade`` to head on an empty database, then
``compare_metadata`` must find no difference from whatever indexer/schema.py holds now (so a
table added to the models without a revision fails here). The Store makes its schema through
the same migrations (no create_all): a database it made and one ``db upgrade`` made are the
same. SQLite always; PostgreSQL when CURATION_TEST_PG_URL is set (see tests/conftest.py)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect

from indexer import schema as t
from indexer.migrations import current, head, script_head, upgrade
from indexer.store import Store


def _diff(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), t.metadata)
    finally:
        engine.dispose()


def test_the_known_head_is_alembics() -> None:
    """``head()`` (ADOPT's newest entry, read without importing Alembic) must name the newest
    script: a new revision needs its ADOPT line."""
    assert head() == script_head()


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


def _legacy(url: str) -> None:
    """A database as ``replay`` made them before migrations: create_all, a meta row, no
    alembic_version."""
    engine = create_engine(url)
    t.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(t.meta.insert().values(
            id=1, last_block=7, last_block_id="", last_time=0, next_post_id=1,
            total_vesting_fund=0, total_vesting_shares=0, chain_id="", rules="seed"))
    engine.dispose()
    assert current(url) is None


def test_a_database_made_before_migrations_is_adopted(db_url) -> None:
    url = db_url("legacy")
    _legacy(url)
    _, after = upgrade(url)
    assert after == head() and _diff(url) == []
    assert "alembic_version" in inspect(create_engine(url)).get_table_names()


def test_the_store_adopts_a_database_made_before_migrations(db_url) -> None:
    url = db_url("legacy")
    _legacy(url)
    store = Store(create_engine(url))
    assert current(url) == head() and _diff(url) == []
    assert store.new_state().meta.last_block == 7  # its rows kept


def test_the_store_upgrades_an_older_revision(db_url) -> None:
    url = db_url("old")
    assert upgrade(url, "0002") == (None, "0002")
    Store(create_engine(url))
    assert current(url) == head() and _diff(url) == []


def _schema(engine: Engine) -> dict:
    """Tables, columns (name, type, nullability, default), keys and indexes, as the database
    reports them."""
    insp = inspect(engine)
    out = {}
    for name in sorted(insp.get_table_names()):
        out[name] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], c.get("default"))
                        for c in insp.get_columns(name)],
            "pk": insp.get_pk_constraint(name)["constrained_columns"],
            "fks": sorted(str(sorted(fk.items())) for fk in insp.get_foreign_keys(name)),
            "unique": sorted(str(sorted(u.items())) for u in insp.get_unique_constraints(name)),
            "indexes": sorted(str(sorted(i.items())) for i in insp.get_indexes(name)),
        }
    return out


def test_the_store_makes_the_schema_db_upgrade_makes(db_url) -> None:
    by_upgrade, by_store = db_url("upgraded"), db_url("stored")
    upgrade(by_upgrade)
    Store(create_engine(by_store))
    a, b = create_engine(by_upgrade), create_engine(by_store)
    assert set(_schema(a)) == {tb.name for tb in t.metadata.sorted_tables} | {"alembic_version"}
    assert _schema(a) == _schema(b)
    assert current(by_store) == current(by_upgrade) == head()
    if a.dialect.name == "sqlite":  # the Store replays the migrations' DDL: the very same text
        q = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        with a.connect() as ca, b.connect() as cb:
            assert ca.exec_driver_sql(q).all() == cb.exec_driver_sql(q).all()
    assert _diff(by_store) == []


def test_an_in_memory_store_is_migrated() -> None:
    """The migrations run on the Store's own connection: an in-memory database (which lives in
    that connection) gets the tables and the revision."""
    engine = create_engine("sqlite://")
    Store(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == head()
    assert {tb.name for tb in t.metadata.sorted_tables} <= set(inspect(engine).get_table_names())


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


def test_opening_a_database_at_the_head_does_not_import_alembic(tmp_path) -> None:
    """Every CLI process opens its database: at the head that costs one query, not Alembic's
    import (~0.1 s idle, 0.3 s on a loaded machine: the daemon's kill test restarts it 20+
    times)."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'at-head.db'}"
    upgrade(url)
    code = ("import sys\nfrom sqlalchemy import create_engine\nfrom indexer.store import Store\n"
            f"Store(create_engine({url!r}))\nprint('alembic' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
