"""``evaluate --history`` at scale: resampled real history of N ops, parse once, then the
variant × run replays on a Dask cluster; wall time and peak memory per worker.

    python benchmarks/eval_scale.py --ops 200000 --ops 1000000 [--runs 5] [--workers 2]
        [--variants all|4] [--spacing 120] [--cluster tcp://host:8786]

The history is the bundled block-17M posts (real vote curves and payouts, real 7-day
cashouts) drawn with replacement under new permlinks, one every ``--spacing`` seconds, until
the block file holds N ops; it is written block by block (only about one cashout window of
posts is in memory), so the generator itself does not limit the size. Each size gets a fresh
local cluster (unless ``--cluster``), so a worker's peak RSS (``ru_maxrss``) is that size's.
Prints one line per size; the README quotes them.
"""

from __future__ import annotations

import argparse
import gzip
import heapq
import resource
import tempfile
import time
from pathlib import Path

import orjson

from curation.chaintime import chain_time, format_time
from curation_market.lab.config import EvalConfig
from curation_market.lab.demo import bundled_posts
from curation_market.lab.history import resample_posts
from curation_market.lab.runner import HistorySpec, evaluate
from curation_market.lab.variants import DEFAULT_VARIANTS
from indexer.postdump import STEEM_17M, Anchor, Events, block_id, post_events

START = chain_time("2017-11-01T00:00:00")


class _Touched(dict):
    """A block → items dict that remembers new blocks in a heap (postdump writes
    ``events.txs[num] += items`` directly)."""

    def __init__(self, heap: list[int]):
        super().__init__()
        self.heap = heap

    def __missing__(self, key: int) -> list:
        if key not in self.heap_seen:
            self.heap_seen.add(key)
            heapq.heappush(self.heap, key)
        value = self[key] = []
        return value

    heap_seen: set[int]


class _Events(Events):
    def __init__(self) -> None:
        self.heap: list[int] = []
        seen: set[int] = set()
        txs, vops = _Touched(self.heap), _Touched(self.heap)
        txs.heap_seen = vops.heap_seen = seen
        self.seen = seen
        super().__init__(txs, vops)


def write_history(path: Path, ops: int, spacing: int, seed: int = 1) -> tuple[int, int]:
    """Resampled posts as a block file of about ``ops`` ops; returns (posts, ops written)."""
    anchor = Anchor.of(*STEEM_17M)
    source = bundled_posts()
    events = _Events()
    written = n_posts = planned = 0
    with open(path, "wb") as raw, gzip.GzipFile("", "wb", 6, raw, mtime=0) as fh:
        def flush(upto: int) -> int:
            n = 0
            while events.heap and events.heap[0] < upto:
                num = heapq.heappop(events.heap)
                events.seen.discard(num)
                txs = [o for _, o in sorted(events.txs.pop(num, []), key=lambda e: e[0])]
                vops = [o for _, o in sorted(events.vops.pop(num, []), key=lambda e: e[0])]
                block = {"block_num": num, "block_id": block_id(num),
                         "previous": block_id(num - 1),
                         "timestamp": format_time(anchor.time_of(num)),
                         "transactions": [{"operations": o} for o in txs],
                         "virtual_ops": vops}
                fh.write(orjson.dumps(block) + b"\n")
                n += sum(len(o) for o in txs) + len(vops)
            return n

        i = 0
        while planned < ops:
            for post in resample_posts(source, 500, seed + i, START + i * 500 * spacing,
                                       spacing):
                post_events(post, anchor, events)
                n_posts += 1
                planned += 4 + 2 * len(post["active_votes"])  # comment, votes, payout vops
                # nothing later can land before this post's creation block
                written += flush(anchor.block_at(chain_time(post["created"])))
                if planned >= ops:
                    break
            i += 1
        written += flush(2**62)
    return n_posts, written


