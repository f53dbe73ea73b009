"""The chain profile: each chain's own id in commitments, and the curation share of its era.

Data bundled here (never ../shared at run time):

- ``curation_market/data/hived_get_config.json`` (packaged: the dev node answers with it) and
  ``tests/data/hived_get_version.json``: hived's recorded ``database_api.get_config`` /
  ``get_version`` answers (openhive-network/hive 1584099c,
  ``tests/python/api_tests/pattern_tests/tavern/database_api_patterns/{get_config,
  get_version}/get.pat.json``). The test node's Hive flavour answers get_config with the first.
- ``tests/data/steemd_testnet_get_config.json``: steemd's recorded ``database_api.get_config``
  of a 0.21 testnet (steemit/steem 513bc530, ``python_scripts/tests/api_tests/database_api/
  get_config.json.pat``): a real steemd shape, with testnet id and symbol names.

Blocks are built with the project's own assembler (:mod:`indexer.postdump`), dated after HF21
for the Hive runs; curator ops with :mod:`curation_market.curator.ops`, so the tests feed
what the product writes.
"""

from __future__ import annotations

import json
import threading
import time
from fractions import Fraction
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from curation.chains import (
    HF21_TIME,
    HIVE,
    HIVE_CHAIN_ID,
    STEEM,
    STEEM_CHAIN_ID,
    curation_fraction,
)
from curation.chaintime import chain_time
from curation.commitment import commitment
from curation.market import Applier, MarketConfig
from curation.state import Account, Globals, State
from curation_market.cli.main import app
from curation_market.config import ConfigError, Settings, load_settings
from curation_market.curator.client import KEY_ENV
from curation_market.curator.ops import commit_payload, custom_json_op, reveal_payload
from curation_market.daemon.run import Daemon
from curation_market.devnode.node import TestNode
from curation_market.report.build import build_report
from indexer import schema as t
from indexer.blockfile import write_blocks
from indexer.chain import NodeClient, profile_from
from indexer.ops import Adapter
from indexer.postdump import Anchor, Events, assemble, import_posts
from indexer.store import Store
from rewards.rules import Rules, label_fraction, named
from rewards.settle import pool_for

DATA = Path(__file__).parent / "data"
PACKAGED = Path(__file__).parent.parent / "curation_market" / "data"
BLOCKS = DATA / "hive5m_raw_blocks.jsonl.gz"
OPS = DATA / "hive5m_ops.jsonl.gz"
runner = CliRunner()


# --- the era rule --------------------------------------------------------------------------
def test_hf21_time_is_the_hardforks_own() -> None:
    # STEEM_HARDFORK_0_21_TIME 1566918000 // Tue, 27 August 2019 15:00:00 UTC
    assert chain_time("2019-08-27T15:00:00") == HF21_TIME


@pytest.mark.parametrize(("time", "fraction"), [
    (chain_time("2017-11-07T01:25:09"), Fraction(1, 4)),  # the bundled demo's era
    (HF21_TIME - 1, Fraction(1, 4)),
    (HF21_TIME, Fraction(1, 4)),  # the activation block paid its cashouts before the fork
    (HF21_TIME + 1, Fraction(1, 2)),
    (HF21_TIME + 3, Fraction(1, 2)),  # the next block slot: HF21 in force
    (chain_time("2020-03-20T14:00:00"), Fraction(1, 2)),  # Hive's own first block era
])
def test_curation_fraction_by_era(time: int, fraction: Fraction) -> None:
    assert curation_fraction(time) == fraction


def test_configured_fraction_overrides_the_era() -> None:
    assert pool_for(12_345, Rules(), None, Fraction(1, 2)) == (6_172, 0)
    assert pool_for(12_345, Rules(), None, Fraction(1, 4)) == (3_086, 0)
    fixed = Rules(curation_fraction=Fraction(1, 4))
    assert pool_for(12_345, fixed, None, Fraction(1, 2)) == (3_086, 0)
    with pytest.raises(ValueError, match="no chain fraction"):
        pool_for(12_345, Rules(), None)
    assert label_fraction(named("seed").label) is None and "fraction=era" in named("seed").label
    assert label_fraction(fixed.label) == Fraction(1, 4)


