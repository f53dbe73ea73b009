"""What every ``curation-market`` command shares: the error console and ``fail``, the config
and database openers, the progress bar, value checks and the option types used by more than
one command group. Command modules import this module and never :mod:`curation_market.cli.main`
(the entry point, which imports them): imports run one way.

Databases are opened two ways. Commands that write (``replay``, ``run``) get a
:class:`~indexer.store.Store`, which migrates the schema. Commands that only read (``report``,
``rejections``, ``status``, ``serve``) get an engine that cannot write (SQLite ``mode=ro``,
PostgreSQL ``default_transaction_read_only``) on a database that must already be a
curation-market one: a mistyped ``--db`` is named and refused, never created empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url

from curation.payload import parse_milli
from curation_market.config import ConfigError, Settings, load_settings
from curation_market.curator.ops import bid_milli
from indexer.ingest import Stats
from indexer.store import Store, check_meta

err = Console(stderr=True)

# --- option types shared by several command groups (one wording everywhere) --------------
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c",
                                                help="config.toml (defaults if omitted)")]
DbOpt = Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL; default from "
                                           "the config's ingest.db")]
NodesOpt = Annotated[list[str] | None, typer.Option(
    "--node", help="node URL; repeat for failover (default: the config's node.urls)")]
FormatOpt = Annotated[str, typer.Option("--format", help="table | json")]


# --- messages ----------------------------------------------------------------------------
def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr (one line, so it can be grepped) for ``raise``.

    The message is plain text: brackets in it (``[node] urls``) are shown, not read as markup.
    Exit code 2 is a problem with what was asked (options, config, files, database); 1 is a
    failure while running (a node that stopped answering): retrying later may succeed.
    """
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def out_console() -> Console:
    """Wide enough for the report's tables even when piped into a file."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=140)


def safe_url(url: str) -> str:
    """The database URL as shown in messages: never its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL at all: nothing to hide
        return url


# --- checks of option values -------------------------------------------------------------
def check_format(fmt: str, *choices: str) -> None:
    if fmt not in choices:
        raise fail(f"--format must be one of {', '.join(choices)} (got {fmt!r})")


def stake_and_bid(stake: str | None, bid: str | None) -> tuple[int | None, int | None]:
    """--stake/--bid → (milli-units, thousandths), refusing malformed values by name, before
    anything is built, signed or asked of a node."""
    stake_milli = None if stake is None else parse_milli(stake)
    if stake is not None and stake_milli is None:
        raise fail(f"--stake: expected a decimal amount like 10.000, got {stake!r}")
    try:
        return stake_milli, bid_milli(bid)
    except ValueError:
        raise fail(f"--bid: expected a decimal between 0 and 1, like 0.600, got {bid!r}") \
            from None


def settings_from(path: Path | None) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as exc:
        raise fail(str(exc)) from None


# --- databases ---------------------------------------------------------------------------
def open_store(settings: Settings, db: str | None, writes_chain: bool = False) -> Store:
    """For the commands that write. A database built with other rules or other ``[market]``
    settings (or ``[rules]`` ones its label leaves out) is refused (exit 2, the key named).
    ``writes_chain``: the caller writes blocks with the configured (or named) chain's id
    (replay), so the database must be of that chain.
    Otherwise only a configured ``chain.chain_id`` is checked: the daemon takes the
    database's (and then checks it against its node)."""
    url = db or settings.ingest.db
    cfg = settings.market_config()
    chain_id = settings.chain.id if writes_chain else settings.chain.chain_id
    try:
        return Store(create_engine(url), chain_id, cfg.rules.label, cfg.settings())
    except ValueError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a bad URL or unreachable server, said plainly
        raise fail(f"cannot open database {safe_url(url)!r}: {exc}") from None


def open_as_built(settings: Settings, db: str | None) -> Store:
    """For ``rewind``, which restores state and judges nothing: an existing curation-market
    database (never a new one) opened with the rules it was built with, whatever the config
    says of rules, windows or chain."""
    url = db or settings.ingest.db
    reader = open_reader(settings, db, check_rules=False)
    row = check_database(reader, url)
    reader.dispose()
    assert row is not None  # open_reader refuses a database without a meta row
    try:
        return Store(create_engine(url), None, row["rules"])
    except ValueError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a bad URL or unreachable server, said plainly
        raise fail(f"cannot open database {safe_url(url)!r}: {exc}") from None


