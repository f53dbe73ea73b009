"""Load on the HTTP API: p50/p99 and errors at 200 concurrent kept-alive clients, on the demo
database and on a year-scale one (≥ 5 M commits) built through the real ingest path.

    python benchmarks/load_api.py --db sqlite:////tmp/demo.db               # demo only
    URL=$(.ci/pg-start.sh)
    python benchmarks/load_api.py --db sqlite:////tmp/demo.db --big "$URL" --commits 5000000
    python benchmarks/load_api.py --keepalive --db sqlite:////tmp/demo.db   # the 44 ms stall

**The big database.** A seeded generator writes a year of blocks (condenser-encoded block
dicts, as a block file holds them): each market is a real ``comment`` with a vote, its
curators' ``custom_json`` commits inside the commit window and reveals inside the reveal
period (real commitments, :mod:`curation_market.curator.ops`), and its ``comment_reward`` +
``comment_payout_update`` a week later. The blocks go straight into
:class:`indexer.ingest.Ingester` (``keep_rows``, as ``replay``) over the given PostgreSQL URL,
which is emptied first; curators get Steem Power through ``Store.add_account_snapshot``, as
the demo's do. No row is written by SQL here. The database is reused while its
``bench_params`` row matches every generation parameter (and the checkpoint is the last
block); otherwise it is rebuilt. ``--build-only`` stops after building.

**The load.** A real ``curation-market serve`` (``--workers``) on loopback; the clients are
plain asyncio streams speaking HTTP/1.1 with keep-alive (lighter than an HTTP library, so on
this 2-core machine the client takes less of the CPU it shares with the server). Scenarios:
market detail (settled markets with predictions, round robin) and the leaderboard (whole
range, a one-week range). Each scenario runs in ``--rounds`` interleaved rounds (demo, big,
demo, big, ...), and the figures printed are min and median over the rounds. A server with
``--cache-entries 0`` is measured beside the default one: it runs every request against the
database, and the default one answers repeated URLs from its per-block cache.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curation.chaintime import format_time  # noqa: E402
from curation.state import Account  # noqa: E402
from curation_market.config import Settings  # noqa: E402
from curation_market.curator.ops import commit_payload, custom_json_op, reveal_payload  # noqa: E402
from indexer.postdump import STEEM_17M, Anchor, block_id, sbd  # noqa: E402

GENERATOR_VERSION = 1  # bump when the generated chain changes
DAY, YEAR = 86400, 365 * 86400


# --- the big database --------------------------------------------------------------------------

def generate(commits: int, per_market: int, curators: int, seed: int,
             market_id: str, chain_id: str) -> Iterator[dict]:
    """A year of blocks holding ``commits`` commits, ``per_market`` per market, in block order.

    Markets are created evenly over the year; a market's events span a week (its payout), so
    blocks are released once no later market can add to them."""
    rng = random.Random(seed)
    markets = max(1, commits // per_market)
    anchor = Anchor.of(*STEEM_17M)
    start = anchor.time - YEAR
    step = YEAR / markets
    names = [f"cur-{j:05d}" for j in range(curators)]
    skill = [rng.uniform(0.05, 0.6) for _ in range(curators)]
    pending: dict[int, list[tuple[tuple, str, list]]] = {}

    def put(t: int, order: tuple, kind: str, op: list) -> None:
        pending.setdefault(anchor.block_at(t), []).append(((t, *order), kind, op))

    def release(before: int) -> Iterator[dict]:
        for num in sorted(b for b in pending if b < before):
            items = sorted(pending.pop(num), key=lambda e: e[0])
            yield {"block_num": num, "block_id": block_id(num, "load"),
                   "previous": block_id(num - 1, "load"),
                   "timestamp": format_time(anchor.time_of(num)),
                   "transactions": [{"operations": [op]} for _, k, op in items if k == "tx"],
                   "virtual_ops": [op for _, k, op in items if k == "vop"]}

    for i in range(markets):
        created = start + int(i * step)
        yield from release(anchor.block_at(created))
        author, permlink = f"author-{i % 7919:04d}", f"market-{i}"
        final = int(rng.lognormvariate(8.0, 1.2))  # milli-units: ~3 SBD median
        put(created, (0, i), "tx", ["comment", {
            "parent_author": "", "parent_permlink": f"tag{i % 50}", "author": author,
            "permlink": permlink, "title": "", "body": "", "json_metadata": ""}])
        voter = names[rng.randrange(curators)]
        put(created + 60, (1, i), "tx", ["vote", {"voter": voter, "author": author,
                                                  "permlink": permlink, "weight": 10000}])
        put(created + 60, (1, i), "vop", ["effective_comment_vote", {
            "voter": voter, "author": author, "permlink": permlink, "weight": 1000,
            "rshares": 10_000_000 + final * 1000}])
        for j in rng.sample(range(curators), min(per_market, curators)):
            who = names[j]
            prediction = max(1, int(final * rng.lognormvariate(0, skill[j])))
            salt = hashlib.blake2b(f"{seed}-{i}-{j}".encode(), digest_size=32).digest()
            t_commit = created + rng.randint(60, 1700)
            put(t_commit, (2, i, j), "tx", custom_json_op(market_id, who, commit_payload(
                chain_id, author, permlink, who, prediction, salt)))
            if rng.random() < 0.9:  # a tenth never reveal
                put(created + 1800 + rng.randint(60, 6 * 3600 - 60), (3, i, j), "tx",
                    custom_json_op(market_id, who, reveal_payload(author, permlink,
                                                                  prediction, salt)))
        paid = created + 7 * DAY
        curator_part = final // 4
        put(paid, (4, i), "vop", ["comment_reward", {
            "author": author, "permlink": permlink, "payout": sbd(final),
            "total_payout_value": sbd(final - curator_part),
            "curator_payout_value": sbd(curator_part), "beneficiary_payout_value": sbd(0)}])
        put(paid, (5, i), "vop", ["comment_payout_update", {"author": author,
                                                            "permlink": permlink}])
    yield from release(1 << 62)


def build_big(url: str, commits: int, per_market: int, curators: int, seed: int) -> dict:
    """The big database at ``url`` for these parameters: reused if it holds them, else
    emptied and built through the ingest path. Returns what it holds."""
    from sqlalchemy import create_engine, text

    from curation_market.config import Market
    from indexer.ingest import Ingester, fewer_collections
    from indexer.store import Store

    params = {"generator": GENERATOR_VERSION, "commits": commits, "per_market": per_market,
              "curators": curators, "seed": seed}
    key = json.dumps(params, sort_keys=True)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_params (params TEXT NOT NULL)"))
        have = conn.execute(text("SELECT params FROM bench_params")).scalar()
    if have == key:
        with engine.connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM commits")).scalar_one()
        print(f"big database reused: {n:,} commits ({key})", flush=True)
        return {"commits": n, "reused": True}
    print(f"building the big database ({key}) ...", flush=True)
    with engine.begin() as conn:  # emptied: everything but the server's own tables
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    settings = Settings(market=Market(include_replies=True))
    cfg = settings.market_config()
    store = Store(engine, cfg.chain_id, cfg.rules.label)
    store.set_globals(1000, 1000)
    rng = random.Random(seed + 1)
    store.add_account_snapshot([Account(f"cur-{j:05d}",
                                        vesting_shares=int(rng.lognormvariate(14, 1.5)))
                                for j in range(curators)])
    ing = Ingester(store, cfg, batch_blocks=20_000, keep_rows=True)
    started = time.monotonic()
    with fewer_collections():
        stats = ing.run(generate(commits, per_market, curators, seed, cfg.market_id,
                                 cfg.chain_id))
    took = time.monotonic() - started
    with engine.begin() as conn:
        n = conn.execute(text("SELECT count(*) FROM commits")).scalar_one()
        conn.execute(text("ANALYZE"))
        conn.execute(text("CREATE TABLE bench_params (params TEXT NOT NULL)"))
        conn.execute(text("INSERT INTO bench_params VALUES (:p)"), {"p": key})
    print(f"built: {n:,} commits, {stats.blocks:,} blocks, {stats.ops:,} ops in {took:.0f} s "
          f"({stats.ops / took:,.0f} ops/s)", flush=True)
    return {"commits": n, "reused": False, "seconds": took}


# --- the server and the clients ------------------------------------------------------------

def start_server(url: str, workers: int, cache_entries: int | None) -> tuple[subprocess.Popen,
                                                                              int]:
    """``curation-market serve`` in its own process (the client must not share its GIL)."""
    extra = ["--workers", str(workers)]
    if cache_entries is not None:
        extra += ["--cache-entries", str(cache_entries)]
    log = Path(tempfile.mkdtemp(prefix="load_api_")) / "serve.log"
    with log.open("wb") as err:  # the request log goes to a file: no reader in this process
        proc = subprocess.Popen([sys.executable, "-m", "curation_market", "serve", "--db", url,
                                 "--port", "0", "--host", "127.0.0.1", *extra], cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)},
                                stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 60
    port = 0
    while time.monotonic() < deadline and proc.poll() is None and not port:
        text = log.read_text(errors="replace")
        if " on http://127.0.0.1:" in text:
            port = int(text.split(" on http://127.0.0.1:")[1].split("/")[0])
        time.sleep(0.1)
    if not port:
        proc.kill()
        raise SystemExit(f"the server did not start: {log.read_text(errors='replace')[-500:]}")
    for _ in range(200):
        try:
            if _get_sync(port, "/api/status")[0] == 200:
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server does not answer")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise OSError("closed")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    length = next(int(v) for k, _, v in (ln.partition(b":") for ln in lines[1:])
                  if k.strip().lower() == b"content-length")
    while len(body) < length:
        body += sock.recv(65536)
    return int(lines[0].split()[1]), body


def _get_sync(port: int, path: str) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: load\r\nConnection: close\r\n\r\n".encode())
        return _read_response(s)


def keepalive(port: int, path: str, n: int = 60) -> tuple[float, float]:
    """Median ms per request over one kept-alive connection, and over fresh ones."""
    kept, fresh = [], []
    req = f"GET {path} HTTP/1.1\r\nHost: load\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port)) as s:
        for _ in range(n):
            t0 = time.perf_counter()
            s.sendall(req)
            _read_response(s)
            kept.append(time.perf_counter() - t0)
    for _ in range(n):
        t0 = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(req)
            _read_response(s)
        fresh.append(time.perf_counter() - t0)
    return statistics.median(kept[5:]) * 1000, statistics.median(fresh[5:]) * 1000


async def scenario(port: int, paths: list[str], clients: int, total: int,
                   seconds: float) -> dict:
    """``clients`` kept-alive connections sending ``total`` requests between them."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    sent = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal sent
        reader = writer = None
        while sent < total and time.perf_counter() < deadline:
            path = paths[sent % len(paths)]
            sent += 1
            t0 = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                assert reader is not None
                writer.write(f"GET {path} HTTP/1.1\r\nHost: load\r\n\r\n".encode())
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                lines = head.split(b"\r\n")
                status = int(lines[0].split()[1])
                length = next(int(v) for k, _, v in (ln.partition(b":") for ln in lines[1:])
                              if k.strip().lower() == b"content-length")
                body = await asyncio.wait_for(reader.readexactly(length), 30)
                if status != 200 or not body.startswith(b'{"as_of_block":'):
                    errors[f"HTTP {status}: {body[:80]!r}"] += 1
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError,
                    StopIteration) as exc:
                errors[type(exc).__name__] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
            latencies.append(time.perf_counter() - t0)
        if writer is not None:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    return {"requests": len(latencies), "errors": errors, "p50": q[49] * 1000,
            "p99": q[98] * 1000, "rps": len(latencies) / wall}


