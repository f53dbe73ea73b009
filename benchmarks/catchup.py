"""Catch-up speed from a loopback node over beem: blocks/s and ops/s.

    python benchmarks/catchup.py [--blocks 20000] [--profile busy|2016|both] [--batch 1000]
                                 [--ingest]

What it does: builds a contiguous chain of real-shaped blocks by resampling the real Hive
blocks and operations bundled in ``tests/data`` (hive-5m: real transactions and real virtual
ops; seeded, so every run builds the same chain), serves it with ``curation_market.devnode`` in a
separate process on loopback, and reads it back the way a catching-up indexer does: batched
JSON-RPC through beem (``block_api.get_block`` and ``account_history_api.get_ops_in_block``
queued with ``add_to_queue``, one HTTP request per kind per batch). ``--source orjson`` sends
the same batches with plain ``requests`` and decodes with orjson (beem decodes with the
standard library's json, which is where its time goes on busy blocks). When the daemon's chain
source is used with ``--source chain``: ``indexer.chain.Fetcher`` (its fetching thread, one
batched request per batch holding both calls per block, and its bounded queue).

Profiles (resampling is stated because the figure depends on block density):

- ``2016``: whole recorded blocks drawn at random, empty ones included: the density of the
  2016 chain the data comes from (few transactions per block);
- ``busy``: every block packs ``--txs`` real transactions (default 25, like Steem in 2017-18)
  drawn from the recorded ones (proof-of-work ones left out), plus the virtual ops of a real
  block drawn at random.

``--ingest`` also pushes the fetched blocks through the Ingester into a fresh SQLite database
in the same loop, so the figure is end to end (fetch + adapt + market + write).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curation.chaintime import chain_time, format_time  # noqa: E402
from indexer.blockfile import write_blocks  # noqa: E402
from indexer.ops import op_name_value  # noqa: E402
from indexer.postdump import block_id  # noqa: E402

DATA = ROOT / "tests" / "data"
START = 10_000_000
T0 = chain_time("2017-03-01T00:00:00")


def build_chain(n_blocks: int, profile: str, txs_per_block: int, seed: int = 7) -> list[dict]:
    with gzip.open(DATA / "hive5m_raw_blocks.jsonl.gz", "rb") as fh:
        recorded = [orjson.loads(line) for line in fh]
    with gzip.open(DATA / "hive5m_ops.jsonl.gz", "rb") as fh:
        vop_blocks: dict[int, list] = {}
        for rec in map(orjson.loads, fh):
            if rec.get("virtual_op") not in (False, 0, None):
                vop_blocks.setdefault(rec["block"], []).append(rec["op"])
    by_num = {b["_block_num"]: b for b in recorded}
    # proof-of-work ops (2016 mining, ~2 KB of hex each) are left out of the busy pool: later
    # blocks are votes, comments, transfers and custom_json
    pool_txs = [tx for b in recorded for tx in b["transactions"]
                if not any("pow" in (op[0] if isinstance(op, list) else op["type"])
                           for op in tx["operations"])]
    vop_lists = [v for v in vop_blocks.values() if len(v) < 100]  # leave out the 2 giant ones
    rng = random.Random(seed)
    out = []
    for i in range(n_blocks):
        num = START + i
        if profile == "2016":
            src = rng.choice(recorded)
            txs = src["transactions"]
            vops = vop_blocks.get(src["_block_num"], []) if src["_block_num"] in by_num else []
        else:
            txs = [rng.choice(pool_txs) for _ in range(txs_per_block)]
            vops = rng.choice(vop_lists)
        txs = [{k: v for k, v in tx.items()
                if k not in ("block_num", "transaction_id", "transaction_num")} for tx in txs]
        out.append({"block_id": block_id(num, "bench:"), "previous": block_id(num - 1, "bench:"),
                    "timestamp": format_time(T0 + 3 * i),
                    "witness": "initminer", "transactions": txs,
                    "transaction_ids": [hashlib.sha1(f"{num}:{j}".encode()).hexdigest()
                                        for j in range(len(txs))],
                    "virtual_ops": vops})
    return out


def start_node(path: Path, head: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "curation_market.devnode", "--blocks", str(path),
                             "--port", "0", "--interval", "0", "--start", str(head),
                             "--lag", "0", "--prewarm"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit("the test node did not start")
    return proc, url


def beem_blocks(url: str, start: int, stop: int, batch: int):
    """Block dicts with ``virtual_ops``, fetched in batches through beem's queued calls."""
    from beem.blockchaininstance import BlockChainInstance
    from beemstorage import InRamConfigurationStore

    rpc = BlockChainInstance(node=url, config_store=InRamConfigurationStore(),
                             num_retries=1).rpc
    for lo in range(start, stop + 1, batch):
        nums = range(lo, min(lo + batch, stop + 1))
        last = len(nums) - 1
        for i, n in enumerate(nums):
            blocks = rpc.get_block({"block_num": n}, api="block", add_to_queue=i < last)
        for i, n in enumerate(nums):
            vops = rpc.get_ops_in_block({"block_num": n, "only_virtual": True},
                                        api="account_history", add_to_queue=i < last)
        blocks = blocks if isinstance(blocks, list) else [blocks]
        vops = vops if isinstance(vops, list) else [vops]
        for n, b, v in zip(nums, blocks, vops, strict=True):
            yield {**b["block"], "block_num": n, "virtual_ops": [o["op"] for o in v["ops"]]}


