"""The test node, driven by beem itself: what beem reads must be what the recording holds.

Everything here is real: a JSON-RPC HTTP server on a loopback ephemeral port, beem's own
``Hive``, ``Block``, ``Blockchain``, ``Account`` and ``custom_json`` broadcast (signed with a
throwaway key made in the test). Nothing is mocked.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import requests
from beem import Hive
from beem.account import Account
from beem.block import Block
from beem.blockchain import Blockchain
from beem.exceptions import AccountDoesNotExistsException
from beem.transactionbuilder import TransactionBuilder
from beemapi.exceptions import NoMethodWithName, UnhandledRPCError
from beembase.operations import Custom_json
from beemgraphenebase.account import PrivateKey
from beemstorage import InRamConfigurationStore

from curation.chains import HIVE_CHAIN_ID
from curation_market.devnode.node import TestNode, appbase_op

DATA = Path(__file__).parent / "data"
BLOCKS = DATA / "hive5m_raw_blocks.jsonl.gz"
OPS = DATA / "hive5m_ops.jsonl.gz"
ROOT = Path(__file__).parent.parent


def hive(url: str, keys: list[str] | None = None) -> Hive:
    return Hive(node=url, keys=keys or [], num_retries=1, num_retries_call=1, timeout=10,
                config_store=InRamConfigurationStore(), expiration=600)


@pytest.fixture(scope="module")
def recorded() -> dict[int, dict]:
    with gzip.open(BLOCKS, "rb") as fh:
        return {b["_block_num"]: b for b in map(orjson.loads, fh)}


@pytest.fixture()
def node():
    with TestNode.from_files([BLOCKS], ops=[OPS], head=5_000_000, lag=20) as n:
        yield n


def test_config_and_global_properties(node: TestNode) -> None:
    hv = hive(node.url)
    assert hv.rpc.get_use_appbase()
    assert hv.chain_params["chain_id"] == HIVE_CHAIN_ID  # hived's own, not Steem's zeros
    assert hv.is_hive and hv.get_blockchain_version() == "1.27.5"
    props = hv.get_dynamic_global_properties(False)
    assert props["head_block_number"] == 5_000_000
    assert props["last_irreversible_block_num"] == 4_999_980
    assert props["head_block_id"] == "004c4b40245ffb07380a393fb2b3d841b76cdaec"
    assert props["total_vesting_shares"]["nai"] == "@@000000037"  # appbase: NAI amounts
    legacy = hv.rpc.get_dynamic_global_properties(api="condenser")
    assert legacy["total_vesting_shares"] == "448144916705.468383 VESTS"
    assert Blockchain(blockchain_instance=hv).get_current_block_num() == 4_999_980
    node.advance(3)
    assert hv.get_dynamic_global_properties(False)["head_block_number"] == 5_000_003


def test_block_equals_the_recording(node: TestNode, recorded: dict[int, dict]) -> None:
    hv = hive(node.url)
    for num in (4_999_987, 1_092, 1_000_000):
        rec = recorded[num]
        block = Block(num, blockchain_instance=hv)
        assert block.block_num == num
        assert block["block_id"] == rec["block_id"]
        assert block["previous"] == rec["previous"]
        assert block["transaction_ids"] == rec["transaction_ids"]
        assert block.json()["timestamp"] == rec["timestamp"]
        assert [op for tx in block["transactions"] for op in tx["operations"]] == \
            [appbase_op(op) for tx in rec["transactions"] for op in tx["operations"]]
        legacy = hv.rpc.get_block(num, api="condenser")
        assert [tx["transaction_id"] for tx in legacy["transactions"]] == rec["transaction_ids"]
        assert all(isinstance(op, list) for tx in legacy["transactions"]
                   for op in tx["operations"])
    assert hv.rpc.get_block({"block_num": 5_000_001}, api="block") == {}  # beyond the head


def test_batched_blocks_form_one_chain_across_gaps(node: TestNode,
                                                   recorded: dict[int, dict]) -> None:
    hv = hive(node.url)
    blocks = list(Blockchain(blockchain_instance=hv).blocks(start=4_999_950, stop=4_999_999,
                                                             max_batch_size=25))
    assert [b.block_num for b in blocks] == list(range(4_999_950, 5_000_000))
    for prev, cur in zip(blocks, blocks[1:], strict=False):
        assert cur["previous"] == prev["block_id"]
    # 4,999,981 is the first recorded one: the skipped block before it carries its previous
    assert blocks[30]["block_id"] == recorded[4_999_981]["previous"]
    assert blocks[31]["block_id"] == recorded[4_999_981]["block_id"]
    assert blocks[29]["block_id"][:8] == f"{4_999_979:08x}"  # a made-up id, numbered right
    # empty blocks are made again on request, not kept (a long catch-up would fill memory)
    cached = {num for num, _ in node.state._cache}  # noqa: SLF001
    assert 4_999_981 in cached and 4_999_979 not in cached


def test_ops_in_block_include_recorded_virtual_ops(node: TestNode) -> None:
    hv = hive(node.url)
    with gzip.open(OPS, "rb") as fh:
        vops = [r for r in map(orjson.loads, fh) if r["block"] == 4_999_999
                and r["virtual_op"] not in (False, 0)]
    assert vops
    # hived gives no ops for a reversible block unless asked to include them
    assert hv.rpc.get_ops_in_block({"block_num": 4_999_999, "only_virtual": True},
                                   api="account_history")["ops"] == []
    assert len(hv.rpc.get_ops_in_block({"block_num": 4_999_999, "only_virtual": True,
                                        "include_reversible": True},
                                       api="account_history")["ops"]) == len(vops)
    node.set_irreversible(5_000_000)
    only_virtual = Block(4_999_999, only_virtual_ops=True, blockchain_instance=hv)
    assert [o["op"] for o in only_virtual["operations"]] == [appbase_op(r["op"]) for r in vops]
    everything = Block(4_999_999, only_ops=True, blockchain_instance=hv)["operations"]
    n_tx_ops = sum(len(tx["operations"]) for tx in node.block(4_999_999)["transactions"])
    assert len(everything) == n_tx_ops + len(vops)
    assert [o["virtual_op"] for o in everything] == [False] * n_tx_ops + [True] * len(vops)
    legacy = hv.rpc.get_ops_in_block(4_999_999, True, api="condenser")
    assert [o["op"][0] for o in legacy] == [r["op"]["type"].removesuffix("_operation")
                                            if isinstance(r["op"], dict) else r["op"][0]
                                            for r in vops]


def test_enum_virtual_ops_pages_over_irreversible_blocks(node: TestNode) -> None:
    hv = hive(node.url)
    args = {"block_range_begin": 4_999_900, "block_range_end": 5_000_001,
            "group_by_block": True, "limit": 3}
    seen = []
    while True:
        page = hv.rpc.enum_virtual_ops(args, api="account_history")
        seen += [(g["block"], len(g["ops"])) for g in page["ops_by_block"]]
        assert all(g["block"] <= node.irreversible for g in page["ops_by_block"])
        if not page["next_operation_begin"]:
            break
        args |= {"block_range_begin": page["next_block_range_begin"],
                 "operation_begin": page["next_operation_begin"]}
    total = sum(n for _, n in seen)
    assert total == sum(len(node.state.ops_in_block(b, True))
                        for b in range(4_999_900, node.irreversible + 1))
    assert total > 3  # it really paged


def test_accounts(node: TestNode) -> None:
    node.add_account("alice", str(PrivateKey().pubkey), vests="1234.500000 VESTS")
    hv = hive(node.url)
    alice = Account("alice", blockchain_instance=hv)
    assert alice["vesting_shares"].amount == pytest.approx(1234.5)
    assert hv.rpc.get_accounts(["alice", "nobody"], api="condenser")[0]["vesting_shares"] == \
        "1234.500000 VESTS"
    with pytest.raises(AccountDoesNotExistsException):
        Account("nobody", blockchain_instance=hv)


def test_broadcast_is_verified_and_included_with_its_index(node: TestNode) -> None:
    node.state.head = 4_999_986  # the next block, 4,999,987, has 4 recorded transactions
    wif = node.add_account("alice")
    hv = hive(node.url, keys=[wif])
    payload = {"v": 1, "op": "commit", "author": "bob", "permlink": "p", "commitment": "ab" * 32}
    sent = hv.custom_json("curation_market", payload, required_posting_auths=["alice"])
    assert node.included == []  # not before the next block
    node.advance(1)
    [inc] = node.included
    assert (inc.block_num, inc.trx_index, inc.trx_id) == (4_999_987, 4, sent["trx_id"])
    block = Block(4_999_987, blockchain_instance=hive(node.url))
    assert block["transaction_ids"][4] == sent["trx_id"]
    op = block["transactions"][4]["operations"][0]
    assert op["type"] == "custom_json_operation"
    assert json.loads(op["value"]["json"]) == payload

    # the same transaction again, a wrong key, an unknown account: refused by the node
    forged = TransactionBuilder(blockchain_instance=hive(node.url))
    forged.appendOps(Custom_json(id="curation_market", json=json.dumps(payload),
                                 required_auths=[], required_posting_auths=["alice"]))
    forged.appendWif(str(PrivateKey()))  # not alice's key
    forged.sign()
    with pytest.raises(UnhandledRPCError, match="missing required posting authority"):
        forged.broadcast()
    tx = dict(sent)
    tx.pop("trx_id")
    with pytest.raises(UnhandledRPCError, match="Duplicate transaction"):
        hv.rpc.broadcast_transaction(tx, api="condenser")
    bad_json = dict(tx, operations=[["custom_json", dict(tx["operations"][0][1], json="{x")]])
    with pytest.raises(UnhandledRPCError, match="not valid JSON"):
        hv.rpc.broadcast_transaction(bad_json, api="condenser")
    node.advance(1)
    assert len(node.included) == 1


def test_unknown_methods_get_json_rpc_errors(node: TestNode) -> None:
    hv = hive(node.url)
    with pytest.raises(NoMethodWithName):
        hv.rpc.get_nothing({}, api="database")
    replies = requests.post(node.url, data=json.dumps([
        {"jsonrpc": "2.0", "id": 1, "method": "nosuch_api.x", "params": {}},
        {"jsonrpc": "2.0", "id": 2, "method": "block_api.get_block",
         "params": {"block_num": "1"}},
        {"jsonrpc": "2.0", "method": "testnode_api.advance", "params": {"count": 2}},
        {"jsonrpc": "2.0", "id": 3, "method": "call",
         "params": ["condenser_api", "get_block", [1]]},
    ]), timeout=10).json()
    assert [r["id"] for r in replies] == [1, 2, 3]  # the notification gets no answer
    assert "Could not find API nosuch_api" in replies[0]["error"]["message"]
    assert replies[1]["error"]["code"] == -32602
    assert replies[2]["result"]["block_id"].startswith("00000001")
    assert node.head == 5_000_002
    garbage = requests.post(node.url, data=b"{not json", timeout=10).json()
    assert garbage["error"]["code"] == -32700


def test_micro_fork_is_replaced_by_the_canonical_branch() -> None:
    with TestNode.from_files([BLOCKS], head=4_999_985, lag=1) as node:
        hv = hive(node.url)
        canonical = {n: node.block(n) for n in range(4_999_985, 4_999_986)}
        node.fork(depth=2)
        node.advance(2)
        provisional = [hv.rpc.get_block({"block_num": n}, api="block")["block"]
                       for n in (4_999_986, 4_999_987)]
        assert provisional[0]["previous"] == canonical[4_999_985]["block_id"]
        assert provisional[1]["previous"] == provisional[0]["block_id"]
        assert node.irreversible == 4_999_985  # never inside the open fork
        assert len(provisional[1]["transactions"]) == 3  # the 4th recorded one is missing
        node.advance(1)  # the canonical branch wins: 4,999,986..988 at once
        assert node.head == 4_999_988
        final = [hv.rpc.get_block({"block_num": n}, api="block")["block"]
                 for n in (4_999_986, 4_999_987, 4_999_988)]
        assert final[0]["block_id"] != provisional[0]["block_id"]
        assert final[2]["previous"] == final[1]["block_id"]
        assert final[1]["previous"] == final[0]["block_id"]
        assert len(final[1]["transactions"]) == 4
        assert node.irreversible == 4_999_987


def test_head_advances_over_time() -> None:
    with TestNode.from_files([BLOCKS], head=1_000, interval=0.02, lag=5) as node:
        deadline = time.monotonic() + 5
        while node.head < 1_005 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert node.head >= 1_005
        assert node.irreversible == node.head - 5 or node.irreversible >= node.head - 6


@pytest.mark.parametrize("command", [["curation_market.devnode"],
                                     ["curation_market", "devnode"]], ids=["module", "command"])
def test_command_line_node_serves_beem(tmp_path: Path, command: list[str]) -> None:
    """``python -m curation_market.devnode`` and ``curation-market devnode``: one node."""
    proc = subprocess.Popen([sys.executable, "-m", *command,
                             "--blocks", str(BLOCKS), "--port", "0", "--interval", "0",
                             "--start", "1000"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        hv = hive(url)
        assert hv.get_dynamic_global_properties(False)["head_block_number"] == 1_000
        hv.rpc.debug_generate_blocks({"count": 4}, api="debug_node")
        assert hv.get_dynamic_global_properties(False)["head_block_number"] == 1_004
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_demo_chain_serves_the_demo_with_its_accounts(tmp_path: Path) -> None:
    from curation_market.devnode.node import demo_chain

    inputs = demo_chain(tmp_path)
    with TestNode.from_files(inputs["blocks"], globals_path=inputs["globals_path"],
                             accounts=inputs["accounts"], chain=inputs["chain"]) as node:
        hv = hive(node.url)
        assert hv.is_steem and node.head == 16_999_999
        assert hv.get_dynamic_global_properties(False)["total_vesting_shares"]["amount"] == \
            "391632427652353443"
        oracle = hv.rpc.get_accounts(["sim-oracle"], api="condenser")[0]
        assert float(oracle["vesting_shares"].split()[0]) > 0
        market_ops = [
            op for n in node.state.numbers[:400] for tx in node.block(n)["transactions"]
            for op in tx["operations"] if op[0] == "custom_json"]
        assert market_ops and market_ops[0][1]["id"] == "curation_market"
