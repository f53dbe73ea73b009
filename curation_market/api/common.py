"""What every router of the API shares: the connection, the head, errors, cursors, times."""

from __future__ import annotations

import base64
import binascii
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import anyio
import anyio.to_thread
import orjson
from fastapi import Depends, Request, Response
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from curation.market import MarketConfig
from curation.phase import Windows
from indexer import readmodel as rm

MAX_LIMIT = 200
NAME = r"^[a-z0-9][a-z0-9.-]{0,31}$"  # account names (lenient: historic names are odd)
PERMLINK = r"^[a-z0-9-]{1,256}$"
LAST_SECOND = 253402300799  # 9999-12-31T23:59:59


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


@dataclass(frozen=True)
class Context:
    """What ``create_app`` was given, for the views (``app.state.ctx``). ``cfg`` serves the
    rules' author window; the market windows are the database's (:func:`windows`)."""

    engine: Engine
    cfg: MarketConfig
    currency: str
    known: dict[str, Any] = field(default_factory=dict, compare=False)  # read once, kept


async def context(request: Request) -> Context:
    """``async``: FastAPI runs a plain ``def`` dependency in a worker thread (a hop)."""
    return request.app.state.ctx


class LazyConnection:
    """A connection checked out of the pool on first use, in the thread that uses it.

    Why: FastAPI runs a plain ``def`` generator dependency's enter and exit each in a worker
    thread, two hand-offs besides the endpoint's own; at ~0.15 ms of GIL time each they were
    the largest stage of a market detail (docs/api.md "Speed at scale", the profile). With
    this the endpoint's thread checks the connection out and only the return is a hand-off.
    Admission still lets in no more requests than the pool holds."""

    __slots__ = ("_engine", "_conn")

    def __init__(self, engine: Engine):
        self._engine, self._conn = engine, None

    def __getattr__(self, name: str) -> Any:
        conn = self._conn
        if conn is None:
            conn = self._conn = self._engine.connect()
        return getattr(conn, name)

    @property
    def opened(self) -> bool:
        return self._conn is not None

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


async def connection(request: Request) -> AsyncIterator[Any]:
    lazy = LazyConnection(request.app.state.ctx.engine)
    try:
        yield lazy
    finally:
        if lazy.opened:
            with anyio.CancelScope(shield=True):  # a cancelled request still returns it
                await anyio.to_thread.run_sync(lazy.release,
                                               limiter=anyio.CapacityLimiter(1))


Conn = Annotated[Any, Depends(connection)]
Ctx = Annotated[Context, Depends(context)]


def is_timeout(exc: DBAPIError) -> bool:
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        return "interrupted" in str(orig)
    return type(orig).__name__ == "QueryCanceled" or "statement timeout" in str(orig)


def windows(ctx: Context, conn: Any) -> Windows:
    """The windows the database was built with, never the server's config: a writer refuses
    to change them (indexer.store.check_settings), so once read they are kept. A database
    that recorded none (built before migration 0006, no writer since) has no phase to show:
    503 saying what to run."""
    found = ctx.known.get("windows")
    if found is None:
        found = rm.market_windows(conn)
        if found is None:
            raise ApiError(503, "the database records no market windows: resume its writer "
                                "(`curation-market run` or `replay`) once to record them")
        ctx.known["windows"] = found
    return found


def head(conn: Any) -> rm.Head:
    """The indexed head, or a 503 that says what to run when there is none yet."""
    try:
        h = rm.head(conn)
    except (OperationalError, ProgrammingError) as exc:
        if is_timeout(exc):
            raise
        raise ApiError(503, "database not initialised: run `curation-market replay` "
                            "(or `db upgrade`) first") from None
    if h is None:
        raise ApiError(503, "database not initialised: nothing indexed yet")
    return h


def envelope(h: rm.Head, **body: Any) -> dict:
    return {**rm.head_doc(h), **body}


def respond(h: rm.Head, **body: Any) -> Any:
    """:func:`envelope` as a finished JSON response (orjson bytes).

    Returning a ``Response`` skips FastAPI's ``jsonable_encoder``, which walked every value of
    a market's document again (3.4 ms for a market with 25 predictions against 0.4 ms for the
    whole serialisation): the largest single cost of a request. The bytes are what FastAPI
    sent (compact, UTF-8, keys in order; ``Decimal`` sums as numbers)."""
    return Response(orjson.dumps(envelope(h, **body), default=_number,
                                 option=orjson.OPT_NON_STR_KEYS),  # row keys: quoted_name
                    media_type="application/json")


def _number(value: Any) -> int | float:
    if isinstance(value, Decimal):  # PostgreSQL's SUM: as jsonable_encoder gave it
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def encode_cursor(kind: str, key: list) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([kind, *key])).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, types: tuple[type, ...]) -> list:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        data = None
    ok = (isinstance(data, list) and len(data) == len(types) + 1 and data[0] == kind
          and all(type(v) is ty and _sane(v) for v, ty in zip(data[1:], types, strict=True)))
    if not ok:
        raise ApiError(400, "cursor: not a cursor issued by this endpoint "
                            "(pass back next_cursor unchanged)", parameter="cursor")
    return data[1:]


def _sane(v: object) -> bool:
    """Cursor values a database accepts: 64-bit integers, short NUL-free strings."""
    if isinstance(v, int):
        return -(2**63) <= v < 2**63
    return isinstance(v, str) and len(v) <= 64 and "\x00" not in v


def epoch(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        ts = int(value.timestamp())
    except (OverflowError, OSError, ValueError):
        ts = -1
    if not 0 <= ts <= LAST_SECOND:  # answers echo the range back, formatted with 4-digit years
        raise ApiError(400, "time out of range (1970-01-01T00:00:00 to 9999-12-31T23:59:59)")
    return ts


def check_range(lo: int | None, hi: int | None, what: str) -> None:
    if lo is not None and hi is not None and lo > hi:
        raise ApiError(400, f"{what}: 'from' is after 'to'")
