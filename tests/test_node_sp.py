"""Steem Power from the node without double counting: snapshots rewound along the account's
history (indexer.history), the test node's get_account_history, and the daemon end to end.

Real data: ``data/steem17m_jenkinrocket_ops.jsonl.gz`` is the 222-op account history of
@jenkinrocket that steemd returned in its recorded API test (../shared/data/steem-17m/
account_ops.jsonl, ``_source`` steemit/steem@d34a530c python_scripts/tests/api_tests/
condenser_api/51.json.pat: blocks 16,663,768..16,998,872), with its 1,027,564.112127 VESTS
delegation to @utopian-io in block 16,933,142; its account object at block 17,000,000 and the
globals of that block are the bundled service/data files. The chain served here is those
blocks (the ops in their recorded blocks, the rest empty), plus one post and one commit.
"""

from __future__ import annotations

import gzip
import threading
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine, select, text

from curation.chaintime import chain_time, format_time
from curation.market import MarketConfig
from curation.state import Account
from curation_market.config import load_settings
from curation_market.daemon.run import Daemon
from curation_market.devnode.node import TestNode, load_accounts
from indexer import schema as t
from indexer.accounts import account_from, read_globals
from indexer.amounts import VESTS, amount_of
from indexer.blockfile import write_blocks
from indexer.chain import ChainError, NodeClient
from indexer.history import HistoryOp, Rewind, op_filter, read_back
from indexer.ingest import Ingester
from indexer.store import Store
from tests.helpers import commit_op, post_op

DATA = Path(__file__).parent / "data"
SERVICE_DATA = Path(__file__).parent.parent / "curation_market" / "data"
OPS = DATA / "steem17m_jenkinrocket_ops.jsonl.gz"
GLOBALS = SERVICE_DATA / "steem17m_globals.json"
HEAD, HEAD_TIME = 17_000_000, chain_time("2017-11-07T01:25:09")
WHO = "jenkinrocket"
DELEGATION_BLOCK, DELEGATION = 16_933_142, 1_027_564_112_127
POST_BLOCK, COMMIT_BLOCK = 16_932_000, 16_932_100
VIRTUAL = {"author_reward", "curation_reward", "comment_reward", "producer_reward",
           "fill_vesting_withdraw", "return_vesting_delegation", "interest"}

CONFIG = """
[ingest]
batch_blocks = 100
[node]
batch_size = 50
poll_seconds = 0.05
retries = 3
backoff_seconds = 0.05
health_seconds = 0.5
sweep_seconds = 0.5
"""


def history() -> list[dict]:
    with gzip.open(OPS, "rb") as fh:
        return [orjson.loads(line) for line in fh]


def snapshot_object() -> dict:
    return load_accounts(SERVICE_DATA / "steem17m_accounts.jsonl.gz")[WHO]


def claims_after(block: int) -> int:
    """The VESTS @jenkinrocket claimed into its vesting after ``block`` (all its vesting ops
    in this history but the one delegation; rewards after HF17 wait for a claim)."""
    return sum(amount_of(r["op"][1]["reward_vests"], VESTS) for r in history()
               if r["op"][0] == "claim_reward_balance" and r["block"] > block)


def chain_file(tmp_path: Path) -> Path:
    """The recorded ops in their blocks (vops as virtual ops), one post and one commit."""
    txs: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    vops: dict[int, list] = defaultdict(list)
    times: dict[int, str] = {}
    for r in history():
        times[r["block"]] = r["timestamp"]
        if r["op"][0] in VIRTUAL:
            vops[r["block"]].append(r["op"])
        else:
            txs[r["block"]][r["trx_in_block"]].append(r["op"])
    txs[POST_BLOCK][0].append(post_op("someauthor", "a-post"))
    txs[COMMIT_BLOCK][0].append(commit_op(WHO, "someauthor", "a-post", 12_345))
    blocks = []
    for num in sorted(set(txs) | set(vops)):
        when = times.get(num) or format_time(HEAD_TIME - 3 * (HEAD - num))
        blocks.append({"block_num": num, "timestamp": when,
                       "transactions": [{"operations": ops} for _, ops in
                                        sorted(txs[num].items())],
                       "virtual_ops": vops[num]})
    path = tmp_path / "jenkinrocket.jsonl"
    write_blocks(blocks, path)
    return path


