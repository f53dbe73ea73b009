"""Conformance: the daemon, following each kind of real node with the DEFAULT configuration,
settles every market exactly as a replay of the same blocks does.

Node flavours (the dev node's ``serve_as``): ``hived`` (get_block_range, effective votes,
NAI, HIVE_CHAIN_ID), ``steemd`` 0.23 (no get_block_range, no effective_comment_vote, integer
``virtual_op``, votes from ``get_active_votes``), ``jussi`` (steemd behind jussi's batch limit
of 50, as api.steemit.com ran), ``lagging`` (hived whose account-history backend is behind
its block backend and answers ``{"ops": []}`` above its own LIB) and ``jussi-lagging`` (both:
steemd's rocksdb history behind jussi, the api.steemit.com arrangement).

The history: real paid Steem posts of the block-17M snapshot with their real votes (voters,
rshares, percents; curation_market/data/steem17m_posts.jsonl.gz), on a compressed clock so that a
post pays 45 minutes after it appears (the default window of 30 minutes and the reveal period
still apply); curators commit inside the window and reveal after it. The reference is the
replay of the importer's blocks, where every vote is an ``effective_comment_vote`` at its time.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select

from curation.chains import PROFILES
from curation.chaintime import chain_time, format_time
from curation_market.config import Chain, Settings, load_settings
from curation_market.daemon.run import Daemon
from curation_market.devnode.node import DUMMY_KEY, TestNode
from curation_market.lab.demo import bundled_posts
from indexer import schema as t
from indexer.accounts import account_from, globals_from
from indexer.blockfile import write_blocks
from indexer.chain import ChainError
from indexer.ingest import Ingester
from indexer.postdump import STEEM_17M, Anchor, Events, import_posts
from indexer.store import Store
from tests.helpers import commit_op, reveal_op

ANCHOR = Anchor.of(*STEEM_17M)
PAYOUT_AFTER = 45 * 60  # seconds from a post to its payout on the compressed clock
SPACING = 150  # seconds between two posts
WEEK = 7 * 86400
CURATORS = {"cmc-alice": "2000.000000", "cmc-bob": "500.000000", "cmc-carol": "125.000000",
            "cmc-dave": "50.000000"}
# the posts: five paid roots, two declined roots of ned (r > 0, F = 0: the author average),
# and ned's paid replies (markets when replies are: their own average, §6)
ROOTS = ["markwhittam", "heimindanger", "roelandp", "thesteemitshop", "biophil"]
DEADLINE = 120.0  # seconds for one daemon run (a loaded 2-core CI machine)


def compact_posts() -> list[dict]:
    """The chosen real posts, in creation order, on the compressed clock.

    Vote times keep their order: an offset into the 7-day payout window scales to the same
    fraction of ``PAYOUT_AFTER`` (3-second aligned, as block times are); votes cast after the
    payout stay after it. Payout values, voters and rshares are the recorded ones.
    """
    paid = [p for p in bundled_posts() if p.get("last_payout", "1970") > "1970-01-01T00:00:00"
            and p.get("active_votes")]
    roots = [p for p in paid if p["depth"] == 0 and p["author"] in ROOTS]
    declined = [p for p in paid if p["author"] == "ned" and p["depth"] == 0][:2]
    replies = [p for p in paid if p["author"] == "ned" and p["depth"] > 0
               and p["total_payout_value"] != "0.000 SBD"][:5]
    chosen = sorted(roots + declined + replies, key=lambda p: p["created"])
    start = ANCHOR.time + 3 * 600  # block-aligned
    out = []
    for i, post in enumerate(chosen):
        created = chain_time(post["created"])
        new_created = start + i * SPACING
        votes = []
        for v in post["active_votes"]:
            offset = chain_time(v["time"]) - created
            if offset <= WEEK:
                new = 3 * ((offset * PAYOUT_AFTER // WEEK) // 3)
            else:
                new = PAYOUT_AFTER + 3 * (1 + min((offset - WEEK) // 3600, 40))
            votes.append({**v, "time": format_time(new_created + new)})
        out.append({**post, "created": format_time(new_created),
                    "last_payout": format_time(new_created + PAYOUT_AFTER),
                    "active_votes": votes})
    return out


def curator_events(posts: list[dict], chain_id: str) -> Events:
    """Commits spread over the window (so A(t_commit) differs), reveals after it."""
    events = Events.empty()
    shares = (95, 92, 99, 60)
    for i, post in enumerate(posts):
        created = chain_time(post["created"])
        final = _milli(post["total_payout_value"]) + _milli(post["curator_payout_value"])
        for j, who in enumerate(CURATORS):
            if (i + j) % 5 == 4:
                continue  # not everyone predicts everything
            prediction = final * shares[j] // 100
            t_commit = created + 90 + 420 * j
            t_reveal = created + 1800 + 60 + 9 * j
            author, permlink = post["author"], post["permlink"]
            events.tx(ANCHOR.block_at(t_commit), (t_commit, 5, who),
                      [commit_op(who, author, permlink, prediction, chain_id)])
            events.tx(ANCHOR.block_at(t_reveal), (t_reveal, 5, who),
                      [reveal_op(who, author, permlink, prediction)])
    return events


def _milli(amount: str) -> int:
    whole, frac = amount.split()[0].split(".")
    return int(whole) * 1000 + int(frac)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The same posts and curators on either chain: commitments hash each chain's own id."""
    posts = compact_posts()
    folder = tmp_path_factory.mktemp("conformance")
    paths = {}
    for name, profile in PROFILES.items():
        blocks = import_posts(posts, ANCHOR, extra=curator_events(posts, profile.chain_id))
        paths[name] = folder / f"{name}.jsonl"
        write_blocks(blocks, paths[name])
    payouts = [ANCHOR.block_at(chain_time(p["last_payout"])) for p in posts]
    return {"path": paths["steem"], "paths": paths, "posts": posts,
            "first": blocks[0]["block_num"], "last": blocks[-1]["block_num"],
            "payouts": payouts}


