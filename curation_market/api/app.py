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
* **Cached by block.** ``api/cache.py``: ETag = f(as_of_block, path+query), 304 on
  ``If-None-Match`` and a per-process cache of whole answers, in front of admission; the
  lists and the leaderboard read aggregates the store keeps (docs/api.md "Speed at scale").
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
* **One read model.** The endpoints (one router per resource: ``markets.py``,
  ``curators.py``, ``leaderboard.py``, ``authors.py``, ``status.py``, ``forecasts.py``) hold
  no SQL and no serialisation: they check parameters, call :mod:`indexer.readmodel` and
  wrap its documents with ``as_of_block``, so ``report --format json`` shows a market
  exactly as they do. This module is only the setup: engine, admission, error handlers, the
  page and the docs.
* **Docs offline.** ``/docs`` and ``/redoc`` load Swagger UI and ReDoc from the
  ``fastapi-offline`` package's files, served under ``/docs-assets``: nothing from a CDN.
"""


import asyncio
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import QueuePool
from starlette.exceptions import HTTPException

from curation.market import MarketConfig
from curation_market.api import authors, client, curators, forecasts, leaderboard, markets, status
from curation_market.api.cache import ResponseCache
from curation_market.api.client import ClientSettings
from curation_market.api.common import ApiError, Context, is_timeout

STATIC = resources.files("curation_market.api") / "static"
DOCS_ASSETS = resources.files("fastapi_offline") / "static"  # Swagger UI and ReDoc bundles
log = logging.getLogger("curation.api")


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


_is_timeout = is_timeout  # the name tests and older callers import


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


# --- the app --------------------------------------------------------------------------------

def create_app(engine: Engine, cfg: MarketConfig | None = None,
               limits: Limits | None = None, currency: str = "SBD",
               client_settings: ClientSettings | None = None, cache_entries: int = 4096,
               head_ttl: float = 0.25) -> FastAPI:
    """The API (``/api/...``), its schema (``/openapi.json``), its docs (``/docs``,
    ``/redoc``) and the page (``/``). ``currency`` is the chain's dollar token (SBD on
    Steem, HBD on Hive), the unit of every amount served; ``client_settings`` what only the
    page reads (the node it broadcasts to, the staked rule set: ``/api/client-config``).
    ``cache_entries`` and ``head_ttl``: the answers kept by block and how often the head is
    read for them (api/cache.py)."""
    cfg = cfg or MarketConfig()
    limits = limits or Limits()
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
    # outside admission: a 304 or a kept answer takes neither a request slot nor a connection
    head_engine = make_engine(engine.url.render_as_string(hide_password=False), 1.0, 1)
    app.add_middleware(ResponseCache, engine=head_engine, entries=cache_entries,
                       head_ttl=head_ttl)
    app.state.ctx = Context(engine, cfg, currency)
    app.state.client = client_settings or ClientSettings(chain=cfg.chain)

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

    for router in (status.router, markets.router, curators.router, authors.router,
                   leaderboard.router, client.router, forecasts.router):
        app.include_router(router)

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
                 currency: str = "SBD", client_settings: ClientSettings | None = None,
                 cache_entries: int = 4096) -> FastAPI:
    limits = limits or Limits()
    return create_app(make_engine(url, statement_timeout, limits.active), cfg, limits,
                      currency, client_settings, cache_entries)
