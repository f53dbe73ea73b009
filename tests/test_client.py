"""The curator client end to end: CLI → beem → test node → block → ingester → report.

Real parts only: the test node is a real JSON-RPC HTTP server on a loopback ephemeral port,
the CLI signs with a throwaway key made here and broadcasts with beem, and the node's blocks
are read back over beem's batched JSON-RPC into the existing Ingester and an SQLite database.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from beemgraphenebase.account import PrivateKey
from beemstorage import InRamConfigurationStore
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from curation.commitment import commitment
from curation_market.cli.main import app
from curation_market.config import Settings
from curation_market.curator.client import KEY_ENV
from curation_market.devnode.node import TestNode
from curation_market.report.build import build_report, load_outcomes
from indexer import schema as t
from indexer.blockfile import write_blocks
from indexer.ingest import Ingester
from indexer.postdump import import_posts
from indexer.store import Store

runner = CliRunner()
POST = {  # a root post paid 45 minutes after it appeared (short, so the test stays fast)
    "author": "bob", "permlink": "hello-market", "parent_author": "", "parent_permlink": "test",
    "title": "hello", "created": "2017-11-07T01:00:00", "last_payout": "2017-11-07T01:45:00",
    "total_payout_value": "9.000 SBD", "curator_payout_value": "3.345 SBD",
    "active_votes": [{"voter": "carol", "weight": 100, "rshares": 5_000_000, "percent": 10000,
                      "time": "2017-11-07T01:10:00"}],
}


@pytest.fixture()
def chain(tmp_path: Path):
    path = tmp_path / "blocks.jsonl"
    blocks = import_posts([POST])
    write_blocks(blocks, path)
    first = blocks[0]["block_num"]
    with TestNode.from_files([path], head=first, lag=2, chain="steem") as node:
        yield node, first


def node_blocks(url: str, start: int, stop: int, batch: int = 200):
    """Blocks start..stop as block dicts with their virtual ops, read over batched JSON-RPC."""
    from beem.blockchaininstance import BlockChainInstance

    chain = BlockChainInstance(node=url, config_store=InRamConfigurationStore(),
                               num_retries=1)
    rpc = chain.rpc
    for lo in range(start, stop + 1, batch):
        nums = list(range(lo, min(lo + batch, stop + 1)))
        for i, n in enumerate(nums):
            got = rpc.get_block({"block_num": n}, api="block", add_to_queue=i < len(nums) - 1)
        blocks = got if isinstance(got, list) else [got]
        for i, n in enumerate(nums):
            got = rpc.get_ops_in_block({"block_num": n, "only_virtual": True},
                                       api="account_history", add_to_queue=i < len(nums) - 1)
        vops = got if isinstance(got, list) else [got]
        for n, b, v in zip(nums, blocks, vops, strict=True):
            yield {**b["block"], "block_num": n, "virtual_ops": [o["op"] for o in v["ops"]]}


def ingest(node: TestNode, db: str, start: int) -> Store:
    settings = Settings()
    cfg = settings.market_config()
    store = Store(create_engine(db), settings.chain.chain_id, cfg.rules.label)
    ing = Ingester(store, cfg, batch_blocks=500)
    ing.run(node_blocks(node.url, max(start, ing.checkpoint + 1), node.irreversible))
    return store


def cli(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env or {})


def test_commit_and_reveal_reach_the_report(chain, tmp_path: Path) -> None:
    node, first = chain
    wif = node.add_account("alice")
    salts = tmp_path / "salts.json"
    db = f"sqlite:///{tmp_path / 'market.db'}"
    common = ["--author", "bob", "--permlink", "hello-market", "--node", node.url,
              "--salt-file", str(salts)]

    res = cli("commit", *common, "--prediction", "12.000", env={KEY_ENV: wif})
    assert res.exit_code == 0, res.output
    sent = json.loads(res.stdout)
    assert sent["predictor"] == "alice"  # found from the key by the node
    stored = json.loads(salts.read_text())
    [entry] = stored.values()
    assert entry["prediction"] == 12000
    payload = json.loads(sent["transaction"]["operations"][0][1]["json"])
    assert payload["commitment"] == commitment("0" * 64, "bob", "hello-market", "alice", 12000,
                                               bytes.fromhex(entry["salt"]))

    node.advance(3)
    [inc] = node.included
    assert inc.trx_id == sent["trx_id"] and inc.block_num == first + 1
    store = ingest(node, db, first)
    with store.engine.connect() as conn:
        row = conn.execute(select(t.commits)).mappings().one()
    assert (row["predictor"], row["block"], row["prediction"]) == ("alice", first + 1, None)

    # after the 30-minute window (600 blocks of 3 s), reveal from a key file this time
    node.advance(600)
    key_file = tmp_path / "posting.key"
    key_file.write_text(wif + "\n")
    res = cli("reveal", *common, "--key-file", str(key_file), "--account", "alice")
    assert res.exit_code == 0, res.output
    assert json.loads(json.loads(res.stdout)["transaction"]["operations"][0][1]["json"])[
        "prediction"] == "12.000"
    node.advance(3)
    ingest(node, db, first)
    with store.engine.connect() as conn:
        row = conn.execute(select(t.commits)).mappings().one()
        assert conn.execute(select(t.rejections)).first() is None
    assert row["prediction"] == 12000 and row["reveal_block"] == node.included[-1].block_num

    # to the payout (45 min after the post): the market settles and the report shows it
    node.advance(300)
    ingest(node, db, first)
    [market] = build_report(store.engine)["markets"]
    assert (market["author"], market["final_payout"]) == ("bob", 12345)
    [pred] = market["predictions"]
    assert (pred["predictor"], pred["prediction"], pred["revealed"], pred["qualified"]) == \
        ("alice", 12000, True, True)
    # this ingester has no Steem Power for alice (the daemon reads it from the node), so the
    # weight is 0 and the pool goes back: what matters here is that the reveal was judged
    assert (pred["sp_known"], pred["reward"], market["returned"]) == (False, 0, market["pool"])


def test_dry_run_signs_but_sends_and_stores_nothing(chain, tmp_path: Path) -> None:
    node, _ = chain
    wif = node.add_account("alice")
    salts = tmp_path / "salts.json"
    res = cli("commit", "--author", "bob", "--permlink", "hello-market", "--prediction", "1.5",
              "--node", node.url, "--salt-file", str(salts), "--dry-run", env={KEY_ENV: wif})
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["broadcast"] is False and len(out["transaction"]["signatures"]) == 1
    node.advance(2)
    assert node.included == [] and not salts.exists()


def test_key_rules_and_refusals(chain, tmp_path: Path) -> None:
    node, _ = chain
    node.add_account("alice")
    base = ["commit", "--author", "bob", "--permlink", "hello-market", "--prediction", "1.000",
            "--node", node.url, "--salt-file", str(tmp_path / "s.json")]
    res = cli(*base)
    assert res.exit_code == 2 and KEY_ENV in res.output
    assert cli(*base, "--key", str(PrivateKey())).exit_code != 0  # no such option, by design
    res = cli(*base, env={KEY_ENV: "not-a-key"})
    assert res.exit_code == 2 and "valid private key" in res.output
    assert "not-a-key" not in res.output
    res = cli(*base, "--account", "alice", env={KEY_ENV: str(PrivateKey())})  # not alice's key
    assert res.exit_code == 2 and "missing required posting authority" in res.output
    res = cli("reveal", "--author", "bob", "--permlink", "other", "--node", node.url,
              "--account", "alice", "--salt-file", str(tmp_path / "s.json"),
              env={KEY_ENV: str(PrivateKey())})
    assert res.exit_code == 2 and "no stored salt" in res.output


def test_staked_commit_and_reveal_bind_stake_and_bid(chain, tmp_path: Path) -> None:
    """The commit binds --stake/--bid and stores them with the salt; the reveal takes them from
    the salt file (here found through config [node] urls, no --node) and the ingester accepts
    it: no hash_mismatch, and the stake and bid reach the database and the staked reports."""
    node, first = chain
    wif = node.add_account("alice")
    salts = tmp_path / "salts.json"
    db = f"sqlite:///{tmp_path / 'market.db'}"
    post = ["--author", "bob", "--permlink", "hello-market", "--salt-file", str(salts)]

    res = cli("commit", *post, "--node", node.url, "--prediction", "12.000",
              "--stake", "10", "--bid", "0.6", env={KEY_ENV: wif})
    assert res.exit_code == 0, res.output
    [entry] = json.loads(salts.read_text()).values()
    assert (entry["prediction"], entry["stake"], entry["bid"]) == (12000, 10000, 600)
    payload = json.loads(json.loads(res.stdout)["transaction"]["operations"][0][1]["json"])
    assert payload["commitment"] == commitment("0" * 64, "bob", "hello-market", "alice", 12000,
                                               bytes.fromhex(entry["salt"]), 10000, 600)
    node.advance(603)  # included, then past the 30-minute window

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[node]\nurls = ["{node.url}"]\n')
    key = {KEY_ENV: wif}
    for option, value in (("--bid", "0.700"), ("--stake", "9.999")):
        res = cli("reveal", *post, "--config", str(cfg), option, value, env=key)
        assert res.exit_code == 2 and f"{option} {value} differs" in res.stderr, res.output
    res = cli("reveal", *post, "--config", str(cfg), "--bid", "0.600", env=key)  # same: fine
    assert res.exit_code == 0, res.output
    payload = json.loads(json.loads(res.stdout)["transaction"]["operations"][0][1]["json"])
    assert (payload["stake"], payload["bid"]) == ("10.000", "0.600")
    node.advance(3)
    assert len(node.included) == 2  # the refused reveals sent nothing

    node.advance(300)  # to the payout
    store = ingest(node, db, first)
    with store.engine.connect() as conn:
        row = conn.execute(select(t.commits)).mappings().one()
        assert conn.execute(select(t.rejections)).first() is None  # no hash_mismatch
    assert (row["prediction"], row["stake"], row["bid"], row["status"]) == \
        (12000, 10000, 600, "settled")
    [outcome] = load_outcomes(store.engine)  # what the staked rule sets judge
    [forecast] = outcome.forecasts
    assert (forecast.predictor, forecast.stake, forecast.bid) == ("alice", 10000, 0.6)


def test_bad_terms_and_missing_node_are_refused_before_anything_is_sent(chain,
                                                                       tmp_path: Path) -> None:
    node, _ = chain
    wif = node.add_account("alice")
    salts = tmp_path / "s.json"
    base = ["commit", "--author", "bob", "--permlink", "hello-market", "--prediction", "1.000",
            "--salt-file", str(salts)]
    for option, value in (("--bid", "1.5"), ("--bid", "0.6x"), ("--stake", "-1")):
        res = cli(*base, "--node", node.url, option, value, env={KEY_ENV: wif})
        assert res.exit_code == 2 and f"{option}: expected a decimal" in res.stderr, res.output
        assert "refused" not in res.stderr
    res = cli("reveal", "--author", "bob", "--permlink", "hello-market", "--node", node.url,
              "--bid", "2", env={KEY_ENV: wif})
    assert res.exit_code == 2 and "--bid: expected a decimal between 0 and 1, like 0.600" in \
        res.stderr
    res = cli(*base, env={KEY_ENV: wif})
    assert res.exit_code == 2 and "no node: give --node URL or set [node] urls" in res.stderr
    node.advance(3)
    assert node.included == [] and not salts.exists()