def _paid_at(times: list[int], cfg: MarketConfig) -> list[int]:
    """Pools of posts paid in blocks stamped ``times`` (one post each, F = 10.001)."""
    anchor = Anchor(35_900_000, times[0] - 9 * 86_400)
    events = Events.empty()
    for i, paid in enumerate(times):
        created = paid - 7 * 86_400
        events.tx(anchor.block_at(created), (i,), [_post(f"a{i}", "p")])
        events.vop(anchor.block_at(paid), (i,), _reward(f"a{i}", "p", 10_001))
    state = State()
    adapter, applier = Adapter(cfg.market_id, cfg.limits), Applier(state, cfg)
    for raw in assemble(events, anchor):
        applier.apply(adapter.block(raw))
    return [m.pool for m in sorted(state.settled, key=lambda m: m.time)]


def test_the_engine_pays_by_the_settled_blocks_time_to_the_second() -> None:
    times = [HF21_TIME - 3, HF21_TIME, HF21_TIME + 3]
    assert _paid_at(times, MarketConfig()) == [2_500, 2_500, 5_000]
    fixed = MarketConfig(rules=named("seed", curation_fraction=Fraction(1, 4)))
    assert _paid_at(times, fixed) == [2_500, 2_500, 2_500]


# --- config --------------------------------------------------------------------------------
def test_config_defaults_follow_the_chain(tmp_path: Path) -> None:
    s = Settings()
    assert s.chain.chain_id is None and s.chain.id == STEEM_CHAIN_ID
    assert s.rules.curation_fraction is None
    cfg = s.market_config()
    assert (cfg.chain_id, cfg.chain, cfg.rules.curation_fraction) == (STEEM_CHAIN_ID, "steem",
                                                                     None)
    path = tmp_path / "c.toml"
    path.write_text('[chain]\nname = "hive"\n[rules]\ncuration_fraction = "0.5"\n')
    hive = load_settings(path)
    assert hive.chain.id == HIVE_CHAIN_ID
    cfg = hive.market_config()
    assert (cfg.chain_id, cfg.chain, cfg.rules.curation_fraction) == (HIVE_CHAIN_ID, "hive",
                                                                     Fraction(1, 2))
    path.write_text(f'[chain]\nname = "hive"\nchain_id = "{STEEM_CHAIN_ID}"\n')
    assert load_settings(path).chain.id == STEEM_CHAIN_ID  # a configured id wins the name's


@pytest.mark.parametrize(("text", "key", "words"), [
    ('[chain]\nchain_id = "BEEAB0DE"\n', "chain.chain_id", "pattern"),
    ('[chain]\nname = "eos"\n', "chain.name", "'steem' or 'hive'"),
    ('[chain]\nid = "x"\n', "chain.id", "unknown key"),
    ('[rules]\ncuration_fraction = "half"\n', "rules.curation_fraction", "decimal string"),
])
def test_config_errors_name_the_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert key in str(err.value) and words in str(err.value)