def make_node(history: dict, chain: str, head: int) -> TestNode:
    node = TestNode.from_files([history["paths"][chain]], head=head, lag=20, chain=chain)
    for name, vests in CURATORS.items():
        node.add_account(name, DUMMY_KEY, vests=f"{vests} VESTS")
    return node


def settings_for(tmp_path: Path, rules: str) -> Settings:
    if rules == "default":
        return Settings()
    path = tmp_path / "config.toml"  # only the rules change: the [node] section stays default
    path.write_text('[rules]\nname = "commit-reveal"\nunderdog = "curve"\n'
                    '[market]\ninclude_replies = true\n')
    return load_settings(path)


def replay(node: TestNode, first: int, last: int, settings: Settings, url: str) -> None:
    """The reference: the node's blocks with the chain's own virtual ops (effective votes
    included, whatever the node answers) through the replay path. A replay has no node to
    ask, so it is told the node's chain by name."""
    chain = node.state.flavour.name.lower()
    settings = settings.model_copy(update={"chain": Chain(name=chain)})
    cfg = settings.market_config()
    store = Store(create_engine(url), settings.chain.id, cfg.rules.label)
    store.set_globals(*globals_from(node.state.globals_))
    store.add_account_snapshot([account_from(node.state.accounts[n]) for n in CURATORS])
    blocks = []
    for n in range(first, last + 1):
        block = dict(node.block(n))
        block["block_num"] = n
        block["virtual_ops"] = [o["op"] for o in node.state.ops_in_block(n, True)]
        blocks.append(block)
    Ingester(store, cfg, 500).run(blocks)


def settlement(url: str) -> dict:
    """Per market: F, pool and the rest of the settlement row, and each commit's factors and
    reward; plus the author history the underdog rule averages."""
    engine = create_engine(url)
    with engine.connect() as conn:
        posts = {r.id: (r.author, r.permlink) for r in conn.execute(select(t.posts))}
        out: dict = {}
        for row in conn.execute(select(t.settlements)).mappings():
            out[posts[row["post_id"]]] = {k: v for k, v in row.items() if k != "post_id"}
        for row in conn.execute(select(t.commits)).mappings():
            key = posts[row["post_id"]]
            out.setdefault(key, {}).setdefault("commits", {})[row["predictor"]] = {
                k: v for k, v in row.items() if k not in ("post_id", "predictor")}
        history = sorted(tuple(r) for r in conn.execute(select(t.author_history)))
    engine.dispose()
    return {"markets": out, "author_history": history}


