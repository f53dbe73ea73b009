"""Steem Power as hived/steemd compute it (spec §3): the account formula, power-downs,
delegations with their return delay, vesting ops per chain, the price in force, snapshots.

Real data only (copied into tests/data, see each file's ``_source``):
- ``steem17m_vesting_accounts.jsonl.gz``: the vesting fields of the 165 steemd account
  objects at block 17,000,000 (shared/data/steem-17m/accounts.jsonl, recorded by steemit/steem
  @d34a530c python_scripts/tests/api_tests), with next_vesting_withdrawal;
- ``steem17m_vesting_ops.jsonl``: every delegate_vesting_shares and return_vesting_delegation
  of steem-17m/account_ops.jsonl (ned's six removals of 2017-10-24 and their returns);
- ``hived_unit_vesting_ops.jsonl``: the vesting ops hived's own unit test records
  (condenser_api_ops_in_block_tests.cpp): transfer_to_vesting(+_completed), a delegation
  raised, lowered and returned, a power-down with a routed fill, account_create_with_delegation
  with its account_created virtual op;
- curation_market/data/steem17m_globals.json and hive5m_globals.json: the VESTS price at
  17M (Steem) and 5M (Hive).
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from curation.chaintime import HF16_TIME, HF21_TIME, STEEM_HF23_TIME, chain_time
from curation.commitment import commitment
from curation.market import MarketConfig, apply_block
from curation.records import VOP_TRX, Block, Comment, CommitMsg, MarketOp, VestingDelta
from curation.state import Account, Globals, State
from curation.vesting import price_at, withdraw_rate
from curation_market.curator.ops import commit_payload, custom_json_op
from indexer import schema as t
from indexer.accounts import read_accounts, read_globals_at
from indexer.ops import Adapter
from indexer.store import Store
from tests.helpers import CHAIN_ID

DATA = Path(__file__).parent / "data"
SERVICE_DATA = Path(__file__).parent.parent / "curation_market" / "data"
T0 = 1_500_000_000
MAX_TIME = "1969-12-31T23:59:59"  # fc::time_point_sec::maximum() as the node prints it


def _units(text: Any, places: int) -> int:
    """"1.500000 VESTS" / "2.000 STEEM" / a plain integer → integer units, independently of
    the project's amount parser."""
    if isinstance(text, int):
        return text
    number = text.split()[0] if isinstance(text, str) and " " in text else text
    return int(Decimal(number) * 10**places)


def _globals(path: Path) -> tuple[int, int, int]:
    doc = json.loads(path.read_text())
    dgp = doc.get("dynamic_global_properties", doc)
    fund = dgp.get("total_vesting_fund_steem", dgp.get("total_vesting_fund_hive"))
    return dgp["head_block_number"], _units(fund, 3), _units(dgp["total_vesting_shares"], 6)


STEEM_17M = _globals(SERVICE_DATA / "steem17m_globals.json")
HIVE_5M = _globals(SERVICE_DATA / "hive5m_globals.json")


def _raw_accounts() -> list[dict]:
    with gzip.open(DATA / "steem17m_vesting_accounts.jsonl.gz", "rt") as fh:
        return [json.loads(line) for line in fh]


def _chain_sp(raw: dict, fund: int, shares: int) -> int:
    """steemd util::get_effective_vesting_shares (manabar.hpp), written out from the raw
    object: the power-down term only while next_vesting_withdrawal is not the max time."""
    vests = (_units(raw["vesting_shares"], 6) - _units(raw["delegated_vesting_shares"], 6)
             + _units(raw["received_vesting_shares"], 6))
    if raw["next_vesting_withdrawal"] != MAX_TIME:
        vests -= min(_units(raw["vesting_withdraw_rate"], 6),
                     int(raw["to_withdraw"]) - int(raw["withdrawn"]))
    return vests * fund // shares


def _commit_block(num: int, time: int, names: list[str]) -> Block:
    """A block of one commit per name on @bob/p (posted by :func:`_post_block`)."""
    block = Block(num, time)
    for i, name in enumerate(names):
        c = commitment("0" * 64, "bob", "p", name, 1000, bytes(32))
        block.records.append(MarketOp((num, i, 0), name, (CommitMsg("bob", "p", c),)))
    return block


def _post_block(num: int, time: int) -> Block:
    return Block(num, time, records=[Comment((num, 0, 0), "bob", "p", "", "tag")])