def _usage() -> tuple[int, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_maxrss, r.ru_utime + r.ru_stime


def worker_usage(address: str) -> tuple[list[int], float]:
    """Each worker's peak RSS (MiB) and the CPU seconds of all of them."""
    from dask.distributed import Client

    with Client(address) as client:
        got = client.run(_usage)
    return sorted(v[0] // 1024 for v in got.values()), sum(v[1] for v in got.values())


def heaviest_task(history: str, cache: str) -> None:
    """The default stream's task (every seed-family replay of its timing at once, and the
    staked rule sets) in this fresh process: its peak RSS and CPU time."""
    from curation_market.lab.runner import run_history_group
    from curation_market.lab.variants import DEFAULT_KEY, plan

    cfg = EvalConfig.model_validate({"evaluate": {"runs": 1}})
    texts = next(t.variants for t in plan(list(DEFAULT_VARIANTS), 1) if t.key == DEFAULT_KEY)
    spec = HistorySpec((history,), cache, "steem")
    start = time.process_time()
    g = run_history_group(spec, cfg.model_dump_json(), 0, DEFAULT_KEY, texts)
    print(f"heaviest task ({len(texts)} rule sets): peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB, "
          f"{time.process_time() - start:.1f} CPU-s, {g.peak_posts} posts alive at most",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", nargs=2, metavar=("HISTORY", "CACHE"), help=argparse.SUPPRESS)
    ap.add_argument("--task-memory", action="store_true",
                    help="also run the heaviest task alone in a fresh process per size")
    ap.add_argument("--ops", type=int, action="append")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--variants", default="all", help="all (the 19 defaults) or a count")
    ap.add_argument("--spacing", type=int, default=120, help="seconds between posts")
    ap.add_argument("--cluster", default=None)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    if args.task:
        heaviest_task(*args.task)
        return
    if not args.ops:
        ap.error("--ops N is required")
    variants = list(DEFAULT_VARIANTS) if args.variants == "all" else \
        list(DEFAULT_VARIANTS)[:int(args.variants)]
    cfg = EvalConfig.model_validate({"evaluate": {"runs": args.runs, "variants": variants}})
    work = Path(args.dir or tempfile.mkdtemp(prefix="eval-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"{len(variants)} variants × {args.runs} runs, {args.workers} workers, a post every "
          f"{args.spacing} s")
    print(f"{'ops':>10} {'posts':>7} {'write s':>8} {'parse s':>8} {'replay s':>9} "
          f"{'replay CPU s':>13} {'markets/run':>12} {'peak posts':>11} {'worker MiB':>12}")
    for ops in args.ops:
        path = work / f"history-{ops}.jsonl.gz"
        t = time.perf_counter()
        posts, written = write_history(path, ops, args.spacing)
        t_write = time.perf_counter() - t
        spec = HistorySpec((str(path),), str(work / "cache"), "steem")
        t = time.perf_counter()
        spec.compiled(cfg)
        t_parse = time.perf_counter() - t
        from dask.distributed import LocalCluster

        local = None
        address = args.cluster
        if address is None:
            local = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                 dashboard_address=None)
            address = local.scheduler_address
        t = time.perf_counter()
        ev = evaluate(cfg, workers=args.workers, history=spec, cluster=address)
        t_replay = time.perf_counter() - t
        peaks, cpu = worker_usage(address)
        if local is not None:
            local.close()
        if args.task_memory:
            import subprocess
            import sys

            subprocess.run([sys.executable, __file__, "--task", str(path),
                            str(work / "cache")], check=True, timeout=7200)
        print(f"{written:>10,} {posts:>7,} {t_write:>8.1f} {t_parse:>8.1f} {t_replay:>9.1f} "
              f"{cpu:>13.1f} {ev.markets // args.runs:>12,} {ev.peak_posts:>11,} "
              f"{'/'.join(map(str, peaks)):>12}", flush=True)


if __name__ == "__main__":
    main()