def run_daemon(settings: Settings, node: TestNode, db: str, until: int) -> Daemon:
    daemon = Daemon(settings, [node.url], create_engine(db), until=until)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run()), daemon=True)
    thread.start()
    deadline = time.monotonic() + DEADLINE
    while thread.is_alive():
        assert time.monotonic() < deadline, f"daemon stuck at {daemon.ingester.checkpoint}"
        thread.join(0.05)
    assert codes == [0], daemon.error
    return daemon


FLAVOURS = {  # name → (chain, serve_as arguments)
    "hived": ("hive", {"server": "hived"}),
    "steemd": ("steem", {"server": "steemd"}),
    "jussi": ("steem", {"server": "steemd", "batch_limit": 50}),
    "lagging": ("hive", {"server": "hived"}),
    "jussi-lagging": ("steem", {"server": "steemd", "batch_limit": 50}),
}


@pytest.mark.parametrize("rules", ["default", "ia-underdog"])
@pytest.mark.parametrize("flavour", list(FLAVOURS))
def test_daemon_settles_like_the_replay(history: dict, tmp_path: Path, flavour: str,
                                        rules: str) -> None:
    chain, serve = FLAVOURS[flavour]
    settings = settings_for(tmp_path, rules)
    first, last = history["first"], history["last"]
    lag = 0
    if flavour.endswith("lagging"):  # the last payout lies in blocks the history lacks
        lag = last - max(history["payouts"]) + 5
    with make_node(history, chain, head=last + 20) as node:
        node.serve_as(**serve, history_lag=lag, posts=history["posts"])
        db = f"sqlite:///{tmp_path / 'daemon.db'}"
        ref = f"sqlite:///{tmp_path / 'replay.db'}"
        if lag:
            daemon = _run_lagging(settings, node, db, last, lag)
        else:
            daemon = run_daemon(settings, node, db, last)
        replay(node, first, last, settings, ref)
        client = daemon.client
        caps = client.caps[node.url]
        if flavour.startswith("jussi"):
            assert node.refused_batches >= 1 and node.largest_batch <= 50
            assert caps.call_limit == 50  # learnt from jussi's answer, kept from then on
        else:
            assert node.refused_batches == 0
        assert caps.block_range is (serve["server"] == "hived")
        assert caps.profile is not None and caps.profile.effective_votes is (chain == "hive")
        calls, n = node.calls, last - first + 1
        if not lag:  # the cost: each block's ops asked once; get_block only without a range
            assert calls["account_history_api.get_ops_in_block"] == n
            assert calls.get("block_api.get_block", 0) == (0 if caps.block_range else n)
            # a chain without effective votes: one get_active_votes per paid post, no more
            assert calls.get("condenser_api.get_active_votes", 0) == \
                (0 if chain == "hive" else len(history["posts"]))
    got, want = settlement(db), settlement(ref)
    markets = [p for p in history["posts"] if rules != "default" or p["depth"] == 0]
    assert len(want["markets"]) == len(markets)  # every market paid
    assert sum(len(m.get("commits", {})) for m in want["markets"].values()) >= 20
    if rules != "default":  # rshares matter here: information added and the underdog rule
        ias = {c["ia"] for m in want["markets"].values() for c in m.get("commits", {}).values()}
        assert len(ias) > 5 and any(0 < ia < 1 for ia in ias if ia is not None)
        assert any(m.get("f") not in (None, 0.5) for m in want["markets"].values())
    assert got == want


def _run_lagging(settings: Settings, node: TestNode, db: str, last: int, lag: int) -> Daemon:
    """The history backend lacks the last ``lag`` irreversible blocks: the daemon must stop
    before them (never index them empty), then take them once the backend has them."""
    daemon = Daemon(settings, [node.url], create_engine(db), until=last)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run()), daemon=True)
    thread.start()
    deadline = time.monotonic() + DEADLINE
    while daemon.client.distrusted == 0 or daemon.ingester.checkpoint < last - lag:
        assert thread.is_alive() and time.monotonic() < deadline, daemon.error
        time.sleep(0.05)
    held = daemon.ingester.checkpoint
    assert held == last - lag  # nothing of the blocks without their ops was written
    node.advance(lag)  # the backend catches up with them
    while thread.is_alive():
        assert time.monotonic() < deadline, f"daemon stuck at {daemon.ingester.checkpoint}"
        thread.join(0.05)
    assert codes == [0], daemon.error
    return daemon


