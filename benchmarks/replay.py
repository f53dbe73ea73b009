"""Replay benchmark: a large, realistic block file through ``curation-market replay``.

    python benchmarks/replay.py --ops 1000000
    python benchmarks/replay.py --ops 5000000 --profile
    python benchmarks/replay.py --ops 1000000 --phases   # where the time goes, in seconds
    python benchmarks/replay.py --ops 1000000 --baseline ../main   # before/after, same rounds

Figures come from interleaved rounds (replay, bare parse[, baseline replay], ...; ``--rounds``,
3 by default) and are printed as min and median: on a shared machine the load changes by the
minute, and halves timed minutes apart gave ratios of 11.4, 11.7 and 23.5 for the same code.
CPU seconds (user + system of the replay process) are printed beside wall seconds: they move
least with a neighbour's load.

The input is built by resampling the bundled real block-17M posts (``service/data``): every
synthetic post is a real post (real author, a fresh permlink) with its real vote timings
shifted to a new creation time, its real payout (the pending estimate for posts not yet paid)
``--payout-days`` after creation, and the demo's simulated curators committing and revealing
through the real ``custom_json`` payloads (``curation_market.lab.agents``). Around them, every
block is
filled with the ops that make up most of a real Steem block and that the market must skip or
only track for Steem Power: ``follow``/``reblog`` custom_json, transfers, claim_reward_balance,
market orders, witness votes, feed publishes, delegations and a ``producer_reward`` virtual op.

Generation is seeded and streaming: post events go to block-range bucket files, each bucket is
sorted and merged with the filler into blocks, so memory stays flat however many ops are asked
for. The file is cached under ``tmp/bench-cache`` keyed by every generation parameter.

The replay runs as a subprocess of the real CLI (``python -m curation_market replay``), so the peak
RSS reported is that process's own (``os.wait4`` rusage); the bare parse reads and
``orjson.loads`` every line of the same file in this process, nothing else.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curation.chaintime import chain_time, format_time  # noqa: E402
from curation_market.config import Market, Settings  # noqa: E402
from curation_market.lab.agents import agent_accounts, demo_population, simulate  # noqa: E402
from curation_market.lab.demo import demo_play  # noqa: E402
from indexer.accounts import read_globals  # noqa: E402
from indexer.postdump import STEEM_17M, Anchor, Events, block_id, post_events  # noqa: E402

DATA = ROOT / "curation_market" / "data"
CACHE = ROOT / "tmp" / "bench-cache"
GENERATOR_VERSION = 1  # bump when the generated stream changes
BUCKET_BLOCKS = 4000
OPS_PER_BLOCK = 20  # average ops per block (transactions + virtual ops)
MARKET_SHARE = 0.45  # share of ops coming from the resampled posts (the rest is filler)

# (weight, kind) of the filler transactions: roughly the mix of a 2017 Steem block
FILLER = [(36, "follow"), (8, "reblog"), (14, "transfer"), (14, "claim"), (6, "order"),
          (2, "cancel"), (3, "vesting"), (3, "witness"), (3, "feed"), (1, "delegate"),
          (2, "other_json")]


def bench_settings() -> Settings:
    """As the demo: replies are markets too (half of the slice's paid posts are replies)."""
    return Settings(market=Market(include_replies=True))


def load_posts() -> list[dict]:
    with gzip.open(DATA / "steem17m_posts.jsonl.gz", "rb") as fh:
        return [orjson.loads(line) for line in fh]


# --- generation ---------------------------------------------------------------------------
class Generator:
    def __init__(self, ops: int, seed: int, payout_days: float):
        self.target, self.seed = ops, seed
        self.payout = int(payout_days * 86400)
        self.posts = load_posts()
        self.anchor = Anchor.of(*STEEM_17M)
        self.span = max(1, ops // OPS_PER_BLOCK)  # blocks
        self.settings = bench_settings()
        self.agents = demo_population()
        names = {p["author"] for p in self.posts}
        names |= {v["voter"] for p in self.posts for v in p.get("active_votes") or []}
        self.names = sorted(names)

    def instance(self, k: int, template: dict, created: int) -> dict:
        """A real post moved to ``created``: fresh permlink, votes shifted, paid at +payout."""
        t0 = chain_time(template["created"])
        paid = template.get("last_payout", "1970") > "1970-01-01T00:00:00"
        total = template["total_payout_value"] if paid else template["pending_payout_value"]
        votes = []
        for v in template.get("active_votes") or []:
            if not v.get("time"):
                continue
            dt = chain_time(v["time"]) - t0
            if 0 <= dt < self.payout:
                votes.append({**v, "time": format_time(created + dt)})
        return {**template, "permlink": f"{template['permlink']}-r{k}",
                "created": format_time(created), "active_votes": votes,
                "last_payout": format_time(created + self.payout),
                "total_payout_value": total,
                "curator_payout_value": template["curator_payout_value"] if paid
                else "0.000 SBD"}

    def relevant_per_post(self) -> float:
        n = 0
        for i, p in enumerate(self.posts):
            ev = self._events(i, p, self.anchor.time)
            n += sum(len(ops) for lst in ev.txs.values() for _, ops in lst)
            n += sum(len(lst) for lst in ev.vops.values())
        return n / len(self.posts)

    def _events(self, k: int, template: dict, created: int) -> Events:
        post = self.instance(k, template, created)
        ev = Events.empty()
        simulate([post], self.agents, self.anchor, ev,
                 demo_play(self.settings, seed=self.seed * 1_000_003 + k))
        post_events(post, self.anchor, ev)
        return ev

    def write(self, out: Path) -> tuple[int, int]:
        """Write the block file; returns (blocks, ops)."""
        rng = random.Random(self.seed)
        per_post = self.relevant_per_post()
        n_posts = max(1, int(self.target * MARKET_SHARE / per_post))
        first = self.anchor.block + 1
        last = first + self.span - 1
        relevant = 0
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            buckets: dict[int, io.BufferedWriter] = {}
            for k in range(n_posts):
                template = self.posts[rng.randrange(len(self.posts))]
                block = first + (k * self.span) // n_posts
                ev = self._events(k, template, self.anchor.time_of(block) + rng.randrange(3))
                relevant += self._spill(ev, k, last, buckets, Path(tmp))
            for fh in buckets.values():
                fh.close()
            filler = max(0, self.target - relevant)
            return self._assemble(Path(tmp), first, last, filler, out, rng)

    def _spill(self, ev: Events, k: int, last: int, buckets: dict, tmp: Path) -> int:
        n = 0
        for kind, table in ((0, ev.txs), (1, ev.vops)):
            for block, entries in table.items():
                if block > last:
                    continue
                b = block // BUCKET_BLOCKS
                fh = buckets.get(b)
                if fh is None:
                    fh = buckets[b] = open(tmp / f"{b:08d}", "wb")  # noqa: SIM115
                for seq, (order, ops) in enumerate(entries):
                    key = b"%010d%d%012d%02d%08d%05d" % (block, kind, order[0], order[1], k, seq)
                    fh.write(key + b"\t" + orjson.dumps(ops) + b"\n")
                    n += len(ops) if kind == 0 else 1
        return n

    def _assemble(self, tmp: Path, first: int, last: int, filler: int, out: Path,
                  rng: random.Random) -> tuple[int, int]:
        n_blocks = last - first + 1
        # one producer_reward per block is part of the filler
        per_block = max(0.0, filler / n_blocks - 1)
        blocks = ops = 0
        with open(out, "wb", buffering=1 << 20) as fh:
            for b in range(first // BUCKET_BLOCKS, last // BUCKET_BLOCKS + 1):
                path = tmp / f"{b:08d}"
                lines = sorted(path.read_bytes().splitlines()) if path.exists() else []
                by_block: dict[int, tuple[list, list]] = {}
                for line in lines:
                    num, kind = int(line[:10]), line[10:11]
                    txs, vops = by_block.setdefault(num, ([], []))
                    body = orjson.loads(line[line.index(b"\t") + 1:])
                    (txs.append({"operations": body}) if kind == b"0" else vops.append(body))
                lines = []
                lo, hi = max(first, b * BUCKET_BLOCKS), min(last, (b + 1) * BUCKET_BLOCKS - 1)
                for num in range(lo, hi + 1):
                    txs, vops = by_block.pop(num, ([], []))
                    n_fill = int(per_block) + (rng.random() < per_block % 1)
                    txs = _interleave(txs, [{"operations": [self._filler(rng)]}
                                            for _ in range(n_fill)], rng)
                    vops.append(["producer_reward", {
                        "producer": self.names[num % 21], "vesting_shares":
                        f"{rng.randint(300, 400)}.{rng.randrange(10**6):06d} VESTS"}])
                    block = {"block_num": num, "block_id": block_id(num, "bench"),
                             "previous": block_id(num - 1, "bench"),
                             "timestamp": format_time(self.anchor.time_of(num)),
                             "witness": self.names[num % 21], "transactions": txs,
                             "virtual_ops": vops}
                    fh.write(orjson.dumps(block) + b"\n")
                    blocks += 1
                    ops += sum(len(tx["operations"]) for tx in txs) + len(vops)
        return blocks, ops

    def _filler(self, rng: random.Random) -> list:
        kind = rng.choices([k for _, k in FILLER], weights=[w for w, _ in FILLER])[0]
        a, b = rng.choice(self.names), rng.choice(self.names)
        if kind in ("follow", "reblog", "other_json"):
            if kind == "follow":
                body = ["follow", {"follower": a, "following": b, "what": ["blog"]}]
            elif kind == "reblog":
                body = ["reblog", {"account": a, "author": b,
                                   "permlink": f"post-{rng.getrandbits(32):x}"}]
            else:
                body = {"app": "steemmonsters", "n": rng.getrandbits(20)}
            return ["custom_json", {"required_auths": [], "required_posting_auths": [a],
                                    "id": "follow" if kind != "other_json" else "sm_find_match",
                                    "json": orjson.dumps(body).decode()}]
        if kind == "transfer":
            return ["transfer", {"from": a, "to": b, "amount": _amount(rng, "STEEM"),
                                 "memo": f"memo {rng.getrandbits(40):x}"}]
        if kind == "claim":
            return ["claim_reward_balance", {
                "account": a, "reward_steem": "0.000 STEEM", "reward_sbd": _amount(rng, "SBD"),
                "reward_vests": f"{rng.randrange(10**4)}.{rng.randrange(10**6):06d} VESTS"}]
        if kind == "order":
            return ["limit_order_create", {"owner": a, "orderid": rng.getrandbits(31),
                                           "amount_to_sell": _amount(rng, "STEEM"),
                                           "min_to_receive": _amount(rng, "SBD"),
                                           "fill_or_kill": False,
                                           "expiration": "2035-10-29T06:32:22"}]
        if kind == "cancel":
            return ["limit_order_cancel", {"owner": a, "orderid": rng.getrandbits(31)}]
        if kind == "vesting":
            return ["transfer_to_vesting", {"from": a, "to": b, "amount": _amount(rng, "STEEM")}]
        if kind == "witness":
            return ["account_witness_vote", {"account": a, "witness": b, "approve": True}]
        if kind == "feed":
            return ["feed_publish", {"publisher": a, "exchange_rate": {
                "base": "1.130 SBD", "quote": "1.000 STEEM"}}]
        return ["delegate_vesting_shares", {
            "delegator": a, "delegatee": b,
            "vesting_shares": f"{rng.randrange(10**6)}.{rng.randrange(10**6):06d} VESTS"}]


def _amount(rng: random.Random, symbol: str) -> str:
    return f"{rng.randrange(1000)}.{rng.randrange(1000):03d} {symbol}"


def _vests(micro: int) -> str:
    return f"{micro // 10**6}.{micro % 10**6:06d} VESTS"


def _interleave(keep: list, extra: list, rng: random.Random) -> list:
    """``extra`` spread at random among ``keep``, whose own order is kept."""
    if not keep:
        return extra
    slots = sorted(rng.randrange(len(keep) + 1) for _ in extra)
    out, j = [], 0
    for i, item in enumerate(keep):
        while j < len(slots) and slots[j] <= i:
            out.append(extra[j])
            j += 1
        out.append(item)
    out.extend(extra[j:])
    return out


def cached_input(ops: int, seed: int, payout_days: float) -> tuple[Path, dict]:
    key = hashlib.sha1(f"v{GENERATOR_VERSION}-{ops}-{seed}-{payout_days}".encode()).hexdigest()
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"blocks-{ops}-{seed}-{key[:10]}.jsonl"
    meta = path.with_suffix(".meta.json")
    if path.exists() and meta.exists():
        return path, orjson.loads(meta.read_bytes())
    started = time.perf_counter()
    part = path.with_suffix(".part")
    blocks, n = Generator(ops, seed, payout_days).write(part)
    part.replace(path)
    info = {"blocks": blocks, "ops": n, "generate_seconds": round(time.perf_counter() - started)}
    meta.write_bytes(orjson.dumps(info))
    return path, info


def snapshot_files(workdir: Path) -> tuple[Path, Path]:
    """Real accounts plus the simulated curators' vesting, and the real globals."""
    globals_file = DATA / "steem17m_globals.json"
    fund, shares = read_globals(globals_file)
    from curation.state import Globals

    accounts = workdir / "accounts.jsonl"
    with gzip.open(DATA / "steem17m_accounts.jsonl.gz", "rb") as fh, open(accounts, "wb") as out:
        out.write(fh.read())
        for a in agent_accounts(demo_population(), Globals(fund, shares)):
            out.write(orjson.dumps({"name": a.name,
                                    "vesting_shares": _vests(a.vesting_shares)})
                      + b"\n")
    return accounts, globals_file


# --- measuring ----------------------------------------------------------------------------
def bare_parse(path: Path) -> float:
    started = time.perf_counter()
    loads = orjson.loads
    with open(path, "rb") as fh:
        for line in fh:
            loads(line)
    return time.perf_counter() - started


def bare_parse_cpu(path: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of the bare parse: CPU time is what a busy neighbour changes least."""
    cpu = time.process_time()
    wall = bare_parse(path)
    return wall, time.process_time() - cpu


def phases(path: Path, work: Path, accounts: Path, globals_file: Path) -> dict[str, float]:
    """Seconds per stage of the same replay as the CLI's (kept rows, fast path), in this
    process: each stage is timed by wrapping it (a few µs per call, a few per block for the
    reader), so the sum stays close to a plain run."""
    from collections import Counter

    from curation_market.cli.common import open_store
    from curation_market.cli.market import load_snapshots
    from indexer.blockfile import read_blocks
    from indexer.ingest import Ingester

    settings = bench_settings()
    cfg = settings.market_config()
    store = open_store(settings, f"sqlite:///{work / 'phases.db'}")
    load_snapshots(store, [accounts], globals_file)
    ingester = Ingester(store, cfg, settings.ingest.batch_blocks, keep_rows=True)
    spent: Counter[str] = Counter()

    def timed(obj: object, attr: str, label: str) -> None:
        inner = getattr(obj, attr)

        def wrapper(*args: object) -> object:
            t0 = time.perf_counter()
            try:
                return inner(*args)
            finally:
                spent[label] += time.perf_counter() - t0
        setattr(obj, attr, wrapper)

    def reader() -> object:
        source = read_blocks([path], ingester.adapter)
        while True:
            t0 = time.perf_counter()
            item = next(source, None)
            spent["read + decode + records (fast path)"] += time.perf_counter() - t0
            if item is None:
                return
            yield item

    timed(ingester.adapter, "block", "adapter (lines the fast path handed back)")
    timed(ingester.applier, "apply", "market engine incl. settlement")
    timed(store, "prefetch", "store prefetch (SQLite reads)")
    timed(store, "flush", "store flush (SQLite writes + commit)")
    timed(store, "keep", "kept rows: forget written, sweep")
    started = time.perf_counter()
    ingester.run(reader())
    total = time.perf_counter() - started
    out = {"bare orjson parse, for scale": bare_parse(path), **spent}
    out["ingest loop, rest (total - above)"] = total - sum(spent.values())
    out["ingest total"] = total
    return out


def fresh_db(db: Path, url: str | None) -> str:
    """The database URL of one replay: a new SQLite file, or ``url`` emptied first."""
    if url is None:
        return f"sqlite:///{db}"
    from sqlalchemy import MetaData, create_engine

    engine = create_engine(url)
    tables = MetaData()
    tables.reflect(engine)
    tables.drop_all(engine)
    engine.dispose()
    return url


def run_replay(path: Path, db: Path, accounts: Path, globals_file: Path,
               profile: Path | None, code: Path = ROOT,
               url: str | None = None) -> tuple[float, int, str, float]:
    """(wall seconds, peak RSS bytes, stderr, CPU seconds) of ``curation-market replay`` as a
    child process (CPU: user + system of the process and any children it waited for)."""
    cmd = [sys.executable]
    if profile:
        cmd += ["-m", "cProfile", "-o", str(profile)]
    cmd += ["-m", "curation_market", "replay", str(path), "--db", fresh_db(db, url),
            "--accounts", str(accounts), "--globals", str(globals_file),
            "--config", str(db.parent / "bench.toml")]
    (db.parent / "bench.toml").write_text("[market]\ninclude_replies = true\n")
    started = time.perf_counter()
    with open(db.parent / "stderr.txt", "wb") as err:
        # ``python -m`` imports from the working directory first: ``code`` is the checkout run
        proc = subprocess.Popen(cmd, cwd=code, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = (db.parent / "stderr.txt").read_text()
    if proc.returncode != 0:
        raise SystemExit(f"replay failed ({proc.returncode}):\n{text}")
    return wall, usage.ru_maxrss * 1024, text, usage.ru_utime + usage.ru_stime


def _stats(values: list[float]) -> tuple[float, float]:
    """(min, median) of a few measurements."""
    return min(values), statistics.median(values)


def rounds(path: Path, work: Path, accounts: Path, globals_file: Path, n: int,
           profile: Path | None, baseline: Path | None = None,
           url: str | None = None) -> tuple[list[dict], list[dict]]:
    """``n`` interleaved rounds of (replay, bare parse): A, B, A, B, ... — with a
    ``baseline`` checkout, (replay, parse, baseline replay) each round.

    Both halves of a ratio are measured side by side, so a neighbour's load on this shared
    machine hits them alike; timing them minutes apart printed 11.4, 11.7 and 23.5 for the
    same code. Each replay starts from a fresh database.
    """
    out: list[dict] = []
    base: list[dict] = []
    for i in range(n):
        db = work / f"replay-{i}.db"
        wall, rss, stderr, cpu = run_replay(path, db, accounts, globals_file,
                                            profile if i == 0 else None, url=url)
        parse, parse_cpu = bare_parse_cpu(path)
        m = re.search(r"ops\) in ([0-9.]+)s", stderr)
        out.append({"wall": wall, "ingest": float(m.group(1)) if m else wall, "rss": rss,
                    "cpu": cpu, "parse": parse, "parse_cpu": parse_cpu, "stderr": stderr})
        print(f"  round {i + 1}: replay {wall:6.2f} s (ingest {out[-1]['ingest']:.2f} s, "
              f"CPU {cpu:.2f} s), parse {parse:5.2f} s (CPU {parse_cpu:.2f} s), "
              f"ratio {wall / parse:5.2f}, peak RSS {rss / 2**20:,.0f} MB", flush=True)
        if baseline is not None:
            bwall, brss, bstderr, bcpu = run_replay(path, work / f"baseline-{i}.db", accounts,
                                                    globals_file, None, baseline, url)
            base.append({"wall": bwall, "rss": brss, "cpu": bcpu, "parse": parse,
                         "parse_cpu": parse_cpu})
            print(f"           baseline {bwall:6.2f} s (CPU {bcpu:.2f} s), "
                  f"ratio {bwall / parse:5.2f}, peak RSS {brss / 2**20:,.0f} MB", flush=True)
    return out, base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ops", type=int, default=1_000_000, help="ops to generate (about)")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--payout-days", type=float, default=1.0,
                    help="days from a post to its payout (7 on chain; 1 keeps a 1 M-op file "
                         "in steady state: posts are created, voted, revealed and settled)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="interleaved (replay, parse) rounds; min and median are reported")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="another checkout (e.g. `git worktree add DIR main`) replayed in the "
                         "same rounds, for before/after figures taken under the same load")
    ap.add_argument("--db", metavar="URL",
                    help="replay into this database (emptied before each replay), e.g. "
                         "PostgreSQL from .ci/pg-start.sh; default: a new SQLite file each")
    ap.add_argument("--keep", action="store_true", help="keep the SQLite files and print them")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile the first round's replay; top functions")
    ap.add_argument("--phases", action="store_true",
                    help="also time each stage of an in-process replay (seconds)")
    args = ap.parse_args()

    path, info = cached_input(args.ops, args.seed, args.payout_days)
    print(f"input: {path} ({path.stat().st_size / 1e6:,.0f} MB, generated in "
          f"{info['generate_seconds']} s)")
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=CACHE))
    accounts, globals_file = snapshot_files(work)
    prof = work / "replay.prof" if args.profile else None
    runs, base = rounds(path, work, accounts, globals_file, max(1, args.rounds), prof,
                        args.baseline, args.db)
    ops, blocks = info["ops"], info["blocks"]
    print(" ".join(runs[-1]["stderr"].split()))
    wall = _stats([r["wall"] for r in runs])
    ingest = _stats([r["ingest"] for r in runs])
    parse = _stats([r["parse"] for r in runs])
    ratio = _stats([r["wall"] / r["parse"] for r in runs])
    ingest_ratio = _stats([r["ingest"] / r["parse"] for r in runs])
    cpu = _stats([r["cpu"] for r in runs])
    parse_cpu = _stats([r["parse_cpu"] for r in runs])
    cpu_ratio = _stats([r["cpu"] / r["parse_cpu"] for r in runs])
    rss = max(r["rss"] for r in runs)
    print(f"{'':<28}{'min':>12}{'median':>12}   ({len(runs)} interleaved rounds)")
    print(f"{'ops':<28}{ops:>12,}")
    print(f"{'blocks':<28}{blocks:>12,}")
    print(f"{'replay wall s':<28}{wall[0]:>12.2f}{wall[1]:>12.2f}")
    # the rest of the wall time: interpreter start, imports, account snapshot
    print(f"{'  of which ingest s':<28}{ingest[0]:>12.2f}{ingest[1]:>12.2f}")
    print(f"{'bare orjson parse s':<28}{parse[0]:>12.2f}{parse[1]:>12.2f}")
    print(f"{'replay / parse (wall)':<28}{ratio[0]:>12.2f}{ratio[1]:>12.2f}")
    print(f"{'ingest / parse':<28}{ingest_ratio[0]:>12.2f}{ingest_ratio[1]:>12.2f}")
    print(f"{'best replay / best parse':<28}{wall[0] / parse[0]:>12.2f}")
    print(f"{'replay CPU s':<28}{cpu[0]:>12.2f}{cpu[1]:>12.2f}")
    print(f"{'parse CPU s':<28}{parse_cpu[0]:>12.2f}{parse_cpu[1]:>12.2f}")
    print(f"{'replay / parse (CPU)':<28}{cpu_ratio[0]:>12.2f}{cpu_ratio[1]:>12.2f}")
    print(f"{'ops/s (wall)':<28}{ops / wall[0]:>12,.0f}{ops / wall[1]:>12,.0f}")
    print(f"{'blocks/s (wall)':<28}{blocks / wall[0]:>12,.0f}{blocks / wall[1]:>12,.0f}")
    print(f"{'peak RSS MB (max)':<28}{rss / 2**20:>12.1f}")
    if base:
        bwall = _stats([r["wall"] for r in base])
        bcpu = _stats([r["cpu"] for r in base])
        print(f"baseline {args.baseline}:")
        print(f"{'  replay wall s':<28}{bwall[0]:>12.2f}{bwall[1]:>12.2f}")
        print(f"{'  replay / parse (wall)':<28}"
              f"{min(r['wall'] / r['parse'] for r in base):>12.2f}"
              f"{statistics.median(r['wall'] / r['parse'] for r in base):>12.2f}")
        print(f"{'  replay CPU s':<28}{bcpu[0]:>12.2f}{bcpu[1]:>12.2f}")
        print(f"{'  replay / parse (CPU)':<28}"
              f"{min(r['cpu'] / r['parse_cpu'] for r in base):>12.2f}"
              f"{statistics.median(r['cpu'] / r['parse_cpu'] for r in base):>12.2f}")
        print(f"{'  ops/s (wall)':<28}{ops / bwall[0]:>12,.0f}{ops / bwall[1]:>12,.0f}")
        print(f"{'  peak RSS MB (max)':<28}{max(r['rss'] for r in base) / 2**20:>12.1f}")
        print(f"{'speed-up (baseline / this)':<28}{bwall[0] / wall[0]:>12.2f}"
              f"{bwall[1] / wall[1]:>12.2f}   wall; CPU {bcpu[1] / cpu[1]:.2f} (medians)")
    if prof:
        import pstats

        stats = pstats.Stats(str(prof))
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(25)
    if args.phases:
        per = 1_000_000 / ops
        print(f"{'stage':<40}{'s':>8}{'s / 1M ops':>12}")
        for label, sec in phases(path, work, accounts, globals_file).items():
            print(f"{label:<40}{sec:>8.2f}{sec * per:>12.2f}")
    if args.keep:
        print(f"kept: {work}")
    else:
        for f in work.iterdir():
            f.unlink()
        work.rmdir()


if __name__ == "__main__":
    main()