def detail_paths(port: int, most: int) -> list[str]:
    """Settled markets with predictions (walking the cursor), at most ``most``."""
    paths: list[str] = []
    cursor = None
    while len(paths) < most:
        q = "/api/markets?phase=settled&with_commits=true&limit=200" + \
            (f"&cursor={cursor}" if cursor else "")
        body = json.loads(_get_sync(port, q)[1])
        paths += [f"/api/markets/{m['author']}/{m['permlink']}" for m in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    random.Random(5).shuffle(paths)
    return paths[:most]


def leaderboard_paths(port: int) -> list[str]:
    body = json.loads(_get_sync(port, "/api/status")[1])
    head = body["as_of_time"] or "2017-11-07T00:00:00"
    end = time.strptime(head[:10], "%Y-%m-%d")
    to = time.strftime("%Y-%m-%dT00:00:00", end)
    frm = time.strftime("%Y-%m-%dT00:00:00", time.gmtime(time.mktime(end) - 7 * DAY))
    return ["/api/leaderboard?limit=50", f"/api/leaderboard?from={frm}&to={to}&limit=50"]


def queries(url: str, rounds: int) -> None:
    """The read model's queries against the per-request GROUP BY ones they replaced (main
    before issue 13, rebuilt here), on one connection, interleaved, ms min–median."""
    from sqlalchemy import func, select, text

    from curation.phase import Windows
    from curation_market.api.app import make_engine
    from indexer import readmodel as rm
    from indexer import schema as t

    p, s, c = t.posts, t.settlements, t.commits

    def old_markets(conn: object, *where: object, limit: int = 51) -> list:
        cc = (select(c.c.post_id, func.count().label("n_commits"),
                     func.count(c.c.reveal_block).label("n_revealed"))
              .group_by(c.c.post_id).subquery("cc"))
        q = (select(p, cc.c.n_commits, cc.c.n_revealed, s.c.pool)
             .select_from(p.outerjoin(cc, cc.c.post_id == p.c.id)
                          .outerjoin(s, s.c.post_id == p.c.id))
             .where(p.c.is_market, *where).order_by(p.c.id.desc()).limit(limit))
        return conn.execute(q).all()  # type: ignore[attr-defined]

    engine = make_engine(url, statement_timeout=120)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM commits")).scalar()
        a, pl = conn.execute(text("SELECT author, permlink FROM posts WHERE paid_block IS NOT "
                                  "NULL ORDER BY id DESC LIMIT 1")).one()
        hi = conn.execute(text("SELECT max(time) FROM settlements")).scalar()
        week = (hi - 7 * DAY, hi)
        cases = {
            "market detail row": (lambda: old_markets(conn, p.c.author == a,
                                                      p.c.permlink == pl, limit=1),
                                  lambda: rm.market(conn, a, pl)),
            "markets list (50)": (lambda: old_markets(conn),
                                  lambda: rm.markets(conn, Windows(), hi, limit=51)),
            "leaderboard, all": (lambda: rm.leaderboard_recomputed(conn, limit=51),
                                 lambda: rm.leaderboard(conn, limit=51)),
            "leaderboard, a week": (lambda: rm.leaderboard_recomputed(conn, *week, limit=51),
                                    lambda: rm.leaderboard(conn, *week, limit=51)),
        }
        print(f"{url.split('@')[-1]}: {n:,} commits; ms per query, {rounds} interleaved "
              "rounds, min–median")
        for name, (old, new) in cases.items():
            before, after = [], []
            for _ in range(rounds):
                for fn, into in ((old, before), (new, after)):
                    t0 = time.perf_counter()
                    fn()
                    into.append((time.perf_counter() - t0) * 1000)
            print(f"  {name:<22} before {spread(before):>15}   after {spread(after):>13}")


def spread(values: list[float]) -> str:
    return f"{min(values):.1f}–{statistics.median(values):.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="SQLAlchemy URL of the demo database (any replayed one)")
    ap.add_argument("--big", help="PostgreSQL URL for the big database (emptied if its "
                                  "parameters differ)")
    ap.add_argument("--commits", type=int, default=5_000_000)
    ap.add_argument("--per-market", type=int, default=25)
    ap.add_argument("--curators", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--as-is", action="store_true",
                    help="load the --big database as it is (e.g. a build still running or "
                         "stopped: every committed batch is a consistent prefix)")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--requests", type=int, default=4000, help="per scenario and round")
    ap.add_argument("--seconds", type=float, default=30.0, help="per scenario and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--markets", type=int, default=2000, help="market detail URLs per db")
    ap.add_argument("--no-uncached", action="store_true",
                    help="skip the server without the response cache")
    ap.add_argument("--queries", action="store_true",
                    help="only: each query against the per-request GROUP BY it replaced")
    ap.add_argument("--keepalive", action="store_true",
                    help="only: ms per request over a kept-alive vs fresh connections")
    args = ap.parse_args()
    if args.big and not args.as_is:
        built = build_big(args.big, args.commits, args.per_market, args.curators, args.seed)
        if args.build_only:
            return
        del built
    dbs = [(name, url) for name, url in (("demo", args.db), ("big", args.big)) if url]
    if not dbs:
        raise SystemExit("give --db and/or --big")
    if args.queries:
        for _name, url in dbs:
            queries(url, args.rounds)
        return
    if args.keepalive:
        for name, url in dbs:
            srv, port = start_server(url, 1, 0)
            try:
                for path in ("/api/status", "/api/leaderboard?limit=5"):
                    ka, fresh = keepalive(port, path)
                    print(f"{name} {path}: kept-alive {ka:.1f} ms, fresh connection "
                          f"{fresh:.1f} ms (median of 55)")
            finally:
                stop(srv)
        return
    modes = [("cached", None)] + ([] if args.no_uncached else [("uncached", 0)])
    servers = {}
    try:
        for name, url in dbs:
            for mode, entries in modes:
                servers[(name, mode)] = start_server(url, args.workers, entries)
        paths = {}
        for name, _ in dbs:
            port = servers[(name, modes[0][0])][1]
            paths[name] = {"market detail": detail_paths(port, args.markets),
                           "leaderboard": leaderboard_paths(port)}
        print(f"API load: {args.clients} concurrent kept-alive clients (asyncio streams), "
              f"loopback, serve --workers {args.workers}, {os.cpu_count()} cores, load "
              f"average {os.getloadavg()[0]:.1f}; {args.rounds} interleaved rounds, "
              f"≤ {args.requests} requests or {args.seconds:.0f} s per scenario and round")
        for name, url in dbs:
            print(f"  {name}: {url.split('@')[-1]}, {len(paths[name]['market detail'])} "
                  f"market detail URLs")
        results: dict[tuple, list[dict]] = {}
        for _ in range(args.rounds):
            for name, _url in dbs:
                for mode, _ in modes:
                    port = servers[(name, mode)][1]
                    for scen, ps in paths[name].items():
                        r = asyncio.run(scenario(port, ps, args.clients, args.requests,
                                                 args.seconds))
                        results.setdefault((name, mode, scen), []).append(r)
        print(f"{'db':<6}{'server':<10}{'scenario':<15}{'requests':>9}{'errors':>7}"
              f"{'p50 ms min–med':>16}{'p99 ms min–med':>16}{'req/s min–med':>16}")
        for (name, mode, scen), rs in results.items():
            errs = sum(r["errors"].total() for r in rs)
            print(f"{name:<6}{mode:<10}{scen:<15}{sum(r['requests'] for r in rs):>9}"
                  f"{errs:>7}{spread([r['p50'] for r in rs]):>16}"
                  f"{spread([r['p99'] for r in rs]):>16}"
                  f"{spread([r['rps'] for r in rs]):>16}")
            every: Counter[str] = Counter()
            for r in rs:
                every.update(r["errors"])
            for what, n in every.most_common(3):
                print(f"    {n} × {what}")
    finally:
        for srv, _ in servers.values():
            stop(srv)


if __name__ == "__main__":
    main()