def node_for(tmp_path: Path, chain: str = "steem") -> TestNode:
    return TestNode.from_files([chain_file(tmp_path)], head=HEAD, lag=20, globals_path=GLOBALS,
                               accounts={WHO: snapshot_object()}, chain=chain)


def rewind_to(client: NodeClient, target: int) -> tuple:
    snap = client.account_snapshot([WHO])
    assert snap.head == HEAD
    rewind = Rewind(account_from(snap.accounts[0], snap.head), snap.head, target, "steem")
    read = read_back(client.history_page, rewind)
    return rewind.result(read.complete), read


# --- the rewind ------------------------------------------------------------------------------
@pytest.mark.parametrize("chain", ["steem", "hive"])
def test_rewound_snapshot_is_the_vesting_at_the_block(tmp_path: Path, chain: str) -> None:
    """steemd ignores the filter (all 223 entries read: 222 recorded and the commit); hived
    filters (171 vesting ops)."""
    snap = account_from(snapshot_object())
    assert (snap.vesting_shares, snap.delegated) == (3_915_757_447_554, DELEGATION)
    with node_for(tmp_path, chain) as node:
        client = NodeClient([node.url], retries=2, backoff=0.01)
        for target in (DELEGATION_BLOCK - 1, DELEGATION_BLOCK, 16_700_000, 16_663_767,
                       HEAD - 1):
            rec, read = rewind_to(client, target)
            acct = rec.account
            assert rec.exact and rec.notes == [] and rec.approx_vests == 0, rec.notes
            assert acct.as_of_block == target
            assert acct.vesting_shares == snap.vesting_shares - claims_after(target)
            assert acct.delegated == (DELEGATION if target >= DELEGATION_BLOCK else 0)
            assert acct.received == 0 and acct.to_withdraw == acct.vesting_withdraw_rate == 0
            assert read.filtered == (chain == "hive")
            if target < DELEGATION_BLOCK:
                assert rec.pairs == {(WHO, "utopian-io"): 0}
        rec, read = rewind_to(client, 16_663_767)  # before the whole history: read to its end
        assert read.complete and read.entries == (223 if chain == "steem" else 171)  # + the commit
        assert rec.account.vesting_shares == 3_915_757_447_554 - 40_317_340_219


def test_rewind_then_engine_forward_gives_the_snapshot_back(tmp_path: Path,
                                                            sqlite_engine) -> None:
    """Rewound to a block, then every later op through the engine once: the 17M object."""
    target = 16_800_000
    with node_for(tmp_path) as node:
        rec, _ = rewind_to(NodeClient([node.url], retries=2, backoff=0.01), target)
    store = Store(sqlite_engine)
    store.add_account_snapshot([rec.account])
    with sqlite_engine.begin() as conn:
        for (a, b), v in rec.pairs.items():
            conn.execute(t.delegations.insert().values(delegator=a, delegatee=b, vests=v))
    blocks = [orjson.loads(line) for line in chain_file(tmp_path).read_bytes().splitlines()]
    Ingester(store, MarketConfig(chain="steem")).run(blocks)
    with sqlite_engine.connect() as conn:
        row = conn.execute(select(t.accounts).where(t.accounts.c.name == WHO)).mappings().one()
    snap = account_from(snapshot_object())
    assert (row["vesting_shares"], row["delegated"], row["received"]) == (
        snap.vesting_shares, snap.delegated, snap.received)