def orjson_blocks(url: str, start: int, stop: int, batch: int):
    """The same batched requests without beem's stdlib-json decoding: the transport's ceiling."""
    import requests

    session = requests.Session()

    def batch_call(method: str, params: list[dict]) -> list:
        body = [{"jsonrpc": "2.0", "id": i, "method": method, "params": p}
                for i, p in enumerate(params)]
        reply = orjson.loads(session.post(url, data=orjson.dumps(body), timeout=60).content)
        return [r["result"] for r in sorted(reply, key=lambda r: r["id"])]

    for lo in range(start, stop + 1, batch):
        nums = range(lo, min(lo + batch, stop + 1))
        blocks = batch_call("block_api.get_block", [{"block_num": n} for n in nums])
        vops = batch_call("account_history_api.get_ops_in_block",
                          [{"block_num": n, "only_virtual": True} for n in nums])
        for n, b, v in zip(nums, blocks, vops, strict=True):
            yield {**b["block"], "block_num": n, "virtual_ops": [o["op"] for o in v["ops"]]}


def chain_blocks(url: str, start: int, stop: int, batch: int):
    """The daemon's chain source: indexer.chain's fetching thread and bounded queue."""
    from indexer.chain import Fetcher, NodeClient

    fetcher = Fetcher(NodeClient([url], timeout=120), start, batch_size=batch,
                      stop_at=stop).start()
    try:
        wanted = start
        while wanted <= stop:
            item = fetcher.queue.get(timeout=300)
            if isinstance(item, Exception):
                raise item
            yield from item.blocks
            wanted = item.blocks[-1]["block_num"] + 1
    finally:
        fetcher.stop()
        fetcher.thread.join(timeout=30)  # before the node goes away


def run(profile: str, n_blocks: int, txs: int, batch: int, ingest: bool, source: str) -> dict:
    blocks = build_chain(n_blocks, profile, txs)
    kib = sum(len(orjson.dumps(b)) for b in blocks[:500]) / min(500, len(blocks)) / 1024
    # the node adds the producer_reward every real block has where the sample lacks one
    n_ops = sum(len(tx["operations"]) for b in blocks for tx in b["transactions"]) + \
        sum(len(b["virtual_ops"]) + all(op_name_value(op)[0] != "producer_reward"
                                        for op in b["virtual_ops"]) for b in blocks)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chain.jsonl"
        write_blocks(blocks, path)
        del blocks
        proc, url = start_node(path, START + n_blocks - 1)
        try:
            fetch = {"beem": beem_blocks, "orjson": orjson_blocks, "chain": chain_blocks}[source]
            stream = fetch(url, START, START + n_blocks - 1, batch)
            # warm up the connection and the node's caches on a small separate range
            list(beem_blocks(url, START, START + 9, 10))
            started = time.perf_counter()
            if ingest:
                from curation_market.cli.common import open_store
                from curation_market.config import Settings
                from indexer.ingest import Ingester

                settings = Settings()
                store = open_store(settings, f"sqlite:///{Path(tmp) / 'bench.db'}")
                stats = Ingester(store, settings.market_config()).run(stream)
                got_blocks, got_ops = stats.blocks, stats.ops
            else:
                got_blocks = got_ops = 0
                for b in stream:
                    got_blocks += 1
                    got_ops += sum(len(tx["operations"]) for tx in b["transactions"]) + \
                        len(b["virtual_ops"])
            seconds = time.perf_counter() - started
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert got_blocks == n_blocks and got_ops == n_ops, (got_blocks, got_ops, n_ops)
    return {"profile": profile, "blocks": got_blocks, "ops": got_ops,
            "ops_per_block": got_ops / got_blocks, "seconds": seconds,
            "blocks_per_s": got_blocks / seconds, "ops_per_s": got_ops / seconds,
            "batch": batch, "ingest": ingest, "kib_per_block": kib}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=20_000)
    ap.add_argument("--profile", choices=["busy", "2016", "both"], default="both")
    ap.add_argument("--txs", type=int, default=25, help="transactions per block (busy)")
    ap.add_argument("--batch", type=int, default=1000, help="blocks per batched request")
    ap.add_argument("--ingest", action="store_true", help="also ingest into SQLite")
    ap.add_argument("--source", choices=["beem", "orjson", "chain"], default="beem",
                    help="beem's batched calls; plain requests+orjson (the transport's "
                    "ceiling); or the daemon's chain source")
    args = ap.parse_args()
    profiles = ["2016", "busy"] if args.profile == "both" else [args.profile]
    for profile in profiles:
        r = run(profile, args.blocks, args.txs, args.batch, args.ingest, args.source)
        what = ("fetch+ingest" if r["ingest"] else "fetch") + f" via {args.source}"
        print(f"{r['profile']:>5} {what}: {r['blocks']:,} blocks, {r['ops']:,} ops "
              f"({r['ops_per_block']:.1f}/block, {r['kib_per_block']:.1f} KiB) "
              f"in {r['seconds']:.2f} s → "
              f"{r['blocks_per_s']:,.0f} blocks/s, {r['ops_per_s']:,.0f} ops/s "
              f"(batch {r['batch']})", flush=True)


if __name__ == "__main__":
    main()
