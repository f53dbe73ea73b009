"""Where an uncached API request spends its CPU: one ``serve`` worker with ``--cache-entries 0``
under 200 kept-alive clients (benchmarks/load_api.py's client), sampled by py-spy in GIL mode
(``--gil --nonblocking``: only the thread holding the GIL, the process never paused), each
sample put in one stage by its innermost frame that names one, and the shares scaled to the
server's measured CPU ms per request (``/proc/<pid>/stat``).

    pip install py-spy
    python benchmarks/profile_api.py --db sqlite:///demo.db --seconds 15

Caveats: py-spy does not keep its rate under load, so only the shares are used, never the
sample counts; CPU spent with the GIL released (SQLite's C code, uvloop's socket calls) is
spread over the stages by their GIL shares.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load_api as L  # noqa: E402

STAGES: list[tuple[str, object]] = [  # checked from the innermost frame out; first match wins
    ("DB driver (sqlite3 execute/step)", lambda f, fn, ln: fn in (
        "DefaultDialect.do_execute", "DefaultDialect.do_execute_no_params") or (
        f.endswith("engine/cursor.py") and fn.endswith("fetchone"))),
    ("request log line (logging)", lambda f, fn, ln: f.startswith("logging/")),
    ("SQLAlchemy statement build, cache key, compile", lambda f, fn, ln: f.startswith(
        "sqlalchemy/sql/") or "langhelpers" in f or "_collections.py" in f),
    ("SQLAlchemy pool", lambda f, fn, ln: f.startswith("sqlalchemy/pool/")),
    ("SQLAlchemy rows (result, row)", lambda f, fn, ln: f.startswith((
        "sqlalchemy/engine/cursor.py", "sqlalchemy/engine/result.py",
        "sqlalchemy/engine/row.py"))),
    ("SQLAlchemy execute path", lambda f, fn, ln: f.startswith("sqlalchemy/")),
    ("read model documents (indexer, curation)", lambda f, fn, ln: f.startswith((
        "indexer/", "curation/", "rewards/"))),
    ("orjson response", lambda f, fn, ln: f.endswith("api/common.py") and fn in (
        "respond", "envelope", "_number")),
    ("endpoints (api/*.py)", lambda f, fn, ln: f.startswith("curation_market/api/") and not (
        f.endswith(("api/app.py", "api/cache.py")))),
    ("admission + cache middleware", lambda f, fn, ln: f.endswith((
        "api/app.py", "api/cache.py"))),
    ("thread hand-off (anyio, queue, threading)", lambda f, fn, ln: f.startswith((
        "anyio/", "threading.py", "queue.py")) or "starlette/concurrency" in f
        or f.endswith("fastapi/concurrency.py")),
    ("FastAPI dependencies + validation", lambda f, fn, ln: f.startswith((
        "fastapi/dependencies", "pydantic", "fastapi/_compat", "fastapi/params"))),
    ("Starlette/FastAPI routing + middleware", lambda f, fn, ln: f.startswith((
        "starlette/", "fastapi/"))),
    ("uvicorn protocol (httptools callbacks)", lambda f, fn, ln: f.startswith("uvicorn/")),
    ("asyncio tasks (Python part)", lambda f, fn, ln: f.startswith((
        "asyncio/", "contextlib", "<frozen")) and "runners" not in f),
    ("event loop in C (uvloop I/O, httptools parse)", lambda f, fn, ln: "runners.py" in f),
]
FRAME = re.compile(r"(.*) \((.*?)(?::(\d+))?\)$")


def stage(frames: list[str], root: str) -> str:
    if not frames:
        return "GIL held, no Python frame (C code)"
    for fr in reversed(frames):
        m = FRAME.match(fr)
        if not m:
            continue
        fn, f, ln = m.group(1), m.group(2), int(m.group(3) or 0)
        f = re.sub(r"^.*site-packages/", "", f).removeprefix(root + "/")
        for name, pred in STAGES:
            if pred(f, fn, ln):  # type: ignore[operator]
                return name
    return "other"


def shares(raw: Path, root: str) -> collections.Counter[str]:
    c: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if n.isdigit():  # py-spy may leave a line cut short when it stops
            c[stage(stack.split(";")[1:], root)] += int(n)
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--rate", type=int, default=250)
    args = ap.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = Path(tempfile.mkdtemp(prefix="profile_api_"))
    srv, port = L.start_server(args.db, 1, 0)
    try:
        paths = {"market detail": L.detail_paths(port, 2000),
                 "leaderboard": L.leaderboard_paths(port)}
        for ps in paths.values():  # warm: compiled-statement cache, windows, pool
            asyncio.run(L.scenario(port, ps, 20, 200, 10))
        for scen, ps in paths.items():
            raw = out / f"{scen.split()[0]}.txt"
            p = subprocess.Popen([spy, "record", "-r", str(args.rate), "-p", str(srv.pid),
                                  "--nonblocking", "--gil", "-f", "raw", "-o", str(raw),
                                  "-d", str(int(args.seconds) + 2)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.5)
            st0 = Path(f"/proc/{srv.pid}/stat").read_text().split()
            r = asyncio.run(L.scenario(port, ps, args.clients, 10**9, args.seconds))
            st1 = Path(f"/proc/{srv.pid}/stat").read_text().split()
            p.wait(60)
            cpu = (int(st1[13]) + int(st1[14]) - int(st0[13]) - int(st0[14])) \
                / os.sysconf("SC_CLK_TCK")
            ms = 1000 * cpu / r["requests"]
            print(f"{scen}: {r['requests']} requests, {r['errors'].total()} errors, "
                  f"{r['rps']:.0f} req/s, p50 {r['p50']:.0f} ms, p99 {r['p99']:.0f} ms; "
                  f"server CPU {ms:.2f} ms per request (load average "
                  f"{os.getloadavg()[0]:.1f}); raw samples {raw}")
            c = shares(raw, str(L.ROOT))
            total = c.total()
            for name, n in c.most_common():
                print(f"  {100 * n / total:5.1f} %  {ms * n / total:5.2f} ms  {name}")
    finally:
        L.stop(srv)


if __name__ == "__main__":
    main()