def _sp(state: State, name: str) -> tuple[int, bool]:
    c = next(c for (_, who), c in state.commits.items() if who == name and c is not None)
    return c.sp, c.sp_known


# --- (a) the formula on the 165 real accounts ----------------------------------------------
def test_sp_of_every_real_account_at_17m_is_the_chain_formula() -> None:
    _, fund, shares = STEEM_17M
    raw = _raw_accounts()
    problems: list[str] = []
    accounts = list(read_accounts([DATA / "steem17m_vesting_accounts.jsonl.gz"], problems))
    # one recorded object is steemd's all-zero answer for an unknown name (""): not an account
    assert len(raw) == 165 and len(accounts) == 164 and len(problems) == 1
    raw = [r for r in raw if r["name"]]
    state = State(vesting_prices=[STEEM_17M])
    state.accounts = {a.name: a for a in accounts}
    t17 = chain_time("2017-11-07T01:25:09")
    apply_block(state, _post_block(16_999_990, t17 - 30), MarketConfig())
    apply_block(state, _commit_block(17_000_000, t17, [a.name for a in accounts]),
                MarketConfig(max_open_commits=1000))
    assert state.rejections == []
    got = {name: _sp(state, name) for name in state.accounts}
    want = {r["name"]: (_chain_sp(r, fund, shares), True) for r in raw}
    assert got == want
    # the old formula subtracted the whole remaining power-down: 26 of the 27 accounts
    # powering down came out lower (the 27th is in its last week)
    powering = [r for r in raw if r["next_vesting_withdrawal"] != MAX_TIME]
    old = {a.name: max(0, a.vesting_shares + a.received - a.delegated
                       - max(0, a.to_withdraw - a.withdrawn)) for a in accounts}
    lower = [a.name for a in accounts if old[a.name] < a.effective_vests]
    assert len(powering) == 27 and len(lower) == 26
    assert set(lower) <= {r["name"] for r in powering}
    # every real rate is the HF16–HF21 formula of its to_withdraw (13 weekly payments)
    for r in powering:
        to_withdraw = int(r["to_withdraw"])
        assert _units(r["vesting_withdraw_rate"], 6) == to_withdraw // 13
        assert withdraw_rate("steem", t17, to_withdraw) == to_withdraw // 13


def test_the_bundled_accounts_file_reads_whole(tmp_path: Path) -> None:
    """service/data's gzipped snapshot once gave "0 read, 34 unreadable" (read as text)."""
    problems: list[str] = []
    accounts = list(read_accounts([SERVICE_DATA / "steem17m_accounts.jsonl.gz"], problems))
    assert len(accounts) == 164 and len(problems) == 1 and "''" in problems[0]  # the "" object
    assert sum(a.vesting_withdraw_rate > 0 for a in accounts) == 27
    # a lone surrogate in free text (json_metadata) loses nothing; a bad name is refused
    lines = [b'{"name": "alice", "json_metadata": "\\ud83d", "vesting_shares": "1.000000 VESTS"}',
             b'{"name": "bad\\ud83d", "vesting_shares": "1.000000 VESTS"}']
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    problems = []
    assert [a.name for a in read_accounts([path], problems)] == ["alice"]
    assert len(problems) == 1 and ":2:" in problems[0]


def test_globals_files_give_the_price_and_its_block() -> None:
    assert read_globals_at(SERVICE_DATA / "steem17m_globals.json") == STEEM_17M
    assert read_globals_at(SERVICE_DATA / "hive5m_globals.json") == HIVE_5M


