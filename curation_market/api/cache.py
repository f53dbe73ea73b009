"""Answers cached by the block they are as of: ``ETag``, ``If-None-Match`` → 304, and a
bounded in-process cache of whole responses.

Every ``/api/`` answer but ``/api/status`` is a function of the indexed head and the request's
path and query (chain time only; the config is fixed for the process), so
``ETag = "<as_of_block>-<hash of path?query>"`` names its bytes exactly: a client that sends
it back in ``If-None-Match`` while the head has not moved gets ``304 Not Modified`` without a
database query, and a repeated request is answered from memory. ``Cache-Control: no-cache``
lets browsers and proxies keep the answer but revalidate it each time (one new block every
3 s makes any ``max-age`` a guess). ``/api/status`` says the wall-clock lag: ``no-store``.

The head is read from its own one-connection engine at most every ``head_ttl`` seconds
(0.25 by default): a 304 or a cached answer may lag a just-written batch by that long,
which is less than one block. A miss always runs the endpoint, which reads the head itself,
and is stored under the block its body says it is as of.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections import OrderedDict
from typing import Any

from sqlalchemy import Engine, select

from indexer import schema as t

log = logging.getLogger("curation.api")
AS_OF = re.compile(rb'^\{"as_of_block":(\d+),')  # every envelope starts so (common.envelope)
NOT_CACHED = ("/api/status",)
MAX_BODY = 1 << 20  # larger answers are served, not kept
MAX_BYTES = 64 << 20  # all kept answers of one process together


def etag(block: int, target: str) -> str:
    digest = hashlib.blake2b(target.encode("utf-8", "surrogateescape"), digest_size=8)
    return f'"{block}-{digest.hexdigest()}"'


def matches(if_none_match: str, tag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison, any of a list, or ``*``."""
    for part in if_none_match.split(","):
        part = part.strip()
        if part == "*" or part.removeprefix("W/") == tag:
            return True
    return False


class ResponseCache:
    """ASGI middleware outside admission: a 304 or a kept answer takes no request slot and no
    database connection. Hits are logged like every request (``cached``)."""

    def __init__(self, app: Any, engine: Engine, entries: int = 4096,
                 head_ttl: float = 0.25):
        self.app, self.engine = app, engine
        self.entries, self.head_ttl = entries, head_ttl
        self.kept: OrderedDict[tuple[int, str], tuple[int, list, bytes]] = OrderedDict()
        self.kept_bytes = 0
        self._head: int | None = None
        self._read_at = -float("inf")
        self.hits = self.misses = self.not_modified = 0

    def head_block(self) -> int | None:
        now = time.monotonic()
        if now - self._read_at >= self.head_ttl:
            try:
                with self.engine.connect() as conn:
                    self._head = conn.execute(select(t.meta.c.last_block)
                                              .where(t.meta.c.id == 1)).scalar()
            except Exception:  # noqa: BLE001 - no tables yet: the endpoint says what to run
                self._head = None
            self._read_at = now
        return self._head

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/api/") or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        if path in NOT_CACHED:
            await self.app(scope, receive, _with_headers(send, [(b"cache-control",
                                                                 b"no-store")]))
            return
        query = scope.get("query_string", b"").decode("latin-1")
        target = f"{path}?{query}" if query else path
        block = self.head_block()
        if block is not None:
            tag = etag(block, target)
            inm = _header(scope, b"if-none-match")
            if inm is not None and matches(inm, tag):
                self.not_modified += 1
                await _send(send, 304, [(b"etag", tag.encode()),
                                        (b"cache-control", b"no-cache")], b"")
                log.info("GET %s 304 cached", target)
                return
            kept = self.kept.get((block, target))
            if kept is not None:
                self.hits += 1
                self.kept.move_to_end((block, target))
                await _send(send, *kept)
                log.info("GET %s %d cached", target, kept[0])
                return
        self.misses += 1
        await self._run(scope, receive, send, target)

    async def _run(self, scope: dict, receive: Any, send: Any, target: str) -> None:
        """The endpoint's answer, held until complete (API answers are small JSON), given its
        ETag from the block its body is as of, and kept if it is a 200."""
        start: dict | None = None
        chunks: list[bytes] = []

        async def hold(message: dict) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            headers = [(k, v) for k, v in start.get("headers", [])
                       if k.lower() not in (b"etag", b"cache-control")]
            found = AS_OF.match(body[:40]) if start["status"] == 200 else None
            if found is None:
                headers.append((b"cache-control", b"no-store"))
                await _send(send, start["status"], headers, body)
                return
            block = int(found.group(1))
            headers += [(b"etag", etag(block, target).encode()),
                        (b"cache-control", b"no-cache")]
            if len(body) <= MAX_BODY and self.entries:
                old = self.kept.pop((block, target), None)
                self.kept_bytes += len(body) - (len(old[2]) if old else 0)
                self.kept[(block, target)] = (200, headers, body)
                while len(self.kept) > self.entries or self.kept_bytes > MAX_BYTES:
                    self.kept_bytes -= len(self.kept.popitem(last=False)[1][2])
            await _send(send, 200, headers, body)

        await self.app(scope, receive, hold)


def _header(scope: dict, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k.lower() == name:
            return v.decode("latin-1")
    return None


def _with_headers(send: Any, extra: list[tuple[bytes, bytes]]) -> Any:
    async def sending(message: dict) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)
    return sending


async def _send(send: Any, status: int, headers: list, body: bytes) -> None:
    headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    if status != 304:  # a 304 has no body and says nothing of its length
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