def test_jussi_refuses_an_oversize_batch_as_jussi_does(history: dict) -> None:
    """jussi/middlewares/limits.py + errors.py: HTTP 200, one error object, code 1600."""
    with make_node(history, "steem", head=history["first"] + 10) as node:
        node.serve_as("steemd", batch_limit=50)
        calls = [{"jsonrpc": "2.0", "id": i, "method": "block_api.get_block",
                  "params": {"block_num": history["first"]}} for i in range(51)]
        resp = requests.post(node.url, json=calls, timeout=10)
        ok = requests.post(node.url, json=calls[:50], timeout=10)
    assert resp.status_code == 200 and resp.headers["x-jussi-error-id"]
    doc = resp.json()
    assert doc["id"] is None and doc["error"]["code"] == 1600
    assert doc["error"]["message"] == "JSONRPC batch size of 51 exceeds 50"
    assert set(doc["error"]["data"]) == {"error_id", "jussi_request_id"}
    assert len(ok.json()) == 50


def test_steemd_answers_in_steemd_shapes(history: dict) -> None:
    paid = min(history["payouts"])
    with make_node(history, "steem", head=paid + 30) as node:
        node.serve_as("steemd", posts=history["posts"])
        post = requests.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method":
                                             "account_history_api.get_ops_in_block",
                                             "params": {"block_num": paid,
                                                        "only_virtual": True}}, timeout=10)
        ranged = requests.post(node.url, json={"jsonrpc": "2.0", "id": 2, "method":
                                               "block_api.get_block_range", "params": {
                                                   "starting_block_num": paid, "count": 2}},
                               timeout=10)
    ops = post.json()["result"]["ops"]
    names = [o["op"]["type"] for o in ops]
    assert "comment_reward_operation" in names and "producer_reward_operation" in names
    assert "effective_comment_vote_operation" not in names
    assert [o["virtual_op"] for o in ops] == list(range(1, len(ops) + 1))
    assert {o["op_in_trx"] for o in ops} == {0} and all("operation_id" not in o for o in ops)
    reward = next(o["op"]["value"] for o in ops if o["op"]["type"] == "comment_reward_operation")
    assert set(reward) == {"author", "permlink", "payout"}
    assert "Could not find method get_block_range" in ranged.json()["error"]["message"]


@pytest.mark.parametrize("case", ["no_account_history", "clear_votes"])
def test_a_node_that_cannot_give_what_is_needed_is_named(history: dict, tmp_path: Path,
                                                        case: str) -> None:
    """steemd without the account_history plugin has no virtual ops at all; a steemd built
    with CLEAR_VOTES (its default) has no votes of paid posts: the daemon stops and says so,
    before writing a block it cannot read fully."""
    paid = min(history["payouts"])
    with make_node(history, "steem", head=paid + 40) as node:
        node.serve_as("steemd", posts=history["posts"], clear_votes=case == "clear_votes",
                      account_history=case != "no_account_history")
        settings = Settings.model_validate({"node": {"retries": 2, "backoff_seconds": 0.01}})
        daemon = Daemon(settings, [node.url], create_engine(f"sqlite:///{tmp_path}/d.db"),
                        until=paid + 10)
        assert daemon.run() == 1
    assert isinstance(daemon.error, ChainError)
    if case == "no_account_history":
        assert "account_history" in str(daemon.error) and "Could not find API" in str(
            daemon.error)
        assert daemon.ingester.checkpoint == 0
    else:
        assert "CLEAR_VOTES" in str(daemon.error)
        assert daemon.ingester.checkpoint < paid  # the payout block was never written