# --- (b) delegation, lowering, return -----------------------------------------------------
def _rows(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _raw_block(num: int, timestamp: str, ops: list = (), vops: list = ()) -> dict:
    return {"block_num": num, "timestamp": timestamp,
            "transactions": [{"operations": [op]} for op in ops], "virtual_ops": list(vops)}


class Replay:
    """Adapter + engine over one in-memory state, with one commit per block of interest to
    read Steem Power the way the market does."""

    def __init__(self, chain: str, prices: list[tuple[int, int, int]]) -> None:
        self.cfg = MarketConfig(chain=chain, window=10**9, max_open_commits=10**6)
        self.adapter = Adapter(chain=chain)
        self.state = State(vesting_prices=prices)
        self.posted = False

    def block(self, raw: dict) -> None:
        apply_block(self.state, self.adapter.block(raw), self.cfg)

    def sp(self, names: list[str], num: int, time: int) -> dict[str, int]:
        if not self.posted:
            apply_block(self.state, _post_block(1, time), self.cfg)
            self.posted = True
        for k in [k for k in self.state.commits if k[1] in names]:
            del self.state.commits[k]
        apply_block(self.state, _commit_block(num, time, names), self.cfg)
        return {n: _sp(self.state, n)[0] for n in names}


def test_steem_delegation_removed_reaches_the_delegator_only_at_its_return() -> None:
    """ned's real removals (2017-10-24) and returns (2017-10-31, 7 days + 1 block later)."""
    rows = _rows(DATA / "steem17m_vesting_ops.jsonl")
    removals = [r for r in rows if r["op"][0] == "delegate_vesting_shares"
                and r["op"][1]["delegator"] == "ned"]
    returns = [r for r in rows if r["op"][0] == "return_vesting_delegation"]
    assert len(removals) == len(returns) == 6
    d = _units(returns[0]["op"][1]["vesting_shares"], 6)  # each delegation ned removed
    assert d % 10**6 == 0  # (a whole number of VESTS: the f-string below is exact)
    _, fund, shares = STEEM_17M
    ned_vests = _units("7344140982.676874 VESTS", 6)  # ned's vesting_shares at 17M
    r = Replay("steem", [STEEM_17M])
    r.state.accounts["ned"] = Account("ned", ned_vests)
    delegatees = [x["op"][1]["delegatee"] for x in removals]
    for i, name in enumerate(delegatees):  # the delegations before they were removed
        r.block(_raw_block(16_000_000 + i, "2017-10-01T00:00:00", [
            ["delegate_vesting_shares", {"delegator": "ned", "delegatee": name,
                                         "vesting_shares": f"{d / 10**6:.6f} VESTS"}]]))
    sp = lambda v: v * fund // shares  # noqa: E731
    assert r.sp(["ned", delegatees[0]], 16_500_000, T0) == {"ned": sp(ned_vests - 6 * d),
                                                            delegatees[0]: sp(d)}
    for x in removals:
        r.block(_raw_block(x["block"], x["timestamp"], [x["op"]]))
    # the delegatees lost it at once; ned's delegated_vesting_shares has not moved
    got = r.sp(["ned", *delegatees], 16_700_000, T0)
    assert got == {"ned": sp(ned_vests - 6 * d), **{n: 0 for n in delegatees}}
    assert r.state.accounts["ned"].delegated == 6 * d
    pending = r.state.returns["ned"]
    assert [p.expires - chain_time(x["timestamp"]) for p, x in zip(pending, removals,
                                                                    strict=True)] == [7 * 86400] * 6
    # the chain returns each one in the first block after its expiration
    assert all(chain_time(y["timestamp"]) - p.expires == 3 for p, y in zip(pending, returns,
                                                                          strict=True))
    for i, y in enumerate(returns):
        r.block(_raw_block(y["block"], y["timestamp"], vops=[y["op"]]))
        assert r.state.accounts["ned"].delegated == (5 - i) * d
    assert r.sp(["ned"], 16_900_000, T0) == {"ned": sp(ned_vests)}
    assert r.state.returns["ned"] == []


def _hived_rows() -> list[dict]:
    return _rows(DATA / "hived_unit_vesting_ops.jsonl")


def _hived_block(rows: list[dict], num: int, timestamp: str) -> dict:
    """hived's recorded ops of block ``num`` (its unit-test chain), placed at ``timestamp``
    on the main chain so its hardfork rules apply."""
    mine = [r for r in rows if r["block"] == num]
    txs: dict[int, list] = {}
    for r in mine:
        if r["trx_in_block"] != VOP_TRX and not r["virtual_op"]:
            txs.setdefault(r["trx_in_block"], []).append(r["op"])
    vops = [r["op"] for r in mine if r["virtual_op"]]
    return {"block_num": num, "timestamp": timestamp,
            "transactions": [{"operations": txs.get(i, [])} for i in range(max(txs, default=-1)
                                                                           + 1)],
            "virtual_ops": vops}


def test_hive_vesting_sequence_of_hived_unit_test_gives_the_chain_sp_at_each_step() -> None:
    """alice4ah: vests 2 TESTS, delegates 3 to carol4ah, powers down 123, lowers the delegation
    to 2, gets a weekly fill (4 routed to ben4ah as VESTS, 5 to herself), then the return of
    1. Placed at 17M's time (HF19: 13 intervals, no HF21 rounding) the rate is 123 // 13 = 9,
    which is exactly the fill hived recorded (4 + 5)."""
    rows = [r for r in _hived_rows() if r["block"] in (5, 8, 9) and "4ah" in json.dumps(r["op"])]
    day = "2017-11-07T01:25:09"
    r = Replay("hive", [HIVE_5M])
    _, fund, shares = HIVE_5M
    sp = lambda v: v * fund // shares  # noqa: E731
    vested = _units("1936378.093693 VESTS", 6)
    names = ["alice4ah", "carol4ah", "ben4ah"]
    # block 5 in hived: transfer_to_vesting (its vop carries the VESTS), delegate 3,
    # withdraw_vesting 123, delegate lowered to 2 — one block, so SP is read after it
    r.block(_hived_block(rows, 5, day))
    alice = r.state.accounts["alice4ah"]
    assert (alice.vesting_shares, alice.delegated, alice.to_withdraw, alice.withdrawn,
            alice.vesting_withdraw_rate) == (vested, 3, 123, 0, 9)
    assert r.sp(names, 10, chain_time(day)) == {
        "alice4ah": sp(vested - 3 - 9), "carol4ah": sp(2), "ben4ah": 0}
    assert [(p.vests, p.expires - chain_time(day)) for p in r.state.returns["alice4ah"]] \
        == [(1, 7 * 86400)]
    r.block(_hived_block(rows, 8, "2017-11-14T01:25:09"))  # the weekly fill
    assert (alice.vesting_shares, alice.withdrawn, alice.vesting_withdraw_rate) == \
        (vested - 9, 9, 9)
    assert r.sp(names, 11, chain_time(day)) == {
        "alice4ah": sp(vested - 9 - 3 - 9), "carol4ah": sp(2), "ben4ah": sp(4)}
    r.block(_hived_block(rows, 9, "2017-11-14T01:25:12"))  # return_vesting_delegation of 1
    assert alice.delegated == 2 and r.state.returns["alice4ah"] == []
    assert r.sp(["alice4ah"], 12, chain_time(day)) == {"alice4ah": sp(vested - 9 - 2 - 9)}


# --- (c) withdraw_vesting: the rate per chain and hardfork; fills move it --------------------
@pytest.mark.parametrize(("chain", "time", "vests", "rate"), [
    ("steem", HF16_TIME - 1, 1040, 10),  # 104 weekly payments before HF16
    ("steem", HF16_TIME - 1, 50, 1),  # at least 1
    ("steem", HF16_TIME, 1040, 80),  # 13 from HF16
    ("steem", HF21_TIME - 1, 123, 9),  # rounded down before HF21 ...
    ("steem", HF21_TIME, 123, 10),  # ... up from HF21 when 13 does not divide it
    ("steem", HF21_TIME, 130, 10),
    ("steem", STEEM_HF23_TIME, 123, 31),  # Steem's HF23: 4 payments
    ("hive", STEEM_HF23_TIME, 123, 10),  # Hive kept 13
    ("hive", HF21_TIME, 0, 0),  # 0 cancels the power-down
])
def test_withdraw_rate_follows_the_evaluator(chain: str, time: int, vests: int,
                                             rate: int) -> None:
    assert withdraw_rate(chain, time, vests) == rate


def test_fills_move_the_power_down_until_it_ends() -> None:
    """hive-5m's real fills of adm (1,569,493.022171 VESTS a week, before HF16)."""
    with gzip.open(DATA / "hive5m_ops.jsonl.gz") as fh:
        rows = [orjson.loads(line) for line in fh]
    fills = [r for r in rows if isinstance(r["op"], list) is False
             and r["op"]["type"] == "fill_vesting_withdraw_operation"
             and r["op"]["value"]["from_account"] == "adm"]
    assert len(fills) == 2
    weekly = int(fills[0]["op"]["value"]["withdrawn"]["amount"])
    to_withdraw = weekly * 104  # what adm's rate of `weekly` means before HF16
    r = Replay("hive", [HIVE_5M])
    r.state.accounts["adm"] = Account("adm", 10 * weekly, to_withdraw=to_withdraw,
                                      withdrawn=weekly * 101, vesting_withdraw_rate=weekly)
    adm = r.state.accounts["adm"]
    for f in fills:
        r.block(_raw_block(f["block"], f["timestamp"], vops=[f["op"]]))
    assert (adm.vesting_shares, adm.withdrawn, adm.vesting_withdraw_rate) == \
        (8 * weekly, 103 * weekly, weekly)
    assert adm.next_withdrawal == weekly
    last = dict(fills[1], block=fills[1]["block"] + 201_600)
    r.block(_raw_block(last["block"], "2016-07-10T23:45:09", vops=[last["op"]]))
    assert adm.withdrawn == to_withdraw and adm.vesting_withdraw_rate == 0  # the end
    assert adm.next_withdrawal == 0 and adm.effective_vests == 7 * weekly
    # a new withdraw_vesting restarts it with the evaluator's rate; 0 cancels it
    withdraw = ["withdraw_vesting", {"account": "adm", "vesting_shares": "7.000000 VESTS"}]
    r.block(_raw_block(last["block"] + 1, "2016-07-10T23:45:12", [withdraw]))
    assert (adm.to_withdraw, adm.withdrawn, adm.vesting_withdraw_rate) == (7_000_000, 0, 67307)
    cancel = ["withdraw_vesting", {"account": "adm", "vesting_shares": "0.000000 VESTS"}]
    r.block(_raw_block(last["block"] + 2, "2016-07-10T23:45:15", [cancel]))
    assert (adm.to_withdraw, adm.vesting_withdraw_rate, adm.next_withdrawal) == (0, 0, 0)


# --- (d) transfer_to_vesting: Steem converts the op at the block's price, Hive reads the vop --
def test_steem_transfer_to_vesting_converts_at_the_price_in_force() -> None:
    hived = [r for r in _hived_rows() if r["block"] == 46 and r["trx_in_block"] == 3]
    op, vop = (r["op"] for r in hived)  # initminer vests 1000 TESTS for ben8ah
    steem_op = [op[0], dict(op[1], amount="1000.000 STEEM")]
    prices = sorted([HIVE_5M, STEEM_17M])
    r = Replay("steem", prices)
    r.block(_raw_block(10_000_000, "2017-01-01T00:00:00", [steem_op], [vop]))  # 5M's price
    r.block(_raw_block(17_000_001, "2017-11-07T01:25:12", [steem_op], [vop]))  # 17M's price
    got = r.state.accounts["ben8ah"].vesting_shares
    assert got == 1_000_000 * HIVE_5M[2] // HIVE_5M[1] + 1_000_000 * STEEM_17M[2] // STEEM_17M[1]
    assert price_at(prices, 4_000_000) == HIVE_5M[1:]  # before every snapshot: the earliest
    # Hive: the op is ignored, the virtual op's VESTS count
    h = Replay("hive", prices)
    h.block(_raw_block(10_000_000, "2017-01-01T00:00:00", [op], [vop]))
    assert h.state.accounts["ben8ah"].vesting_shares == _units(vop[1]["vesting_shares_received"],
                                                               6)


def test_steem_transfer_to_vesting_without_a_price_is_recorded() -> None:
    r = Replay("steem", [])
    r.state.globals = Globals()
    r.block(_raw_block(100, "2017-01-01T00:00:00",
                       [["transfer_to_vesting", {"from": "a", "to": "", "amount": "1.000 STEEM"}]]))
    assert [(x.reason, x.account) for x in r.state.rejections] == [("no_vesting_price", "a")]


# --- (e) account_create_with_delegation: counted once on both chains --------------------------
@pytest.mark.parametrize("chain", ["steem", "hive"])
def test_account_create_with_delegation_counts_once(chain: str) -> None:
    rows = [r for r in _hived_rows() if r["block"] == 3 and r["trx_in_block"] == 1
            and "edgar0ah" in json.dumps(r["op"])]
    assert [x["op"][0] for x in rows] == ["account_create_with_delegation", "account_created"]
    r = Replay(chain, [STEEM_17M])
    r.block(_raw_block(17_000_000, "2017-11-07T01:25:09", [rows[0]["op"]], [rows[1]["op"]]))
    d = _units("100000000.000000 VESTS", 6)
    assert r.state.accounts["initminer"].delegated == d
    assert r.state.accounts["edgar0ah"].received == d
    assert r.state.delegations[("initminer", "edgar0ah")] == d


def test_steem_account_creation_fee_is_vested_before_hf20_only() -> None:
    op = ["account_create", {"fee": "3.000 STEEM", "creator": "steem", "new_account_name": "x",
                             "json_metadata": ""}]
    r = Replay("steem", [STEEM_17M])
    r.block(_raw_block(17_000_000, "2017-11-07T01:25:09", [op]))
    assert r.state.accounts["x"].vesting_shares == 3000 * STEEM_17M[2] // STEEM_17M[1]
    r.block(_raw_block(27_000_000, "2018-10-01T00:00:00",
                       [["account_create", dict(op[1], new_account_name="y")]]))
    assert "y" not in r.state.accounts  # HF20: the fee goes to @null


# --- node snapshots and the store -------------------------------------------------------------
def test_ops_at_or_before_a_node_snapshot_are_already_in_it() -> None:
    state = State(globals=Globals(1000, 1000))
    state.accounts["alice"] = Account("alice", vesting_shares=5000, as_of_block=200)
    state.accounts["bob"] = Account("bob", vesting_shares=100)  # built from ops
    block = Block(200, T0, records=[VestingDelta((200, 0, 0), "alice", "own", 700),
                                    VestingDelta((200, 0, 1), "alice", "delegation", 1000, "bob")])
    apply_block(state, block, MarketConfig())
    alice, bob = state.accounts["alice"], state.accounts["bob"]
    assert (alice.vesting_shares, alice.delegated) == (5000, 0)  # in alice's snapshot
    assert bob.received == 1000  # bob's side is not in any snapshot: it moves
    apply_block(state, Block(201, T0 + 3, records=[VestingDelta((201, 0, 0), "alice", "own",
                                                                700)]), MarketConfig())
    assert alice.vesting_shares == 5700


def test_store_keeps_pending_returns_and_prices_across_batches(sqlite_engine) -> None:
    from indexer.ingest import Ingester

    store = Store(sqlite_engine, CHAIN_ID, MarketConfig().rules.label)
    store.add_globals(*HIVE_5M)
    store.add_globals(*STEEM_17M)
    store.add_globals(STEEM_17M[0], 1, 1)  # a block keeps its first snapshot
    store.add_account_snapshot([Account("ned", 10**15), Account("amy", 10**12)])
    cfg = MarketConfig(window=10**9)
    ts = "2017-11-07T01:25:09"

    def commit(name: str) -> list:
        payload = commit_payload(CHAIN_ID, "bob", "p", name, 1, bytes(32))
        return custom_json_op(cfg.market_id, name, payload)

    blocks = [
        _raw_block(9_000_000, ts, [["comment", {"author": "bob", "permlink": "p",
                                                "parent_author": "", "parent_permlink": "t",
                                                "title": "", "body": "", "json_metadata": ""}]]),
        _raw_block(9_000_001, ts, [["delegate_vesting_shares", {
            "delegator": "ned", "delegatee": "amy", "vesting_shares": "1000.000000 VESTS"}]]),
        _raw_block(9_000_002, ts, [["delegate_vesting_shares", {
            "delegator": "ned", "delegatee": "amy", "vesting_shares": "400.000000 VESTS"}]]),
        _raw_block(9_000_003, ts, [commit("ned")]),
        _raw_block(17_000_004, ts, vops=[["return_vesting_delegation", {
            "account": "ned", "vesting_shares": "600.000000 VESTS"}]]),
        _raw_block(17_000_005, ts, [commit("amy")]),
    ]
    ing = Ingester(store, cfg, batch_blocks=1)
    ing.run(iter(blocks[:4]))
    with sqlite_engine.connect() as conn:
        pending = conn.execute(select(t.delegation_returns)).all()
        ned = conn.execute(select(t.accounts).where(t.accounts.c.name == "ned")).one()
        sp = conn.execute(select(t.commits.c.predictor, t.commits.c.sp)).all()
    assert [(p.delegator, p.block, p.vests) for p in pending] == [("ned", 9_000_002, 600 * 10**6)]
    assert ned.delegated == 1000 * 10**6
    ned_sp = (10**15 - 1000 * 10**6) * HIVE_5M[1] // HIVE_5M[2]  # 5M's price at 9M
    assert sp == [("ned", ned_sp)]
    Ingester(store, cfg, batch_blocks=1).run(iter(blocks[4:]))
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(t.delegation_returns)).all() == []
        ned = conn.execute(select(t.accounts).where(t.accounts.c.name == "ned")).one()
        amy = conn.execute(select(t.commits.c.sp).where(t.commits.c.predictor == "amy")).scalar()
    assert ned.delegated == 400 * 10**6
    assert amy == (10**12 + 400 * 10**6) * STEEM_17M[1] // STEEM_17M[2]  # 17M's price