def test_setting_ops_read_further_back_for_the_value_they_replaced() -> None:
    """A lowered delegation and a power-down: the rewind needs what was there before them."""
    snap = Account("a", vesting_shares=10_000, delegated=700, received=0, to_withdraw=1_300,
                   withdrawn=200, vesting_withdraw_rate=100)
    rw = Rewind(snap, head=500, target=300, chain="steem")

    def entry(seq: int, block: int, op: list) -> tuple[int, dict]:
        return seq, {"block": block, "trx_in_block": 0, "op_in_trx": 0, "virtual_op": False,
                     "timestamp": format_time(1_500_000_000 + 3 * block), "op": op}

    ops = [  # oldest first, as a node lists them
        entry(0, 100, ["delegate_vesting_shares", {"delegator": "a", "delegatee": "b",
                                                    "vesting_shares": "0.000700 VESTS"}]),
        entry(1, 150, ["withdraw_vesting", {"account": "a", "vesting_shares": "0.002600 VESTS"}]),
        entry(2, 250, ["fill_vesting_withdraw", {"from_account": "a", "to_account": "a",
                                                 "withdrawn": "0.000200 VESTS",
                                                 "deposited": "0.100 STEEM"}]),
        entry(3, 400, ["delegate_vesting_shares", {"delegator": "a", "delegatee": "b",
                                                    "vesting_shares": "0.000300 VESTS"}]),
        entry(4, 420, ["withdraw_vesting", {"account": "a", "vesting_shares": "0.001300 VESTS"}]),
        entry(5, 450, ["fill_vesting_withdraw", {"from_account": "a", "to_account": "a",
                                                 "withdrawn": "0.000200 VESTS",
                                                 "deposited": "0.100 STEEM"}]),
    ]
    calls = []

    def page(name: str, start: int, limit: int, low: int, high: int) -> tuple:
        calls.append(start)
        top = len(ops) - 1 if start < 0 else start
        return [e for e in ops if top - 1 <= e[0] <= top], None  # two entries per page

    read = read_back(page, rw)
    rec = rw.result(read.complete)
    a = rec.account
    assert not read.complete and rec.exact
    assert calls == [-1, 3, 1]  # one page further back than block 300, for the two setters
    # the lowering 700 → 300 left `delegated` at 700 until its return: nothing to undo
    assert (a.delegated, rec.pairs) == (700, {("a", "b"): 700})
    # the power-down in force at 300: 2600 VESTS from block 150 (13 weeks since HF16: rate
    # 2600 // 13), 200 paid at 250
    assert (a.to_withdraw, a.withdrawn, a.vesting_withdraw_rate) == (2_600, 200, 200)
    assert a.vesting_shares == 10_200


def test_what_cannot_be_undone_exactly_is_marked() -> None:
    """Steem's transfer_to_vesting names STEEM: converted at the nearest price, marked, with
    the VESTS it moved; a history that ends too early leaves the pair's old amount unknown."""
    fund, shares = read_globals(GLOBALS)
    snap = Account("a", vesting_shares=5_000_000_000_000, delegated=2_000, received=0)

    def entry(block: int, op: list) -> dict:
        return {"block": block, "trx_in_block": 0, "op_in_trx": 0, "virtual_op": False,
                "timestamp": format_time(HEAD_TIME - 3 * (HEAD - block)), "op": op}

    ops = [(7, entry(HEAD - 50, ["transfer_to_vesting", {"from": "a", "to": "",
                                                         "amount": "1000.000 STEEM"}])),
           (8, entry(HEAD - 10, ["delegate_vesting_shares", {
               "delegator": "a", "delegatee": "b", "vesting_shares": "0.002000 VESTS"}]))]
    rw = Rewind(snap, HEAD, HEAD - 100, "steem")
    read = read_back(lambda *a: (ops, None) if a[1] < 0 else ([], -1), rw)
    rec = rw.result(read.complete, [(HEAD, fund, shares)])
    converted = 1_000_000 * shares // fund  # 1000 STEEM at the 17M price
    assert converted == 2_054_882_348_887  # 2,054,882.348887 VESTS
    assert rec.account.vesting_shares == 5_000_000_000_000 - converted
    assert not rec.exact and rec.approx_vests == converted
    assert rec.account.delegated == 0  # the history was read to its start: no pair before
    assert any("transfer_to_vesting" in n and f"block {HEAD}" in n for n in rec.notes)
    rw = Rewind(snap, HEAD, HEAD - 100, "steem")
    for seq, e in reversed(ops[1:]):
        rw.add(HistoryOp.of(seq, e))
    assert rw.missing() == [f"ops at or before block {HEAD - 100}"]
    rec = rw.result(complete=False)
    assert not rec.exact and "history ends before" in rec.notes[0]