def test_post_votes_in_a_block_are_read_or_refused_with_a_reason() -> None:
    from curation.records import BadOp, PostVotes
    from indexer.ops import Adapter

    base = {"block_num": 5, "timestamp": "2017-11-07T01:25:09", "transactions": [],
            "virtual_ops": []}
    good = Adapter().block({**base, "post_votes": [{"author": "a", "permlink": "p", "votes": [
        {"voter": "v", "rshares": "-12", "time": "2017-11-07T01:00:00"},
        {"voter": "w", "rshares": 7, "time": 1510016400}]}]})
    assert good.records == [PostVotes((5, 2**31 - 1, 0), "a", "p",
                                      ((1510016400, "v", -12), (1510016400, "w", 7)))]
    for bad in ("x", [{"author": "a", "permlink": "p", "votes": [{"voter": "v"}]}],
                [{"author": "a", "permlink": "p", "votes": [
                    {"voter": "v", "rshares": 1.5, "time": "2017-11-07T01:00:00"}]}]):
        [rec] = Adapter().block({**base, "post_votes": bad}).records
        assert isinstance(rec, BadOp) and rec.reason == "malformed_post_votes"


def test_command_line_node_answers_as_steemd_behind_jussi_with_a_lagging_history(
        history: dict, tmp_path: Path) -> None:
    import subprocess
    import sys

    posts = tmp_path / "posts.jsonl"
    write_blocks(history["posts"], posts)
    head = max(history["payouts"]) + 30
    proc = subprocess.Popen(
        [sys.executable, "-m", "curation_market.devnode", "--blocks", str(history["path"]),
         "--posts", str(posts), "--chain", "steem", "--server", "steemd", "--batch-limit", "50",
         "--history-lag", "7", "--port", "0", "--interval", "0", "--start", str(head)],
        cwd=Path(__file__).parent.parent, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True)
    try:
        url = proc.stdout.readline().strip() if proc.stdout else ""

        def rpc(method: str, params: object, i: int = 1) -> dict:
            return {"jsonrpc": "2.0", "id": i, "method": method, "params": params}

        big = requests.post(url, json=[rpc("database_api.get_config", {}, i)
                                       for i in range(51)], timeout=10).json()
        lib = head - 20
        ops = requests.post(url, json=[
            rpc("account_history_api.get_ops_in_block", {"block_num": n, "only_virtual": True},
                n) for n in (lib - 7, lib - 6)], timeout=10).json()
        post = history["posts"][0]
        votes = requests.post(url, json=rpc("condenser_api.get_active_votes",
                                            [post["author"], post["permlink"]]), timeout=10)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert big["error"]["code"] == 1600
    assert [len(r["result"]["ops"]) > 0 for r in ops] == [True, False]  # history at lib - 7
    assert len(votes.json()["result"]) == len(post["active_votes"])


def test_history_answers_have_the_recorded_shapes() -> None:
    """The test node's account-history records have the keys and types of the recorded
    answers of each program (tests/data/node_patterns.json names their sources)."""
    import json

    from curation_market.devnode.node import steemd_records

    patterns = json.loads((Path(__file__).parent / "data" / "node_patterns.json").read_text())
    data = Path(__file__).parent / "data"
    with TestNode.from_files([data / "hive5m_raw_blocks.jsonl.gz"],
                             ops=[data / "hive5m_ops.jsonl.gz"], head=1_000_100) as node:
        hived = node.state.ops_in_block(1_000_000, True)
        answer = requests.post(node.url, json={
            "jsonrpc": "2.0", "id": 1, "method": "account_history_api.get_ops_in_block",
            "params": {"block_num": 1_000_099, "only_virtual": True}}, timeout=10).json()
    [recorded_steemd] = patterns["steemd_block_1000000"]["ops"]
    for rec, want in ((hived[-1], patterns["hived_only_virtual"]["ops"][-1]),
                      (steemd_records(hived)[-1], recorded_steemd)):
        assert set(rec) == set(want)
        assert {k: type(v) for k, v in rec.items() if k != "op"} == \
            {k: type(v) for k, v in want.items() if k != "op"}
    # the block's producer, as steemd recorded it (the amount is the test node's stand-in)
    assert hived[-1]["op"]["value"]["producer"] == recorded_steemd["op"][1]["producer"] == "abit"
    assert answer["result"] == patterns["hived_unknown_block"]  # above the LIB: no ops
