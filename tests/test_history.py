"""Issue 15: history from a node (``fetch``), ``evaluate --history`` on it, streaming memory,
and the same report from a Dask cluster.

Everything is real: the dev node is the JSON-RPC server on loopback in its hived, steemd and
jussi-front flavours (``curation_market/devnode``), the histories are real block-17M posts
(the bundled dump) resampled under new permlinks and re-timed (their vote curves and payouts
unchanged), and the cluster is a Dask ``LocalCluster`` of two worker processes.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from curation.chaintime import chain_time
from curation_market.cli.main import app
from curation_market.devnode.node import TestNode
from curation_market.lab.config import EvalConfig
from curation_market.lab.demo import bundled_posts
from curation_market.lab.fetch import MANIFEST, Archive, FetchError, fetch
from curation_market.lab.history import (
    compile_history,
    read_facts,
    replay_history,
    resample_posts,
)
from curation_market.lab.runner import HistorySpec, evaluate
from curation_market.lab.variants import DEFAULT_KEY, parse_variant
from indexer.blockfile import write_blocks
from indexer.chain import NodeClient
from indexer.postdump import STEEM_17M, Anchor, import_posts

DATA = Path(__file__).parent / "data"
BLOCKS = DATA / "hive5m_raw_blocks.jsonl.gz"
OPS = DATA / "hive5m_ops.jsonl.gz"
START = chain_time("2017-11-01T00:00:00")
VARIANTS = ["seed", "commit-reveal", "staked:numerai-2018", "seed+window=900"]


def small_config(runs: int = 2) -> EvalConfig:
    return EvalConfig.model_validate({"evaluate": {"runs": runs, "variants": VARIANTS}})


@pytest.fixture(scope="module")
def small_chain(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """30 real paid posts, a minute apart, their 7-day cashout compressed to 7.2 h (after the
    window and the 6 h reveal period, so every reveal lands before its payout)."""
    d = tmp_path_factory.mktemp("chain")
    posts = resample_posts(bundled_posts(), 30, 1, START, 60, 7.2 / 168)
    blocks = import_posts(posts, Anchor.of(*STEEM_17M))
    path = d / "chain.jsonl.gz"
    write_blocks(blocks, path)
    return {"path": path, "posts": posts, "first": blocks[0]["block_num"],
            "last": blocks[-1]["block_num"]}


# --- fetch ------------------------------------------------------------------------------
def _node(flavour: str) -> TestNode:
    node = TestNode.from_files([BLOCKS], ops=[OPS], head=1_100, lag=20,
                               chain="steem" if flavour == "steemd" else "hive")
    if flavour == "steemd":
        node.serve_as("steemd")
    elif flavour == "jussi":
        node.serve_as("hived", batch_limit=50)
    return node


def _files(d: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(d.iterdir())}


@pytest.mark.parametrize("flavour", ["hived", "steemd", "jussi"])
def test_fetch_resumed_after_interruption_gives_the_same_bytes(tmp_path: Path,
                                                                flavour: str) -> None:
    with _node(flavour) as node:
        whole = fetch(NodeClient([node.url]), tmp_path / "whole", 1, 1_000, chunk_blocks=300,
                      batch_blocks=100)
        assert [(c.first, c.last) for c in whole.chunks] == [
            (1, 300), (301, 600), (601, 900), (901, 1_000)]
        if flavour == "jussi":  # batches were cut to the front's limit, never refused twice
            assert node.refused_batches == 1 and node.largest_batch <= 50
        part = tmp_path / "part"
        chunks = iter(range(100))
        first = fetch(NodeClient([node.url]), part, 1, 1_000, chunk_blocks=300,
                      batch_blocks=100, stop=lambda: next(chunks) >= 1)
        assert len(first.chunks) == 2 and not first.complete
        # a crash after a chunk's rename but before the manifest: a stray chunk, and a
        # half-written temp file; the resume must replace both
        (part / "blocks-0000000601-0000000900.jsonl.gz").write_bytes(b"not gzip")
        (part / "blocks-0000000901-0000001000.jsonl.gz.tmp").write_bytes(b"\x1f\x8b half")
        before = node.calls.get("account_history_api.get_ops_in_block", 0)
        resumed = fetch(NodeClient([node.url]), part, 1, 1_000, chunk_blocks=300,
                        batch_blocks=100)
        asked = node.calls.get("account_history_api.get_ops_in_block", 0) - before
    assert resumed.complete
    assert _files(part) == _files(tmp_path / "whole")
    assert asked == 400  # the resumed run asked only for the blocks it lacked (601..1000)
    with gzip.open(part / "blocks-0000000001-0000000300.jsonl.gz") as fh:
        lines = [orjson.loads(line) for line in fh]
    assert [b["block_num"] for b in lines] == list(range(1, 301))
    assert all(any((op.get("type") or op[0]).startswith("producer_reward")
                   for op in b["virtual_ops"]) for b in lines)


def test_fetch_refuses_what_it_cannot_archive(tmp_path: Path) -> None:
    with _node("hived") as node:
        client = NodeClient([node.url])
        with pytest.raises(FetchError, match="not irreversible"):
            fetch(client, tmp_path / "a", 1, 1_090)  # LIB is 1,080
        fetch(client, tmp_path / "b", 1, 200, chunk_blocks=100)
        with pytest.raises(FetchError, match="chunks of 100"):
            fetch(client, tmp_path / "b", 1, 300, chunk_blocks=50)  # another cut: refused
        more = fetch(client, tmp_path / "b", 1, 300, chunk_blocks=100)  # a longer range
    assert [c.last for c in more.chunks] == [100, 200, 300]
    assert Archive.load(tmp_path / "b" / MANIFEST).complete


# --- evaluate --history -----------------------------------------------------------------
def test_fetch_then_evaluate_history(tmp_path: Path, small_chain: dict) -> None:
    """The operator's path: fetch from a node, evaluate the archive; the same blocks as one
    file give the same report, and the original (sparse) block file the same tables."""
    cfg = tmp_path / "eval.toml"
    cfg.write_text('[evaluate]\nruns = 2\nvariants = ["seed", "commit-reveal", '
                   '"staked:numerai-2018", "seed+window=900"]\n')
    archive = tmp_path / "archive"
    runner = CliRunner()
    with TestNode.from_files([small_chain["path"]], head=small_chain["last"] + 30, lag=20) \
            as node:
        res = runner.invoke(app, ["fetch", "--node", node.url, "--from",
                                  str(small_chain["first"]), "--to", str(small_chain["last"]),
                                  "--out", str(archive), "--chunk-blocks", "20000"])
    assert res.exit_code == 0, res.output
    manifest = Archive.load(archive / MANIFEST)
    assert manifest.complete and manifest.chain == "hive" and len(manifest.chunks) == 3
    joined = tmp_path / "joined.jsonl.gz"  # gzip members concatenate into one gzip file
    joined.write_bytes(b"".join(f.read_bytes() for f in manifest.files(archive)))
    reports = {}
    for name, source in (("archive", archive), ("joined", joined),
                         ("original", small_chain["path"])):
        out = tmp_path / f"r-{name}"
        res = runner.invoke(app, ["evaluate", "--config", str(cfg), "--history", str(source),
                                  "--chain", "hive", "--out", str(out), "--workers", "1",
                                  "--cache", str(tmp_path / "cache")])
        assert res.exit_code == 0, res.output
        reports[name] = (out / "report.md").read_text()
    assert reports["archive"] == reports["joined"]
    assert "the findings rest on 30 real payouts" in reports["archive"]
    assert "| seed | 60 |" in reports["archive"]  # 30 markets × 2 runs settled with predictions
    # the node filled the gaps with empty blocks; nothing of the markets was lost on the way
    assert reports["archive"].split("\n")[3:] == reports["original"].split("\n")[3:]


def test_cluster_report_is_byte_identical(tmp_path: Path, small_chain: dict) -> None:
    from dask.distributed import LocalCluster

    from curation_market.lab.rendering import write_report

    spec = HistorySpec((str(small_chain["path"]),), str(tmp_path / "cache"), "hive")
    cfg = small_config()
    local = evaluate(cfg, workers=1, history=spec)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        remote = evaluate(cfg, workers=1, history=spec, cluster=cluster.scheduler_address)
    write_report(local, tmp_path / "local")
    write_report(remote, tmp_path / "remote")
    for name in ("report.md", "report.html"):
        assert (tmp_path / "local" / name).read_bytes() == \
            (tmp_path / "remote" / name).read_bytes()
    assert local.markets == 60 and local.results[0].paid > 0


def test_settled_markets_leave_memory(tmp_path: Path) -> None:
    """Four weeks of real posts 100 min apart, real 7-day cashouts: about 100 posts are alive
    at once, whatever the length; the engine state keeps those, not the 400 seen."""
    posts = resample_posts(bundled_posts(), 400, 2, START, 6_000)
    path = tmp_path / "month.jsonl.gz"
    write_blocks(import_posts(posts, Anchor.of(*STEEM_17M)), path)
    compiled = compile_history([path], tmp_path / "cache", "steem")
    again = compile_history([path], tmp_path / "cache", "steem")
    assert again.root == compiled.root and compiled.paid == 400  # parsed once, then reused
    records = Path(compiled.records_path).stat().st_mtime_ns
    cfg = small_config(1)
    seed = parse_variant("seed").market_config(True)
    done = replay_history(compiled, cfg, 0, *DEFAULT_KEY, [seed], staked=False)
    h = done.harvests[seed]
    assert h.markets == 400 and done.markets_offered == 400
    alive = 7 * 24 * 3600 // 6_000  # posts created within one cashout window
    assert alive < done.peak_posts <= alive + 15
    # at the end only what has not paid is left: nothing, and none of its votes or commits
    assert len(h.state.posts) == 0 and len(h.state.votes) == 0 and len(h.state.commits) == 0
    assert Path(compiled.records_path).stat().st_mtime_ns == records


def test_history_input_errors_are_said(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--history", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "no such file" in res.output
    res = runner.invoke(app, ["evaluate", "--chain", "hive"])
    assert res.exit_code == 2 and "go with --history" in res.output
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / MANIFEST).write_bytes(Archive("hive", 1, 100, 50).dump())
    res = runner.invoke(app, ["evaluate", "--history", str(tmp_path / "a"), "--cache",
                              str(tmp_path / "c")])
    assert res.exit_code == 1 and "incomplete" in res.output


def test_pre_hf17_payouts_a_month_later_are_markets(tmp_path: Path) -> None:
    """``data/hive5m_long_payouts.jsonl.gz``: 12 real paid posts from
    ../shared/data/hive-5m/posts.jsonl (hivemind's recorded dumps), created 2016-08-15/16 under
    the 2016 rules: four paid 30.95–31.04 days after creation (the second payout, 30 days after
    the first), eight paid after about a day. The facts must still come in creation order (else
    the agents decide after the window closed) and the month-old posts must still be in the
    replay's state when they pay (else their markets vanish)."""
    with gzip.open(DATA / "hive5m_long_payouts.jsonl.gz", "rb") as fh:
        posts = [orjson.loads(line) for line in fh]
    path = tmp_path / "posts.jsonl"
    path.write_bytes(b"".join(orjson.dumps(p) + b"\n" for p in posts))
    compiled = compile_history([path], tmp_path / "cache", "hive", settle_pending=False)
    assert compiled.paid == 12 and compiled.refused_posts == 0
    # fminerten1/this-steemit-billboard...: 2016-08-15T18:06:45 → 2016-09-15T19:01:42
    assert compiled.max_delay == chain_time("2016-09-15T19:01:42") - \
        chain_time("2016-08-15T18:06:45")
    created = [f.created for f in read_facts(compiled)]
    assert len(created) == 12 and created == sorted(created)
    cfg = EvalConfig.model_validate({"evaluate": {"runs": 1, "variants": ["seed"],
                                                  "settle_pending": False}})
    seed = parse_variant("seed").market_config(True)
    done = replay_history(compiled, cfg, 0, *DEFAULT_KEY, [seed], staked=False)
    h = done.harvests[seed]
    assert done.markets_offered == 12
    assert h.markets == 12 and "commit_window_closed" not in h.rejections
    # every market is a bootstrap unit, and its awards add up to the harvest's
    assert len(h.units) == 12
    assert sum(x for u in h.units.values() for x in u.values()) == sum(h.rewards.values())
    assert len(h.state.posts) == 0
