"""Read-only HTTP API over the indexed tables, for frontends (FastAPI + SQLAlchemy Core).

Design points, each for a reason:

* **Chain time only.** A market's phase (open → revealing → closed → settled) is computed from
  the indexed head block's time (``meta.last_time``), never from the wall clock, so the same
  database always gives the same answers. Every response carries ``as_of_block``.
* **Sealed predictions.** Until a market's reveal period has closed, only counts and
  commitments are served — never a prediction, stake or bid, even if already revealed.
* **No N+1.** Each list is one query (joins, grouped sub-queries, ``IN``); a market's detail
  is three. ``tests/test_api.py`` counts the statements.
* **Cursor pagination.** Cursors are opaque (base64 JSON of the last row's ordering key and the
  endpoint they belong to); ordering is by chain identity (post id, commit position), so a page
  never skips or repeats a row when new blocks arrive.
* **Errors.** Every error is ``{"error": {"status", "message", ...}}``; bad input is a 4xx that
  names the parameter, never a 500. Queries running longer than ``statement_timeout`` are cut
  (SQLite: a progress handler; PostgreSQL: ``SET statement_timeout``) and answered with a 503.
* **Admission, never a wedge.** At most ``Limits.active`` requests run inside the app at once
  (never more than the connection pool holds), up to ``Limits.queue`` more wait in order for
  at most ``Limits.wait`` seconds, and the rest are answered at once with 503 and
  ``Retry-After``. Without it a burst deadlocked: FastAPI opens a ``yield`` dependency's
  connection in one worker thread and runs the endpoint in another, so with every thread
  holding a request that waited for a connection, the requests holding connections waited
  for a thread until the pool timed out (500s after 30 s, then client timeouts).
* **Docs offline.** ``/docs`` and ``/redoc`` load Swagger UI and ReDoc from the
  ``fastapi-offline`` package's files, served under ``/docs-assets``: nothing from a CDN.
"""


