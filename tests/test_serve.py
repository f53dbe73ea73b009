"""``curation-market serve`` as a real process on loopback over the demo database.

A burst of concurrent requests is either served or shed with 503 and ``Retry-After``; it never
deadlocks, never answers 500 (before the fix: 120 concurrent requests gave 40 × 500 after the
pool's 30 s timeout and the rest timed out). Each request is logged. ``/docs`` and ``/redoc``
load every asset from the server itself (before: Swagger UI and ReDoc from a CDN, a blank page
offline). Every request loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS

ROOT = Path(__file__).parent.parent
CHROMIUM = Path("/usr/bin/chromium")


@contextmanager
def serve(url: str, log: Path, *extra: str) -> Iterator[str]:
    """``python -m curation_market serve --port 0`` in its own process; yields its base URL."""
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "curation_market", "serve", "--db", url,
                                 "--port", "0", *extra], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=err)
    try:
        deadline = time.monotonic() + 30
        base = None
        while time.monotonic() < deadline and proc.poll() is None:
            m = re.search(r"on (http://127\.0\.0\.1:\d+)/", log.read_text(errors="replace"))
            if m:
                base = m.group(1)
                try:
                    if httpx.get(base + "/api/status", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        else:
            pytest.fail(f"serve did not start: {log.read_text(errors='replace')[-2000:]}")
        assert base
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:  # a wedged server is a failure, but never a leak
            proc.kill()
            proc.wait(5)
            pytest.fail("serve did not stop within 10 s of SIGTERM")


def detail_paths(base: str) -> list[str]:
    body = httpx.get(base + "/api/markets", params={"phase": "settled", "with_commits": 1,
                                                    "limit": 200}, timeout=10).json()
    paths = [f"/api/markets/{m['author']}/{m['permlink']}" for m in body["items"]]
    assert len(paths) >= 10
    return paths


def burst(base: str, paths: list[str], n: int, timeout: float) -> list[tuple]:
    """``n`` requests at once, each on its own connection; (status or error, Retry-After)."""
    async def run() -> list[tuple]:
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as client:
            async def one(i: int) -> tuple:
                try:
                    r = await client.get(paths[i % len(paths)])
                except httpx.HTTPError as exc:
                    return (type(exc).__name__, None, "")
                return (r.status_code, r.headers.get("retry-after"), r.text[:200])
            return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))),
                                          timeout + 15)
    return asyncio.run(run())


@pytest.fixture(params=BACKENDS)
def demo_url(request: pytest.FixtureRequest, demo_db, tmp_path: Path) -> Iterator[str]:
    """The demo database on SQLite, or replayed into a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield demo_db["url"]
        return
    from rich.console import Console

    from curation_market.lab.demo import run_demo
    from tests.conftest import PG_URL, PgDatabases

    pg = PgDatabases(PG_URL)
    try:
        url = pg.new()
        run_demo(url, tmp_path / "blocks.jsonl", 17, Console(quiet=True))
        yield url
    finally:
        pg.drop_all()


