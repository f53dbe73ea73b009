"""Load on the HTTP API: p50/p99 latency and errors at N concurrent clients (httpx async).

Loopback only and bounded: a real uvicorn server is started on 127.0.0.1 (ephemeral port) over
the given database, each scenario sends at most ``--requests`` requests or runs at most
``--seconds`` seconds, whichever comes first. Scenarios: market detail (the settled markets
with predictions, round robin) and the leaderboard (whole range and a one-week range).

    python -m curation_market demo --db sqlite:////tmp/demo.db     # the real demo database
    python benchmarks/load_api.py --db sqlite:////tmp/demo.db
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx


def start_server(url: str) -> tuple[subprocess.Popen, str]:
    """``curation-market serve`` in its own process (the client must not share its GIL)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "curation_market", "serve", "--db", url,
                             "--port", str(port), "--host", "127.0.0.1"], cwd=root,
                            env={**os.environ, "PYTHONPATH": str(root)})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/api/status").status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


async def scenario(base: str, paths: list[str], clients: int, total: int,
                   seconds: float) -> dict:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    sent = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent, errors
        while sent < total and time.perf_counter() < deadline:
            path = paths[sent % len(paths)]
            sent += 1
            t0 = time.perf_counter()
            try:
                r = await client.get(path)
                if r.status_code != 200 or "as_of_block" not in r.json():
                    errors[f"HTTP {r.status_code}: {r.text[:80]}"] += 1
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] += 1
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    wall = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    return {"requests": len(latencies), "errors": errors, "p50_ms": q[49] * 1000,
            "p99_ms": q[98] * 1000, "rps": len(latencies) / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="SQLAlchemy URL of a replayed database")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=3000, help="per scenario, at most")
    ap.add_argument("--seconds", type=float, default=30.0, help="per scenario, at most")
    args = ap.parse_args()
    srv, base = start_server(args.db)
    markets, cursor = [], None
    with httpx.Client(base_url=base) as c:
        while True:
            body = c.get("/api/markets", params={"phase": "settled", "limit": 200,
                                                 **({"cursor": cursor} if cursor else {})}
                         ).json()
            markets += [m for m in body["items"] if m["n_commits"]]
            cursor = body["next_cursor"]
            if not cursor:
                break
    detail = [f"/api/markets/{m['author']}/{m['permlink']}" for m in markets]
    board = ["/api/leaderboard?limit=50",
             "/api/leaderboard?from=2017-10-20T00:00:00&to=2017-10-27T00:00:00"]
    print(f"API load: {args.clients} concurrent clients, loopback, database {args.db}, "
          f"{os.cpu_count()} cores, one server process, load average before "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'scenario':<16}{'requests':>9}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>8}")
    for name, paths in (("market detail", detail), ("leaderboard", board)):
        r = asyncio.run(scenario(base, paths, args.clients, args.requests, args.seconds))
        print(f"{name:<16}{r['requests']:>9}{r['errors'].total():>8}{r['p50_ms']:>9.1f}"
              f"{r['p99_ms']:>9.1f}{r['rps']:>8.0f}")
        for what, n in r["errors"].most_common():
            print(f"    {n} × {what}")
    print(f"({len(detail)} settled markets with predictions, round robin)")
    srv.terminate()
    srv.wait(10)


if __name__ == "__main__":
    main()