import asyncio
import base64
import binascii
import logging
import math
import sqlite3
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import (
    Engine,
    and_,
    case,
    create_engine,
    event,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import QueuePool
from starlette.exceptions import HTTPException

from curation.market import MarketConfig
from curation.phase import Phase
from curation_market.report.build import code_point, explain, settled_fraction
from indexer import schema as t
from indexer.ops import format_time
from rewards.settle import reputation
from rewards.underdog import AuthorEntry, author_average

MAX_LIMIT = 200
NAME = r"^[a-z0-9][a-z0-9.-]{0,31}$"  # account names (lenient: historic names are odd)
PERMLINK = r"^[a-z0-9-]{1,256}$"
STATIC = resources.files("curation_market.api") / "static"
DOCS_ASSETS = resources.files("fastapi_offline") / "static"  # Swagger UI and ReDoc bundles
log = logging.getLogger("curation.api")


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


# --- engine ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Limits:
    """Admission control: requests inside the app at once, waiting, and how long they wait.

    ``active`` is also the connection pool's size, so a request let in always finds a
    connection; it stays below anyio's 40 worker threads, so it always finds a thread too."""

    active: int = 16
    queue: int = 256
    wait: float = 10.0


def make_engine(url: str, statement_timeout: float = 5.0, pool_size: int = Limits.active
                ) -> Engine:
    """A read-only engine whose statements are cut after ``statement_timeout`` seconds."""
    sqlite = url.startswith("sqlite")
    engine = create_engine(url, connect_args={"check_same_thread": False} if sqlite else {},
                           pool_pre_ping=not sqlite, pool_size=pool_size, max_overflow=0,
                           pool_timeout=5)
    ms = int(statement_timeout * 1000)
    if sqlite:
        @event.listens_for(engine, "connect")
        def _sqlite(dbapi_conn: Any, record: Any) -> None:
            dbapi_conn.execute("PRAGMA query_only=ON")
            dbapi_conn.execute("PRAGMA busy_timeout=5000")
            record.info["deadline"] = float("inf")

            def check() -> int:  # nonzero aborts the running statement ("interrupted")
                return 1 if time.monotonic() > record.info["deadline"] else 0

            dbapi_conn.set_progress_handler(check, 10_000)

        @event.listens_for(engine, "before_cursor_execute")
        def _arm(conn: Any, *_: Any) -> None:
            conn.connection._connection_record.info["deadline"] = \
                time.monotonic() + statement_timeout
    elif engine.dialect.name == "postgresql":
        @event.listens_for(engine, "connect")
        def _pg(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute(f"SET statement_timeout = {ms}")
            cur.execute("SET default_transaction_read_only = on")
            cur.close()
            dbapi_conn.commit()
    return engine


def _is_timeout(exc: DBAPIError) -> bool:
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        return "interrupted" in str(orig)
    return type(orig).__name__ == "QueryCanceled" or "statement timeout" in str(orig)


# --- admission and the request log ---------------------------------------------------------

class Admission:
    """ASGI middleware in front of the app: bounded concurrency, a bounded FIFO queue, 503 with
    ``Retry-After`` beyond it, and one log line per request (method, path, status, time).

    Only ``/api/`` requests are counted (the page, its files and the docs need no database).
    A slot freed by a finished request is handed to the oldest waiter directly, so a waiter
    cannot be overtaken by a request that arrived later.
    """

    def __init__(self, app: Any, limits: Limits):
        self.app, self.limits = app, limits
        self.running = 0
        self.waiters: deque[asyncio.Future] = deque()
        self.mean = 0.05  # seconds per request inside the app, smoothed (for Retry-After)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = [0]

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        path = scope.get("path", "")
        counted = path.startswith("/api/")
        note = ""
        try:
            if counted and not await self._enter():
                note = f" shed ({self.running} running, {len(self.waiters)} waiting)"
                await self._busy(sending, self.retry_after())
                return
            entered = time.monotonic()  # the time inside the app, without the wait
            try:
                await self.app(scope, receive, sending)
            finally:
                if counted:
                    self._leave(time.monotonic() - entered)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            log.info("%s %s%s %s %.1f ms%s", scope.get("method", "?"), path,
                     f"?{query}" if query else "", status[0] or "-",
                     1000 * (time.monotonic() - started), note)

    async def _enter(self) -> bool:
        if self.running < self.limits.active and not self.waiters:
            self.running += 1
            return True
        if len(self.waiters) >= self.limits.queue:
            return False
        slot = asyncio.get_running_loop().create_future()
        self.waiters.append(slot)
        try:
            await asyncio.wait_for(asyncio.shield(slot), self.limits.wait)
            return True
        except (TimeoutError, asyncio.CancelledError) as exc:
            if slot.done() and not slot.cancelled():  # the slot came as the wait ended
                if isinstance(exc, TimeoutError):
                    return True
                self._leave(None)  # cancelled (the server stops): pass it on
            else:
                slot.cancel()
                self.waiters.remove(slot)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return False

    def _leave(self, took: float | None) -> None:
        if took is not None:
            self.mean += (took - self.mean) * 0.1
        while self.waiters:
            slot = self.waiters.popleft()
            if not slot.done():
                slot.set_result(None)  # the slot moves to the waiter: ``running`` unchanged
                return
        self.running -= 1

    def retry_after(self) -> int:
        """Seconds until the queue ahead would have drained at the recent pace (1 to 60)."""
        ahead = self.running + len(self.waiters)
        return max(1, min(60, math.ceil(self.mean * ahead / max(1, self.limits.active))))

    async def _busy(self, send: Any, retry: int) -> None:
        body = orjson.dumps({"error": {
            "status": 503, "retry_after": retry,
            "message": f"server busy: {self.running} requests running and {len(self.waiters)} "
                       f"waiting; retry after {retry} s"}})
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"retry-after", str(retry).encode()),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


# --- helpers --------------------------------------------------------------------------------

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


LAST_SECOND = 253402300799  # 9999-12-31T23:59:59


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



def _iso(ts: int | None) -> str | None:
    return format_time(ts) if ts is not None else None


@dataclass(frozen=True)
class Head:
    block: int
    block_id: str
    time: int
    rules: str


# --- the app --------------------------------------------------------------------------------

def create_app(engine: Engine, cfg: MarketConfig | None = None,
               limits: Limits | None = None, currency: str = "SBD") -> FastAPI:
    """The API (``/api/...``), its schema (``/openapi.json``), its docs (``/docs``,
    ``/redoc``) and the page (``/``). ``currency`` is the chain's dollar token (SBD on
    Steem, HBD on Hive), the unit of every amount served."""
    cfg = cfg or MarketConfig()
    window, reveal = cfg.window, cfg.reveal_period
    windows = cfg.windows
    limits = limits or Limits()
    dialect = engine.dialect.name  # names sort by code point everywhere (see code_point)
    pool = engine.pool
    if isinstance(pool, QueuePool) and pool._max_overflow >= 0:  # noqa: SLF001
        # never let in more requests than there are connections: that is the deadlock
        limits = Limits(min(limits.active, pool.size() + pool._max_overflow),  # noqa: SLF001
                        limits.queue, limits.wait)
    app = FastAPI(title="curation-market API", version="1", docs_url=None, redoc_url=None,
                  description="Read-only results of the prediction-market curation plugin. "
                  "Money is integer milli-units (1.000 SBD = 1000). Times are chain time "
                  "(UTC); every response says the block it is as of. A busy server answers "
                  "503 with Retry-After.")
    app.add_middleware(Admission, limits=limits)

    def conn_dep() -> Any:
        with engine.connect() as conn:
            yield conn

    Conn = Annotated[Any, Depends(conn_dep)]

    def head(conn: Any) -> Head:
        try:
            row = conn.execute(select(t.meta).where(t.meta.c.id == 1)).mappings().first()
        except (OperationalError, ProgrammingError) as exc:
            if _is_timeout(exc):
                raise
            raise ApiError(503, "database not initialised: run `curation-market replay` "
                                "(or `db upgrade`) first") from None
        if row is None:
            raise ApiError(503, "database not initialised: nothing indexed yet")
        return Head(row["last_block"], row["last_block_id"], row["last_time"], row["rules"])

    def phase_of(row: Any, now: int) -> Phase:
        return windows.phase(row["created"], now, row["paid_block"] is not None,
                             bool(row["deleted"]))

    def sealed(row: Any, now: int) -> bool:
        """Values stay hidden until the reveal period is over (or the market settled)."""
        return row["paid_block"] is None and windows.sealed(now - row["created"])

    def envelope(h: Head, **body: Any) -> dict:
        return {"as_of_block": h.block, "as_of_time": _iso(h.time) if h.time else None,
                **body}

    # --- errors ---------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": {"status": exc.status, "message": exc.message,
                                       **exc.extra}}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            loc = [str(x) for x in e.get("loc", ())]
            where = f"{loc[0]} parameter '{'.'.join(loc[1:])}'" if len(loc) > 1 else ".".join(loc)
            problems.append({"parameter": ".".join(loc[1:]), "in": loc[0] if loc else "",
                             "message": f"{where}: {e.get('msg', 'invalid')}"})
        message = "; ".join(p["message"] for p in problems) or "invalid request"
        return JSONResponse({"error": {"status": 422, "message": message,
                                       "problems": problems}}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(_req: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": {"status": exc.status_code, "message": str(exc.detail)}},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(PoolTimeout)
    async def _pool(_req: Request, _exc: PoolTimeout) -> JSONResponse:
        # not reached while Admission keeps requests within the pool; said plainly if it is
        return JSONResponse({"error": {"status": 503, "retry_after": 1, "message":
                                       "no database connection free; retry after 1 s"}},
                            status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(DBAPIError)
    async def _db(_req: Request, exc: DBAPIError) -> JSONResponse:
        if _is_timeout(exc):
            return JSONResponse({"error": {"status": 503, "message": "query took longer "
                                           "than the statement timeout; narrow the request"}},
                                status_code=503)
        raise exc

    # --- status ---------------------------------------------------------------------------
    @app.get("/api/status", tags=["status"])
    def status(conn: Conn) -> dict:
        """Indexed head and lag. Lag is the only wall-clock figure served (it decides nothing)."""
        h = head(conn)
        lag = max(0, int(time.time()) - h.time) if h.time else None
        return envelope(h, head_block_id=h.block_id, head_time=_iso(h.time) if h.time else None,
                        lag_seconds=lag, rules=h.rules, window_seconds=window,
                        reveal_period_seconds=reveal, currency=currency)

    # --- markets --------------------------------------------------------------------------
    p, s, c = t.posts, t.settlements, t.commits

    def counts_subquery() -> Any:
        return (select(c.c.post_id, func.count().label("n_commits"),
                       func.count(c.c.reveal_block).label("n_revealed"))
                .group_by(c.c.post_id).subquery("cc"))

    def market_summary(row: Any, now: int) -> dict:
        ph = phase_of(row, now)
        out = {
            "id": row["id"], "author": row["author"], "permlink": row["permlink"],
            "category": row["parent_permlink"] if not row["parent_author"] else None,
            "is_reply": bool(row["parent_author"]),
            "created": _iso(row["created"]), "created_block": row["block"], "phase": ph.value,
            "commit_until": _iso(row["created"] + window),
            "reveal_until": _iso(row["created"] + window + reveal),
            "n_commits": row["n_commits"] or 0, "n_revealed": row["n_revealed"] or 0,
            "net_rshares": row["net_rshares"],
            "final_payout": row["payout"], "paid_block": row["paid_block"],
        }
        if row["pool"] is not None:
            out.update(pool=row["pool"], returned=row["returned"],
                       n_qualified=row["n_qualified"], rules=row["srules"])
        return out

    def market_select() -> Any:
        cc = counts_subquery()
        return (select(p, cc.c.n_commits, cc.c.n_revealed, s.c.pool, s.c.returned,
                       s.c.n_qualified, s.c.rules.label("srules"), s.c.underdog_returned,
                       s.c.x, s.c.f, s.c.author_average, s.c.r.label("s_r"),
                       s.c.time.label("s_time"))
                .select_from(p.outerjoin(cc, cc.c.post_id == p.c.id)
                             .outerjoin(s, s.c.post_id == p.c.id))
                .where(p.c.is_market))

    @app.get("/api/markets", tags=["markets"])
    def markets(
        conn: Conn,
        phase: Annotated[Phase | None, Query(description="phase on chain time")] = None,
        author: Annotated[str | None, Query(pattern=NAME, max_length=32)] = None,
        tag: Annotated[str | None, Query(
            pattern=PERMLINK, max_length=256,
            description="the post's category (its first tag, the parent_permlink of a top-"
                        "level post). Other tags are not indexed.")] = None,
        created_from: Annotated[datetime | None, Query(alias="from", description=(
            "created at or after (ISO 8601 or unix seconds, chain time)"))] = None,
        created_to: Annotated[datetime | None, Query(alias="to")] = None,
        with_commits: Annotated[bool, Query(description=(
            "only markets that received at least one commit"))] = False,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict:
        """Markets, newest first (by post id, i.e. chain order)."""
        h = head(conn)
        now = h.time
        lo, hi = epoch(created_from), epoch(created_to)
        check_range(lo, hi, "from/to")
        q = market_select()
        if author:
            q = q.where(p.c.author == author)
        if tag:
            q = q.where(p.c.parent_author == "", p.c.parent_permlink == tag)
        if with_commits:
            q = q.where(exists().where(c.c.post_id == p.c.id))
        if lo is not None:
            q = q.where(p.c.created >= lo)
        if hi is not None:
            q = q.where(p.c.created <= hi)
        if phase is not None:
            if phase is Phase.settled:
                q = q.where(p.c.paid_block.is_not(None))
            elif phase is Phase.deleted:
                q = q.where(p.c.paid_block.is_(None), p.c.deleted)
            else:  # decided by time: the same boundaries as Windows.phase
                lo_c, hi_c = windows.created_bounds(phase, now)
                q = q.where(p.c.paid_block.is_(None), ~p.c.deleted)
                if lo_c is not None:
                    q = q.where(p.c.created >= lo_c)
                if hi_c is not None:
                    q = q.where(p.c.created <= hi_c)
        if cursor:
            (after,) = decode_cursor("markets", cursor, (int,))
            q = q.where(p.c.id < after)
        rows = conn.execute(q.order_by(p.c.id.desc()).limit(limit + 1)).mappings().all()
        items = [market_summary(r, now) for r in rows[:limit]]
        nxt = encode_cursor("markets", [rows[limit - 1]["id"]]) if len(rows) > limit else None
        return envelope(h, items=items, next_cursor=nxt)

    @app.get("/api/markets/{author}/{permlink}", tags=["markets"])
    def market(
        conn: Conn,
        author: Annotated[str, Path(pattern=NAME, max_length=32)],
        permlink: Annotated[str, Path(pattern=PERMLINK, max_length=256)],
    ) -> dict:
        """One market: its predictions and every settlement factor. Until the reveal period is
        over only counts and commitments are shown, never predicted values."""
        h = head(conn)
        row = conn.execute(market_select().where(p.c.author == author,
                                                 p.c.permlink == permlink)).mappings().first()
        if row is None:
            raise ApiError(404, f"no market @{author}/{permlink}")
        out = market_summary(row, h.time)
        hidden = sealed(row, h.time)
        out["sealed"] = hidden
        commits = conn.execute(select(c).where(c.c.post_id == row["id"])
                               .order_by(c.c.block, c.c.trx, c.c.op, c.c.sub)).mappings().all()
        final = row["payout"]
        if row["pool"] is not None:
            out["settlement"] = {
                "final_payout": final, "pool": row["pool"],
                "curation_fraction": settled_fraction(row["srules"], row["s_time"], row["f"]),
                "returned": row["returned"],
                "underdog_returned": row["underdog_returned"], "rules": row["srules"],
                "r": row["s_r"], "x": row["x"], "f": row["f"],
                "author_average": row["author_average"],
                "band": [-(-9 * final // 10), final],
            }
        preds = []
        for cm in commits:
            item = {"predictor": cm["predictor"], "commitment": cm["commitment"],
                    "commit_block": cm["block"], "position": [cm["block"], cm["trx"],
                                                              cm["op"], cm["sub"]],
                    "commit_time": _iso(cm["time"]), "status": cm["status"]}
            if not hidden:
                item.update(prediction=cm["prediction"], revealed=cm["prediction"] is not None,
                            reveal_block=cm["reveal_block"], stake=cm["stake"], bid=cm["bid"],
                            sp=cm["sp"], sp_known=cm["sp_known"])
                if cm["status"] == "settled" and final is not None:
                    f = {k: cm[k] for k in ("voted", "qualified", "ep", "d", "cp", "n", "r",
                                            "rp", "ia", "weight", "reward")}
                    item.update(f)
                    item["why"] = explain({**item, **f}, {"final_payout": final})
            preds.append(item)
        out["predictions"] = preds
        return envelope(h, market=out)

    # --- curators -------------------------------------------------------------------------
    @app.get("/api/curators/{name}", tags=["curators"])
    def curator(
        conn: Conn,
        name: Annotated[str, Path(pattern=NAME, max_length=32)],
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict:
        """N, R and RP, earnings, the settled-prediction history (newest first, paginated) and
        rejected ops with their reasons."""
        h = head(conn)
        cur = conn.execute(select(t.curators).where(t.curators.c.name == name)).mappings() \
            .first()
        rj = t.rejections
        counts = dict(conn.execute(select(rj.c.reason, func.count()).where(rj.c.account == name)
                                   .group_by(rj.c.reason)
                                   .order_by(code_point(rj.c.reason, dialect))).all())
        if cur is None and not counts:
            raise ApiError(404, f"no curator {name!r}: no commits or rejected ops indexed")
        q = (select(c.c.block, c.c.trx, c.c.op, c.c.sub, c.c.prediction, c.c.qualified,
                    c.c.n, c.c.r, c.c.rp, c.c.reward, c.c.cp, c.c.weight, p.c.author,
                    p.c.permlink, p.c.payout, s.c.time.label("settled_time"),
                    s.c.block.label("settled_block"))
             .select_from(c.join(p, p.c.id == c.c.post_id).join(s, s.c.post_id == c.c.post_id))
             .where(c.c.predictor == name, c.c.status == "settled"))
        if cursor:
            key = decode_cursor("history", cursor, (int, int, int, int))
            q = q.where(tuple_(c.c.block, c.c.trx, c.c.op, c.c.sub) < tuple_(*key))
        rows = conn.execute(q.order_by(c.c.block.desc(), c.c.trx.desc(), c.c.op.desc(),
                                       c.c.sub.desc()).limit(limit + 1)).mappings().all()
        history = [{
            "author": r["author"], "permlink": r["permlink"], "commit_block": r["block"],
            "prediction": r["prediction"], "final_payout": r["payout"],
            "qualified": r["qualified"], "n": r["n"], "r": r["r"], "rp": r["rp"],
            "cp": r["cp"], "weight": r["weight"], "reward": r["reward"],
            "settled_block": r["settled_block"], "settled_time": _iso(r["settled_time"]),
        } for r in rows[:limit]]
        nxt = None
        if len(rows) > limit:
            last = rows[limit - 1]
            nxt = encode_cursor("history", [last["block"], last["trx"], last["op"], last["sub"]])
        rej = conn.execute(select(rj).where(rj.c.account == name)
                           .order_by(rj.c.block.desc(), rj.c.trx.desc(), rj.c.op.desc(),
                                     rj.c.sub.desc()).limit(MAX_LIMIT)).mappings().all()
        n = cur["n"] if cur else 0
        hits = cur["hits"] if cur else 0
        return envelope(
            h, curator=name, n=n, r=hits, rp=float(reputation(n, hits)[2]),
            earned=cur["earned"] if cur else 0, rewarded=cur["rewarded"] if cur else 0,
            open_commits=cur["open_commits"] if cur else 0,
            history=history, next_cursor=nxt,
            rejections={"by_reason": counts, "latest": [{
                "position": [r["block"], r["trx"], r["op"], r["sub"]], "kind": r["kind"],
                "reason": r["reason"], "detail": r["detail"], "author": r["author"],
                "permlink": r["permlink"]} for r in rej]})

    # --- authors --------------------------------------------------------------------------
    @app.get("/api/authors/{name}", tags=["authors"])
    def author_view(conn: Conn, name: Annotated[str, Path(pattern=NAME, max_length=32)],
                    ) -> dict:
        """The author's average payout record (for the underdog adjustment) at the indexed
        head, for posts and replies, and the underdog factors of their settled markets."""
        h = head(conn)
        ah = t.author_history.c
        rows = conn.execute(select(ah.is_reply, ah.time, ah.r, ah.w).where(ah.author == name)
                            .order_by(ah.is_reply, ah.time, ah.post_id)).all()
        settled = conn.execute(
            select(p.c.permlink, s.c.block, s.c.final_payout, s.c.r, s.c.x, s.c.f,
                   s.c.author_average, s.c.underdog_returned)
            .select_from(s.join(p, p.c.id == s.c.post_id)).where(p.c.author == name)
            .order_by(s.c.block.desc(), s.c.post_id.desc()).limit(MAX_LIMIT)).mappings().all()
        if not rows and not settled:
            raise ApiError(404, f"no author {name!r}: no paid posts indexed")
        win = cfg.rules.author_window
        avg = {}
        for reply in (False, True):
            entries = [AuthorEntry(r.time, r.r, r.w) for r in rows if r.is_reply == reply]
            avg["replies" if reply else "posts"] = author_average(entries, h.time, win)
        return envelope(h, author=name, average=avg, author_window_seconds=win,
                        paid=len(rows), markets=[dict(m) for m in settled])

    # --- leaderboard ----------------------------------------------------------------------
    @app.get("/api/leaderboard", tags=["curators"])
    def leaderboard(
        conn: Conn,
        settled_from: Annotated[datetime | None, Query(alias="from", description=(
            "markets settled at or after (ISO 8601 or unix seconds, chain time)"))] = None,
        settled_to: Annotated[datetime | None, Query(alias="to")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict:
        """Curators by earnings over markets settled in the range (ties by name)."""
        h = head(conn)
        lo, hi = epoch(settled_from), epoch(settled_to)
        check_range(lo, hi, "from/to")
        earned = func.coalesce(func.sum(c.c.reward), 0).label("earned")
        q = (select(c.c.predictor, earned, func.count().label("predictions"),
                    func.sum(case((c.c.qualified, 1), else_=0)).label("hits"),
                    func.sum(case((c.c.reward > 0, 1), else_=0)).label("rewarded"))
             .select_from(c.join(s, s.c.post_id == c.c.post_id))
             .where(c.c.status == "settled").group_by(c.c.predictor))
        if lo is not None:
            q = q.where(s.c.time >= lo)
        if hi is not None:
            q = q.where(s.c.time <= hi)
        predictor = code_point(c.c.predictor, dialect)  # the order and the cursor agree
        if cursor:
            e, who = decode_cursor("leaderboard", cursor, (int, str))
            q = q.having(or_(earned < e, and_(earned == e, predictor > literal(who))))
        rows = conn.execute(q.order_by(earned.desc(), predictor).limit(limit + 1)).all()
        items = [{"curator": r.predictor, "earned": int(r.earned), "predictions": r.predictions,
                  "hits": int(r.hits or 0), "rewarded": int(r.rewarded or 0)}
                 for r in rows[:limit]]
        nxt = None
        if len(rows) > limit:
            nxt = encode_cursor("leaderboard", [items[-1]["earned"], items[-1]["curator"]])
        return envelope(h, items=items, next_cursor=nxt,
                        range={"from": _iso(lo), "to": _iso(hi)})

    # --- the page -------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"))

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    # --- the docs, from the package's own copy of Swagger UI and ReDoc ------------------------
    # and the browser is told so: ReDoc's footer logo (cdn.redoc.ly) is never requested
    only_here = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                 "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
                 "worker-src 'self' blob:; connect-src 'self'"}

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}/docs-assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs-assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs-assets/favicon.png",
            # Swagger UI would fetch a badge from validator.swagger.io for every spec
            swagger_ui_parameters={"validatorUrl": None})
        page.headers.update(only_here)
        return page

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}/docs-assets/redoc.standalone.js",
            redoc_favicon_url=f"{root}/docs-assets/favicon.png", with_google_fonts=False)
        page.headers.update(only_here)
        return page

    app.mount("/docs-assets", StaticFiles(directory=str(DOCS_ASSETS)), name="docs-assets")
    return app


def app_from_url(url: str, cfg: MarketConfig | None = None,
                 statement_timeout: float = 5.0, limits: Limits | None = None,
                 currency: str = "SBD") -> FastAPI:
    limits = limits or Limits()
    return create_app(make_engine(url, statement_timeout, limits.active), cfg, limits,
                      currency)