def test_config_against_the_node(tmp_path: Path) -> None:
    assert Settings().chain.against(HIVE, "n") is HIVE  # nothing configured: the node's
    path = tmp_path / "c.toml"
    path.write_text(f'[chain]\nchain_id = "{STEEM_CHAIN_ID}"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path).chain.against(HIVE, "http://n")
    msg = str(err.value)
    assert "chain.chain_id" in msg and STEEM_CHAIN_ID in msg and HIVE_CHAIN_ID in msg
    assert "\n" not in msg
    path.write_text('[chain]\nname = "steem"\n')  # said explicitly: the node must agree
    with pytest.raises(ConfigError, match="chain.name is 'steem' but the node http://n is hive"):
        load_settings(path).chain.against(HIVE, "http://n")
    path.write_text(f'[chain]\nname = "hive"\nchain_id = "{HIVE_CHAIN_ID}"\n')
    assert load_settings(path).chain.against(HIVE, "n") is HIVE


# --- the profile a node reports ---------------------------------------------------------------
def test_profile_of_recorded_hived_answers() -> None:
    config = json.loads((PACKAGED / "hived_get_config.json").read_text())
    version = json.loads((DATA / "hived_get_version.json").read_text())
    assert config["STEEM_CHAIN_ID"] == STEEM_CHAIN_ID  # hived keeps the old id too: not Hive's
    p = profile_from(config, version)
    assert (p.name, p.chain_id, p.core, p.dollar, p.hardfork_version) == \
        ("hive", HIVE_CHAIN_ID, "HIVE", "HBD", "1.25.0")
    assert p.effective_votes and p.vesting_completed
    assert profile_from(config, {}).chain_id == HIVE_CHAIN_ID  # from get_config alone


def test_profile_of_a_recorded_steemd_answer() -> None:
    config = json.loads((DATA / "steemd_testnet_get_config.json").read_text())
    testnet = "18dcf0a285365fc58b71f18b3d3fec954aa0c141c44e4e5cb4cf777b9eab274e"
    p = profile_from(config, {"blockchain_version": "0.21.0", "chain_id": testnet})
    assert (p.name, p.chain_id, p.core, p.dollar, p.hardfork_version) == \
        ("steem", testnet, "TESTS", "TBD", "0.21.0")
    assert not p.effective_votes and not p.vesting_completed
    with pytest.raises(Exception, match="neither HIVE_CHAIN_ID nor STEEM_CHAIN_ID"):
        profile_from({"FOO_CHAIN_ID": STEEM_CHAIN_ID}, {})


@pytest.mark.parametrize("chain", ["hive", "steem"])
def test_test_node_answers_each_chains_own_profile(chain: str) -> None:
    with TestNode.from_files([BLOCKS], head=1_100, chain=chain) as node:
        p = NodeClient([node.url], retries=1).profile()
        want = HIVE if chain == "hive" else STEEM
        assert (p.name, p.chain_id, p.core, p.dollar) == \
            (want.name, want.chain_id, want.core, want.dollar)
        version = node.version()
    if chain == "hive":
        assert p.hardfork_version == "1.27.0"
        assert set(version) == {"blockchain_version", "chain_id", "fc_revision",
                                "hive_revision", "node_type"}
    else:
        assert p.hardfork_version == "0.23.0"
        assert set(version) == {"blockchain_version", "chain_id", "fc_revision",
                                "steem_revision"}


# --- a Hive run after HF21 ---------------------------------------------------------------
HIVE_ANCHOR = Anchor.of(45_000_000, "2020-07-01T00:00:00")  # Hive's own era
F = 12_345


def _post(author: str, permlink: str) -> list:
    return ["comment", {"parent_author": "", "parent_permlink": "hive", "author": author,
                        "permlink": permlink, "title": "", "body": "", "json_metadata": ""}]


def _reward(author: str, permlink: str, final: int) -> list:
    """A payout vop as hived writes it (HBD; F = total + curator + beneficiary)."""
    def hbd(milli: int) -> str:
        return f"{milli // 1000}.{milli % 1000:03d} HBD"

    curator = final // 2
    return ["comment_reward", {"author": author, "permlink": permlink,
                               "payout": hbd(final), "author_rewards": 0,
                               "total_payout_value": hbd(final - curator),
                               "curator_payout_value": hbd(curator),
                               "beneficiary_payout_value": hbd(0)}]


SALT = bytes(range(32))


def hive_blocks() -> list[dict]:
    """bob posts; alice commits hashed with Hive's id, carol with Steem's zeros; both reveal;
    the post pays F a week later."""
    t0 = HIVE_ANCHOR.time + 30
    ev = Events.empty()
    n = iter(range(100))

    def tx(t: int, op: list) -> None:
        ev.tx(HIVE_ANCHOR.block_at(t), (t, next(n)), [op])

    tx(t0, _post("bob", "after-hf21"))
    ev.vop(HIVE_ANCHOR.block_at(t0 + 60), (t0 + 60, next(n)),
           ["effective_comment_vote", {"voter": "dave", "author": "bob",
                                       "permlink": "after-hf21", "rshares": 10_000}])
    for i, (who, chain_id) in enumerate((("alice", HIVE_CHAIN_ID), ("carol", STEEM_CHAIN_ID))):
        payload = commit_payload(chain_id, "bob", "after-hf21", who, 12_000, SALT)
        tx(t0 + 120 + 9 * i, custom_json_op("curation_market", who, payload))
        tx(t0 + 1_900 + 9 * i, custom_json_op(
            "curation_market", who, reveal_payload("bob", "after-hf21", 12_000, SALT)))
    ev.vop(HIVE_ANCHOR.block_at(t0 + 7 * 86_400), (t0 + 7 * 86_400, next(n)),
           _reward("bob", "after-hf21", F))
    blocks = list(assemble(ev, HIVE_ANCHOR))
    assert blocks[0]["timestamp"] > "2019-08-27T15:00:00"
    return blocks


@pytest.mark.parametrize(("chain", "accepted", "mismatched"), [
    ("hive", "alice", "carol"), ("steem", "carol", "alice")])
def test_a_replay_hashes_with_the_named_chains_id(tmp_path: Path, chain: str, accepted: str,
                                                  mismatched: str) -> None:
    blocks_file = tmp_path / "blocks.jsonl"
    write_blocks(hive_blocks(), blocks_file)
    accounts = tmp_path / "accounts.jsonl"
    accounts.write_text("".join(json.dumps({"name": who, "vesting_shares": "1000.000000 VESTS"})
                                + "\n" for who in ("alice", "carol")))
    globals_file = tmp_path / "globals.json"
    globals_file.write_text(json.dumps({"total_vesting_fund_hive": "1000.000 HIVE",
                                        "total_vesting_shares": "1000.000000 VESTS"}))
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[chain]\nname = "{chain}"\n')
    db = f"sqlite:///{tmp_path / 'm.db'}"
    res = runner.invoke(app, ["replay", str(blocks_file), "--db", db, "--config", str(cfg),
                              "--accounts", str(accounts), "--globals", str(globals_file)])
    assert res.exit_code == 0, res.output
    engine = create_engine(db)
    with engine.connect() as conn:
        rejected = conn.execute(select(t.rejections.c.account, t.rejections.c.reason)).all()
        stored_id = conn.execute(select(t.meta.c.chain_id)).scalar_one()
    assert rejected == [(mismatched, "hash_mismatch")]
    assert stored_id == (HIVE_CHAIN_ID if chain == "hive" else STEEM_CHAIN_ID)
    [market] = build_report(engine)["markets"]
    assert market["final_payout"] == F
    # 6172: floor
    assert (market["pool"], market["settlement"]["curation_fraction"]) == (F // 2, "0.5")
    [winner] = [p for p in market["predictions"] if p["reward"]]
    assert (winner["predictor"], winner["reward"], market["returned"]) == (accepted, F // 2, 0)
    # the database keeps its chain: a replay under the other chain's id is refused
    other = "steem" if chain == "hive" else "hive"
    cfg.write_text(f'[chain]\nname = "{other}"\n')
    res = runner.invoke(app, ["replay", str(blocks_file), "--db", db, "--config", str(cfg)])
    assert res.exit_code == 2 and "database was built on chain id" in res.output


def test_a_fixed_fraction_in_the_config_wins_after_hf21(tmp_path: Path) -> None:
    cfg = MarketConfig(chain_id=HIVE_CHAIN_ID, chain="hive",
                       rules=named("seed", curation_fraction=Fraction(1, 4)))
    state = State(globals=Globals(1000, 1000))
    state.accounts["alice"] = Account("alice", vesting_shares=1_000_000)
    adapter, applier = Adapter(cfg.market_id, cfg.limits), Applier(state, cfg)
    for raw in hive_blocks():
        applier.apply(adapter.block(raw))
    [market] = state.settled
    assert (market.final_payout, market.pool) == (F, F // 4)


# --- the daemon against the test node -------------------------------------------------------
def _daemon(tmp_path: Path, node: TestNode, chain_toml: str, db: str, until: int) -> Daemon:
    cfg = tmp_path / "d.toml"
    cfg.write_text(chain_toml + "[node]\npoll_seconds = 0.05\nretries = 2\n"
                   "backoff_seconds = 0.05\nhealth_seconds = 0.5\n")
    return Daemon(load_settings(cfg), [node.url], create_engine(db), until=until)


def _run(daemon: Daemon, timeout: float = 30.0) -> int:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert codes, "the daemon did not stop in time"
    return codes[0]


def test_daemon_stops_on_a_configured_chain_id_other_than_the_nodes(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'd.db'}"
    with TestNode.from_files([BLOCKS], ops=[OPS], head=1_100, lag=20) as node:
        daemon = _daemon(tmp_path, node, f'[chain]\nchain_id = "{STEEM_CHAIN_ID}"\n', db, 50)
        started = time.monotonic()
        assert _run(daemon) == 1
        assert time.monotonic() - started < 10
        msg = str(daemon.error)
        assert "chain.chain_id" in msg and STEEM_CHAIN_ID in msg and HIVE_CHAIN_ID in msg
        assert "\n" not in msg
        # the CLI says it in one line, exit code 2, nothing indexed
        res = runner.invoke(app, ["run", "--node", node.url, "--db", db, "--config",
                                  str(tmp_path / "d.toml"), "--until", "50"])
    assert res.exit_code == 2 and "chain.chain_id" in res.output
    with create_engine(db).connect() as conn:
        assert conn.execute(select(t.meta.c.last_block, t.meta.c.chain_id)).one() == (0, "")


def test_daemon_adopts_the_nodes_chain_id_when_unset(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'd.db'}"
    with TestNode.from_files([BLOCKS], ops=[OPS], head=1_100, lag=20) as node:
        daemon = _daemon(tmp_path, node, "", db, 50)
        assert _run(daemon) == 0 and daemon.ingester.checkpoint == 50
        assert daemon.profile is not None and daemon.profile.name == "hive"
        assert (daemon.cfg.chain_id, daemon.cfg.chain) == (HIVE_CHAIN_ID, "hive")
        assert daemon.ingester.cfg.chain_id == HIVE_CHAIN_ID
        assert Store(create_engine(db), None, daemon.cfg.rules.label).chain_id == HIVE_CHAIN_ID
        # resumed later with the same node: fine; with chain.name said wrongly: refused
        again = _daemon(tmp_path, node, "", db, 60)
        assert _run(again) == 0 and again.ingester.checkpoint == 60
        wrong = _daemon(tmp_path, node, '[chain]\nname = "steem"\n', db, 70)
        assert _run(wrong) == 1 and "chain.name is 'steem'" in str(wrong.error)
    # a database built on Steem's id is refused by a daemon on a Hive node
    steem_db = f"sqlite:///{tmp_path / 'steem.db'}"
    Store(create_engine(steem_db), STEEM_CHAIN_ID, named("seed").label) \
        .claim_chain(STEEM_CHAIN_ID)
    with TestNode.from_files([BLOCKS], ops=[OPS], head=1_100, lag=20) as node:
        daemon = _daemon(tmp_path, node, "", steem_db, 50)
        assert _run(daemon) == 1
    assert "database was built on chain id " + STEEM_CHAIN_ID in str(daemon.error)


# --- the curator client --------------------------------------------------------------------
POST = {"author": "bob", "permlink": "hello-hive", "parent_author": "", "parent_permlink": "t",
        "title": "hi", "created": "2020-07-01T01:00:00", "last_payout": "2020-07-01T01:45:00",
        "total_payout_value": "9.000 HBD", "curator_payout_value": "3.345 HBD",
        "active_votes": []}


def test_client_hashes_with_the_nodes_chain_id(tmp_path: Path) -> None:
    path = tmp_path / "blocks.jsonl"
    blocks = import_posts([POST])
    write_blocks(blocks, path)
    salts = tmp_path / "salts.json"
    post = ["--author", "bob", "--permlink", "hello-hive", "--salt-file", str(salts)]
    with TestNode.from_files([path], head=blocks[0]["block_num"], lag=2, chain="hive") as node:
        wif = node.add_account("alice")
        res = runner.invoke(app, ["commit", *post, "--node", node.url, "--prediction", "12.000"],
                            env={KEY_ENV: wif})
        assert res.exit_code == 0, res.output
        sent = orjson.loads(res.stdout)
        [entry] = json.loads(salts.read_text()).values()
        payload = json.loads(sent["transaction"]["operations"][0][1]["json"])
        assert sent["chain_id"] == HIVE_CHAIN_ID
        assert payload["commitment"] == commitment(
            HIVE_CHAIN_ID, "bob", "hello-hive", "alice", 12_000, bytes.fromhex(entry["salt"]))
        # a configured id other than the node's is refused before anything is signed
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[chain]\nchain_id = "{STEEM_CHAIN_ID}"\n')
        res = runner.invoke(app, ["commit", *post, "--node", node.url, "--prediction", "1.000",
                                  "--config", str(cfg)], env={KEY_ENV: wif})
        assert res.exit_code == 2 and "chain.chain_id" in res.output, res.output
        assert STEEM_CHAIN_ID in res.output and HIVE_CHAIN_ID in res.output
        node.advance(3)
        assert len(node.included) == 1  # only the first commit reached the chain
        cfg.write_text(f'[chain]\nchain_id = "{HIVE_CHAIN_ID}"\n')  # the node's: fine
        res = runner.invoke(app, ["commit", *post, "--node", node.url, "--prediction", "1.000",
                                  "--config", str(cfg), "--dry-run", "--replace"],
                            env={KEY_ENV: wif})
        assert res.exit_code == 0, res.output