def test_a_burst_is_served_never_deadlocked(demo_url: str, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with serve(demo_url, log) as base:
        paths = detail_paths(base)
        started = time.monotonic()
        results = burst(base, paths, 200, timeout=20)
        took = time.monotonic() - started
        statuses = [r[0] for r in results]
        assert set(statuses) <= {200, 503}, sorted({str(s) for s in statuses})
        assert statuses.count(200) >= 100  # 16 at a time, 256 may wait: all fit here
        for status, retry, body in results:
            if status == 503:
                assert retry and int(retry) >= 1 and "retry after" in body
        assert took < 20, f"200 requests took {took:.1f} s"
        assert httpx.get(base + "/api/status", timeout=5).status_code == 200
    lines = log.read_text()
    # one line per request: method, path, status, milliseconds
    assert re.search(r"INFO GET /api/markets/\S+ 200 \d+\.\d ms", lines)
    assert len(re.findall(r"GET /api/markets/\S+ (?:200|503) ", lines)) == 200


def test_overload_is_shed_with_retry_after(demo_db, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with serve(demo_db["url"], log, "--max-active", "2", "--max-queue", "3",
               "--queue-timeout", "2") as base:
        paths = detail_paths(base)
        results = burst(base, paths, 60, timeout=20)
        statuses = [r[0] for r in results]
        assert set(statuses) <= {200, 503}, sorted({str(s) for s in statuses})
        assert statuses.count(200) >= 2 and statuses.count(503) >= 10
        shed = [r for r in results if r[0] == 503]
        assert all(r[1] and 1 <= int(r[1]) <= 60 for r in shed)
        assert all('"status":503' in r[2] and "server busy" in r[2] for r in shed)
        # the server is not wedged: the next request is served at once
        assert httpx.get(base + "/api/status", timeout=5).status_code == 200
    assert re.search(r"GET /api/markets/\S+ 503 \d+\.\d ms shed \(2 running, 3 waiting\)",
                     log.read_text())


ASSET = re.compile(r"""(?:src|href|url|spec-url)\s*[=:]\s*["']([^"']+)["']""")


def test_docs_pages_reference_no_external_host(demo_db, tmp_path: Path) -> None:
    with serve(demo_db["url"], tmp_path / "serve.log") as base:
        for page in ("/docs", "/redoc"):
            html = httpx.get(base + page, timeout=5)
            assert html.status_code == 200
            refs = ASSET.findall(html.text)
            assert len(refs) >= 2, refs
            external = [u for u in refs if "//" in u]
            assert not external, f"{page} loads {external}"
            for ref in refs:
                r = httpx.get(base + ref, timeout=10)
                assert r.status_code == 200 and len(r.content) > 1000, (ref, r.status_code)
            assert "googleapis" not in html.text and "cdn." not in html.text


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed "
                    "(apt-get install -y chromium; .ci/run does)")
def test_docs_render_offline_in_a_browser(demo_db, tmp_path: Path) -> None:
    """Every request the pages make goes to the server itself (ReDoc's footer logo on
    cdn.redoc.ly is stopped by the page's Content-Security-Policy, inside the browser), and
    both pages render the API."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with serve(demo_db["url"], tmp_path / "serve.log") as base, \
            sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            for path, ready in (("/docs", ".opblock-summary-path"),
                                ("/redoc", "h1:has-text('curation-market API')")):
                page = browser.new_page()
                loaded: list[str] = []
                failed: list[tuple[str, str | None]] = []
                page.on("requestfinished", lambda req, out=loaded: out.append(req.url))
                page.on("requestfailed", lambda req, out=failed: out.append((req.url,
                                                                             req.failure)))
                page.goto(base + path)
                page.wait_for_selector(ready, timeout=20_000)
                page.wait_for_load_state("networkidle", timeout=10_000)
                here = (base, "blob:" + base)
                assert any(u.endswith("/openapi.json") for u in loaded), loaded
                assert all(u.startswith(here) for u in loaded), loaded
                assert all(why == "csp" for u, why in failed if not u.startswith(here)), failed
                page.close()
        finally:
            browser.close()


def test_workers_serve_from_several_processes(demo_db, tmp_path: Path) -> None:
    """``--workers 2``: two server processes under the supervisor, both answering on the one
    port, with the ETag of the same block; SIGTERM stops them all."""
    import os

    log = tmp_path / "serve.log"
    with serve(demo_db["url"], log, "--workers", "2") as base:
        pids = set()
        deadline = time.monotonic() + 20
        while len(pids) < 2 and time.monotonic() < deadline:  # the workers start in turn
            parent = next(int(p) for p in os.listdir("/proc") if p.isdigit() and
                          f"--db{chr(0)}{demo_db['url']}" in Path(f"/proc/{p}/cmdline")
                          .read_text(errors="replace") and "--workers" in
                          Path(f"/proc/{p}/cmdline").read_text(errors="replace"))
            pids = {int(c) for t in Path(f"/proc/{parent}/task").iterdir()
                    for c in (t / "children").read_text().split()}
            time.sleep(0.2)
        assert len(pids) >= 2, pids  # the workers (and nothing else of ours)
        tags = set()
        for _ in range(20):  # fresh connections: the kernel spreads them over the workers
            r = httpx.get(base + "/api/leaderboard", timeout=10)
            assert r.status_code == 200
            tags.add(r.headers["etag"])
        assert len(tags) == 1
    def alive(pid: int) -> bool:
        try:
            return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
        except OSError:
            return False

    deadline = time.monotonic() + 15
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in pids if alive(p)]  # the supervisor took its workers down