def readonly_url(url: str) -> str:
    """``url`` opened so that nothing can be written or created: a SQLite file as a
    ``file:…?mode=ro`` URI (SQLite refuses every write, and a missing file is an error instead
    of a new empty database). Other URLs are returned as they are (:func:`readonly_engine`
    makes PostgreSQL sessions read-only)."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or u.database in (None, "", ":memory:"):
        return url
    database = u.database
    if not (database.startswith("file:") and u.query.get("uri") == "true"):
        database = "file:" + quote(str(Path(database).resolve()))
    return u.set(database=database).update_query_dict({"mode": "ro", "uri": "true"}) \
        .render_as_string(hide_password=False)


def readonly_engine(url: str) -> Engine:
    """An engine on ``url`` that cannot write: :func:`readonly_url` for SQLite; PostgreSQL
    sessions default to read-only transactions (as the API's, :mod:`curation_market.api`)."""
    engine = create_engine(readonly_url(url))
    if engine.dialect.name == "postgresql":
        @event.listens_for(engine, "connect")
        def _read_only(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("SET default_transaction_read_only = on")
            cur.close()
            dbapi_conn.commit()
    return engine


def check_database(engine: Engine, url: str) -> dict | None:
    """Refuse (``fail``, exit 2) a database that is not a curation-market one at this
    program's schema revision; its meta row (None: made by ``db upgrade``, nothing indexed
    yet). Reads only."""
    from indexer.migrations import adoptable_of, head, revision_of
    from indexer.readmodel import meta_row

    shown = safe_url(url)
    try:
        with engine.connect() as conn:
            if "meta" not in inspect(conn).get_table_names():
                raise fail(f"{shown} is not a curation-market database (it has no meta table)")
            found = revision_of(conn) or adoptable_of(conn)
            if found != head():
                raise fail(f"{shown} has schema revision {found}; this curation-market reads "
                           f"{head()}: `curation-market db upgrade --db URL` brings it there")
            row = meta_row(conn)
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001 - not a database at all, unreadable, unreachable
        raise fail(f"cannot open database {shown!r}: {db_error(exc)}") from None
    return row


def db_error(exc: BaseException) -> str:
    """The driver's own words (``file is not a database``, ``connection refused``) on one
    line, without SQLAlchemy's wrapping and its link."""
    text = str(getattr(exc, "orig", None) or exc)
    return "; ".join(line.strip() for line in text.splitlines() if line.strip()) \
        or type(exc).__name__


def open_reader(settings: Settings, db: str | None, check_rules: bool = True) -> Engine:
    """For the commands that only read: a read-only engine on an existing curation-market
    database (see :func:`check_database`); nothing is created when it is missing or foreign.

    ``check_rules``: like the Store, refuse a database built with other rules (or, when one
    is configured, on another chain) than the config names; ``serve`` shows any."""
    url = db or settings.ingest.db
    shown = safe_url(url)
    try:
        u = make_url(url)
    except Exception as exc:  # noqa: BLE001 - said plainly
        raise fail(f"cannot open database {shown!r}: {exc}") from None
    if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:") \
            and not u.database.startswith("file:") and not Path(u.database).is_file():
        raise fail(f"no database file at {shown}: make one with `curation-market replay`, "
                   "`demo` or `run`")
    try:
        engine = readonly_engine(url)
    except Exception as exc:  # noqa: BLE001 - a driver missing, a malformed URL
        raise fail(f"cannot open database {shown!r}: {exc}") from None
    row = check_database(engine, url)
    if row is None:
        engine.dispose()
        raise fail(f"{shown} holds no market yet (no meta row): index into it with "
                   "`curation-market replay` or `run` first")
    if check_rules:
        try:
            check_meta(row, settings.chain.chain_id, settings.market_config().rules.label)
        except ValueError as exc:
            engine.dispose()
            raise fail(str(exc)) from None
    return engine


# --- progress ----------------------------------------------------------------------------
@contextmanager
def progress_bar(label: str, files: Iterable[Path] = (),
                 console: Console | None = None) -> Iterator[Callable[[Stats], None]]:
    """A bar on stderr while blocks are read. When every input is a regular file their sizes
    are known, so the bar shows the share of bytes read and the time left; a pipe or stdin
    keeps the open-ended bar (blocks, ops, ops/s)."""
    console = console or err
    position = FilePosition(list(files))
    columns = [TextColumn("[bold]{task.description}"), BarColumn(bar_width=None)]
    if position.total:
        columns.append(TaskProgressColumn())
    columns.append(TextColumn("block {task.fields[block]:,} · {task.fields[ops]:,} ops · "
                              "{task.fields[rate]:,.0f} ops/s"))
    columns += [TimeElapsedColumn()] + ([TimeRemainingColumn()] if position.total else [])
    with Progress(*columns, console=console, transient=True,
                  disable=not console.is_terminal) as bar:
        task = bar.add_task(label, total=position.total, block=0, ops=0, rate=0.0)

        def update(stats: Stats) -> None:
            done = position.read() if position.total else None
            bar.update(task, block=stats.last_block, ops=stats.ops, rate=stats.ops_per_second,
                       **({"completed": done} if done is not None else {}))

        yield update


class FilePosition:
    """How many bytes of a list of regular files this process has read, from the kernel's
    offset of the file's open descriptor (``/proc/self/fdinfo``): the reader opens the files
    itself, and the offset costs nothing per block. For a .gz file it is the compressed
    offset, against the compressed size. ``total`` is None when a position cannot be known
    (a pipe, stdin, a FIFO, or no /proc)."""

    def __init__(self, files: list[Path]):
        import stat

        self.files: list[tuple[str, int]] = []
        self.total: int | None = None
        if not files or not Path("/proc/self/fdinfo").is_dir():
            return
        for f in files:
            try:
                st = f.stat() if str(f) != "-" else None
            except OSError:
                return
            if st is None or not stat.S_ISREG(st.st_mode):
                return
            self.files.append((str(f.resolve()), st.st_size))
        self.total = sum(size for _, size in self.files) or None
        self._done = 0  # bytes of the files before the one being read
        self._index = 0

    def read(self) -> int:
        import os

        open_at: dict[str, int] = {}
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if any(target == name for name, _ in self.files[self._index:]):
                try:
                    with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as fh:
                        pos = next(int(x.split()[1]) for x in fh if x.startswith("pos:"))
                except (OSError, StopIteration, ValueError):
                    continue
                open_at[target] = max(pos, open_at.get(target, 0))
        for i in range(self._index, len(self.files)):
            name, size = self.files[i]
            if name in open_at:  # the file being read; every one before it is done
                self._done += sum(s for _, s in self.files[self._index:i])
                self._index = i
                return self._done + min(open_at[name], size)
        return self._done
