"""Live latency: how long after a block becomes irreversible the daemon has it in the database.

    python benchmarks/live.py [--blocks 20] [--interval 3] [--start 2000]

What it does: starts ``python -m curation_market.devnode`` in its own process serving the real Hive
blocks bundled in ``tests/data`` (hive-5m: real transactions and virtual ops), producing one
block every ``--interval`` seconds of wall-clock time (LIB = head - 20, as the node's default),
and ``python -m curation_market run --node URL --db sqlite:///...`` in another process with the
default configuration. Once the daemon has caught up with the LIB, it measures for the next
``--blocks`` blocks, each on its own:

- ``t_lib``: when the node made the block irreversible (this script polls
  ``testnode_api.state`` every 20 ms);
- ``t_db``: when the daemon's checkpoint (``meta.last_block``, committed in the same transaction
  as the block's state) reached it (polled every 20 ms with a separate SQLite reader).

It prints the latency ``t_db - t_lib`` per block, p50 and max, and whether every block was
indexed within one block interval. Both polls add up to 20 ms each of error. Bounded: the whole
run takes about ``blocks * interval + 20`` seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
POLL = 0.02


def node_state(url: str) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": "testnode_api.state", "params": {}}
    return requests.post(url, json=body, timeout=5).json()["result"]


def checkpoint(engine) -> int:  # type: ignore[no-untyped-def]
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT last_block FROM meta")).scalar() or 0
    except Exception:  # noqa: BLE001 - not created yet, or locked for a moment by the writer
        return -1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=20, help="blocks measured")
    ap.add_argument("--interval", type=float, default=3.0, help="seconds per block")
    ap.add_argument("--start", type=int, default=2000, help="the node's initial head")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    tmp = tempfile.TemporaryDirectory(prefix="live-")
    db = f"sqlite:///{Path(tmp.name) / 'live.db'}"
    node = subprocess.Popen(
        [sys.executable, "-m", "curation_market.devnode", "--blocks",
         str(DATA / "hive5m_raw_blocks.jsonl.gz"), "--ops", str(DATA / "hive5m_ops.jsonl.gz"),
         "--port", "0", "--interval", str(args.interval), "--start", str(args.start)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    daemon = None
    try:
        assert node.stdout is not None
        url = node.stdout.readline().strip()
        daemon = subprocess.Popen(
            [sys.executable, "-m", "curation_market", "run", "--node", url, "--db", db],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        engine = create_engine(db)
        deadline = time.monotonic() + 60
        while checkpoint(engine) < node_state(url)["irreversible"]:  # the catch-up
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise SystemExit("the daemon did not catch up within 60 s")
            time.sleep(0.2)
        first = node_state(url)["irreversible"] + 1
        last = first + args.blocks - 1
        t_lib: dict[int, float] = {}
        t_db: dict[int, float] = {}
        lib = ckpt = 0
        deadline = time.monotonic() + args.blocks * args.interval + 30
        while (len(t_db) < args.blocks) and time.monotonic() < deadline:
            now = time.monotonic()
            new_lib = node_state(url)["irreversible"]
            for n in range(max(lib + 1, first), min(new_lib, last) + 1):
                t_lib[n] = now
            lib = max(lib, new_lib)
            now = time.monotonic()
            new_ckpt = checkpoint(engine)
            for n in range(max(ckpt + 1, first), min(new_ckpt, last) + 1):
                t_db[n] = now
            ckpt = max(ckpt, new_ckpt)
            time.sleep(POLL)
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait(30)
        node.terminate()
        node.wait(30)
        tmp.cleanup()
    lat = [t_db[n] - t_lib[n] for n in sorted(t_db) if n in t_lib]
    if len(lat) < args.blocks:
        raise SystemExit(f"only {len(lat)} of {args.blocks} blocks were measured")
    print(f"live: {len(lat)} blocks (#{first:,}..#{last:,}), one every {args.interval:g} s, "
          f"daemon with the default config ([node] poll_seconds 0.5)")
    print("latency from irreversible to indexed (s): "
          + " ".join(f"{x:.2f}" for x in lat))
    print(f"p50 {statistics.median(lat):.2f} s, max {max(lat):.2f} s; every block within one "
          f"interval ({args.interval:g} s): {'yes' if max(lat) <= args.interval else 'NO'}")


if __name__ == "__main__":
    main()
