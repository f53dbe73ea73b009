"""The commands that only read (``report``, ``rejections``, ``status``, ``serve``) open the
database read-only and refuse, in one line naming it, a database that is missing or not a
curation-market one, creating nothing.

Before: ``report --db typo.db`` created typo.db with every table and printed an empty report
with exit code 0 (so did ``rejections`` and ``status``)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from curation_market.cli.common import open_reader, readonly_url
from curation_market.cli.main import app
from curation_market.config import Settings
from indexer.migrations import upgrade
from indexer.store import Store

runner = CliRunner()
LABEL = Settings().market_config().rules.label  # the rules a default config asks for
READERS = [["report"], ["rejections"], ["status"], ["serve", "--port", "0"]]
IDS = ["report", "rejections", "status", "serve"]


def invoke(command: list[str], url: str, *more: str) -> tuple[int, str]:
    r = runner.invoke(app, [*command, "--db", url, *more])
    return r.exit_code, r.stderr


def fingerprint(path: Path) -> tuple[list[str], str]:
    """The files of the directory and the database file's bytes."""
    return sorted(p.name for p in path.parent.iterdir()), \
        hashlib.sha256(path.read_bytes()).hexdigest()


def one_error_line(err: str, *needles: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


@pytest.mark.parametrize("command", READERS, ids=IDS)
def test_a_missing_file_is_named_and_not_created(command: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    code, err = invoke(command, f"sqlite:///{missing}")
    assert code == 2
    one_error_line(err, f"no database file at sqlite:///{missing}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", READERS, ids=IDS)
def test_an_empty_file_is_not_a_market_database(command: list[str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    code, err = invoke(command, f"sqlite:///{empty}")
    assert code == 2
    one_error_line(err, f"sqlite:///{empty} is not a curation-market database")
    assert empty.stat().st_size == 0 and [p.name for p in tmp_path.iterdir()] == ["empty.db"]


@pytest.mark.parametrize("command", READERS, ids=IDS)
def test_a_foreign_sqlite_database_is_left_alone(command: list[str], tmp_path: Path) -> None:
    foreign = tmp_path / "photos.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO photos (name) VALUES ('cat.jpg')")
    conn.close()
    before = fingerprint(foreign)
    code, err = invoke(command, f"sqlite:///{foreign}")
    assert code == 2
    one_error_line(err, f"sqlite:///{foreign} is not a curation-market database")
    assert fingerprint(foreign) == before


def test_a_file_that_is_no_database_at_all(tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("not sqlite, just text\n" * 100)
    code, err = invoke(["report"], f"sqlite:///{notes}")
    assert code == 2
    one_error_line(err, "cannot open database", "file is not a database")


@pytest.mark.parametrize("command", READERS[:3], ids=IDS[:3])
def test_a_database_with_tables_but_no_market_yet(command: list[str], tmp_path: Path) -> None:
    """``db upgrade`` alone makes the tables, nothing indexed: said so, nothing written."""
    path = tmp_path / "upgraded.db"
    upgrade(f"sqlite:///{path}")
    before = fingerprint(path)
    code, err = invoke(command, f"sqlite:///{path}")
    assert code == 2
    one_error_line(err, "holds no market yet")
    assert fingerprint(path) == before


def test_an_older_schema_asks_for_db_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    upgrade(url, "0003")
    code, err = invoke(["report"], url)
    assert code == 2
    one_error_line(err, "schema revision 0003", "db upgrade")


def test_a_real_database_is_read_and_not_written(demo_db: dict, tmp_path: Path) -> None:
    """The demo's database (real posts): the report lists its markets; the file is the same
    byte for byte afterwards, and the reader's connection refuses writes."""
    path = tmp_path / "demo.db"
    src = sqlite3.connect(demo_db["url"].removeprefix("sqlite:///"))
    with sqlite3.connect(path) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    url = f"sqlite:///{path}"
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    r = runner.invoke(app, ["report", "--db", url, "--format", "json"])
    assert r.exit_code == 0, r.stderr
    assert '"markets"' in r.stdout and '"sim-oracle"' in r.stdout
    r = runner.invoke(app, ["rejections", "--db", url, "--limit", "3"])
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 3
    r = runner.invoke(app, ["status", "--db", url, "--format", "json"])
    assert r.exit_code == 0 and '"indexed_block":16999999' in r.stdout.replace(" ", "")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    engine = open_reader(Settings(), url)
    with engine.connect() as conn, pytest.raises(Exception, match="readonly"):
        conn.execute(text("DELETE FROM posts"))
    engine.dispose()


def test_the_rules_check_still_applies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'other.db'}"
    Store(create_engine(url), None, "underdog")
    code, err = invoke(["report"], url)
    assert code == 2
    one_error_line(err, "built with rules 'underdog'")


def test_readonly_url_keeps_odd_paths(tmp_path: Path) -> None:
    """Spaces, ``?``, ``#`` and ``%`` in a path survive the ``file:`` URI."""
    odd = tmp_path / "a b?#%" / "m.db"
    odd.parent.mkdir()
    url = f"sqlite:///{odd}"
    Store(create_engine(url), None, LABEL)
    ro = readonly_url(url)
    assert "mode=ro" in ro and "uri=true" in ro
    engine = open_reader(Settings(), url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT last_block FROM meta")).scalar() == 0
    engine.dispose()


def test_readers_on_each_backend(db_url: Callable[[str], str]) -> None:
    """A Store-made database is read (an empty report, exit 0) and cannot be written through
    the reader's engine; a database without our tables is refused. PostgreSQL too when
    CURATION_TEST_PG_URL is set."""
    foreign = db_url("foreign")
    engine = create_engine(foreign)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE photos (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    code, err = invoke(["report"], foreign)
    assert code == 2
    one_error_line(err, "is not a curation-market database")
    ours = db_url("ours")
    Store(create_engine(ours), None, LABEL).engine.dispose()
    r = runner.invoke(app, ["report", "--db", ours, "--format", "json"])
    assert r.exit_code == 0, r.stderr
    assert '"as_of_block":0' in r.stdout.replace(" ", "")
    reader = open_reader(Settings(), ours)
    with reader.connect() as conn, pytest.raises(Exception, match="(?i)read.?only"):
        conn.execute(text("UPDATE meta SET last_block = 5"))
    reader.dispose()