def test_test_node_history_filter_and_its_2000_entry_scan() -> None:
    """hived's filter: bit i is op i of hive::protocol::operation; a filtered call scans at
    most 2000 entries and says where to continue. @blocktrades in the bundled hive-5m data:
    2,259 entries, its account_created first (sequence 0), under 2,000 newer ones."""
    with TestNode.from_files([DATA / "hive5m_raw_blocks.jsonl.gz"],
                             ops=[DATA / "hive5m_ops.jsonl.gz"], lag=20) as node:
        assert op_filter(["transfer_to_vesting"]) == (1 << 3, 0)
        low, high = op_filter(["account_created"])
        assert (low, high) == (0, 1 << 16)
        client = NodeClient([node.url], retries=1)
        got, cont = client.history_page("blocktrades", -1, 1000, *op_filter(
            ["transfer_to_vesting"]))
        assert cont is None and len(got) == 10 and got[0][0] == 2098
        assert {e["op"]["type"] for _, e in got} == {"transfer_to_vesting_operation"}
        got, cont = client.history_page("blocktrades", -1, 1000, low, high)
        assert got == [] and cont == 2258 - 2000  # scanned 2000, nothing matched
        got, again = client.history_page("blocktrades", cont, cont + 1, low, high)
        assert again is None and [(s, e["op"]["type"]) for s, e in got] == [
            (0, "account_created_operation")]
        # the same through condenser_api (legacy encoding), as hived's own pattern tests call it
        rows = node.account_history("blocktrades", 100, 101, False)
        legacy = node._c_get_account_history(["blocktrades", 100, 101])  # noqa: SLF001
        assert [s for s, _ in legacy] == [s for s, _ in rows] == list(range(0, 101))
        assert all(isinstance(e["op"], list) for _, e in legacy)
        with pytest.raises(Exception, match="start must be greater"):
            node.account_history("blocktrades", 5, 10, False)


# --- the daemon --------------------------------------------------------------------------------
def run_daemon(tmp_path: Path, node: TestNode, db: str, until: int,
               no_history: bool = False) -> Daemon:
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG)
    daemon = Daemon(load_settings(cfg), [node.url], create_engine(db), until=until,
                    from_block=POST_BLOCK - 100)
    if no_history:  # as a node without the account_history_api plugin answers
        def refuse(*_: object) -> None:
            raise ChainError("Could not find API account_history_api")
        daemon.client.history_page = refuse  # type: ignore[method-assign]
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run()), daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive() and codes == [0], daemon.error
    return daemon


def rows(db: str) -> dict:
    engine = create_engine(db)
    with engine.connect() as conn:
        out = {
            "account": dict(conn.execute(select(t.accounts).where(t.accounts.c.name == WHO))
                            .mappings().one()),
            "commit": conn.execute(select(t.commits.c.block, t.commits.c.sp,
                                          t.commits.c.sp_known)).one(),
            "snapshot": dict(conn.execute(select(t.account_snapshots)).mappings().one()),
            "delegations": conn.execute(select(t.delegations)).all(),
        }
    engine.dispose()
    return out


def test_catch_up_gives_the_sp_of_the_commit_block_and_no_double_delegation(
        tmp_path: Path) -> None:
    fund, shares = read_globals(GLOBALS)
    target = COMMIT_BLOCK - 1  # the batch holding the commit starts at the commit's block
    db = f"sqlite:///{tmp_path / 'daemon.db'}"
    with node_for(tmp_path) as node:
        run_daemon(tmp_path, node, db, until=16_934_000)
        got = rows(db)
        # a restart between batches: stopped at 16,933,000, resumed to 16,934,000
        db2 = f"sqlite:///{tmp_path / 'restarted.db'}"
        run_daemon(tmp_path, node, db2, until=16_933_000)
        assert rows(db2)["account"]["delegated"] == 0
        run_daemon(tmp_path, node, db2, until=16_934_000)
        again = rows(db2)
    vests_at_commit = 3_915_757_447_554 - claims_after(COMMIT_BLOCK)
    assert got["commit"] == (COMMIT_BLOCK, vests_at_commit * fund // shares, True)
    snap = got["snapshot"]
    assert (snap["as_of_block"], snap["head_block"], snap["exact"]) == (target, HEAD, True)
    acct = got["account"]
    assert acct["delegated"] == DELEGATION  # once: the node's head already held it, 2x before
    assert acct["vesting_shares"] == 3_915_757_447_554 - claims_after(16_934_000)
    assert got["delegations"] == [(WHO, "utopian-io", DELEGATION)]
    assert again == got


def test_rows_read_before_tagging_are_read_again(tmp_path: Path) -> None:
    """A database of the old daemon: node_accounts, and the row that counted the delegation
    twice. The next start reads the account again, as of its checkpoint."""
    db = f"sqlite:///{tmp_path / 'daemon.db'}"
    with node_for(tmp_path) as node:
        run_daemon(tmp_path, node, db, until=16_934_000)
        engine = create_engine(db)
        with engine.begin() as conn:
            conn.execute(t.accounts.update().values(delegated=2 * DELEGATION))
            conn.execute(t.account_snapshots.delete())
            conn.execute(text("CREATE TABLE node_accounts (name TEXT PRIMARY KEY, "
                              "block BIGINT NOT NULL)"))
            conn.execute(text(f"INSERT INTO node_accounts VALUES ('{WHO}', {COMMIT_BLOCK})"))
        engine.dispose()
        run_daemon(tmp_path, node, db, until=16_934_100)
    got = rows(db)
    assert got["account"]["delegated"] == DELEGATION
    assert got["account"]["as_of_block"] == 16_934_000
    snap = got["snapshot"]
    assert (snap["read_block"], snap["as_of_block"], snap["exact"]) == (COMMIT_BLOCK,
                                                                       16_934_000, True)
    assert "re-read at block 16934000" in snap["note"]
    with create_engine(db).connect() as conn:
        assert "node_accounts" not in conn.dialect.get_table_names(conn)


def test_migration_0004_moves_node_accounts_rows_to_be_read_again(tmp_path: Path) -> None:
    from indexer.migrations import upgrade

    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, "0003")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO node_accounts VALUES ('alice', 123)"))
    upgrade(url)
    with engine.connect() as conn:
        row = conn.execute(select(t.account_snapshots)).mappings().one()
        assert "node_accounts" not in conn.dialect.get_table_names(conn)
    assert (row["name"], row["read_block"], row["as_of_block"]) == ("alice", 123, None)


def test_without_account_history_the_head_state_stands_marked(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'daemon.db'}"
    with node_for(tmp_path) as node:
        run_daemon(tmp_path, node, db, until=16_934_000, no_history=True)
    got = rows(db)
    snap = got["snapshot"]
    assert (snap["as_of_block"], snap["exact"]) == (HEAD, False)
    assert "no account history" in snap["note"]
    assert got["account"]["delegated"] == DELEGATION  # from the head state, not added again
