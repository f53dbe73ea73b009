"""Steem Power as hived/steemd compute it (spec §3): the account formula, power-downs,
delegations with their return delay, vesting ops per chain, and node snapshots."""

from __future__ import annotations

from curation.market import MarketConfig, apply_block
from curation.records import Block, VestingDelta
from curation.state import Account, Globals, State

T0 = 1_500_000_000


def _apply(state: State, num: int, *records: VestingDelta, cfg: MarketConfig | None = None) -> None:
    block = Block(num, T0 + 3 * num)
    block.records.extend(records)
    apply_block(state, block, cfg or MarketConfig())


def test_ops_at_or_before_a_node_snapshot_are_already_in_it() -> None:
    state = State(globals=Globals(1000, 1000))
    state.accounts["alice"] = Account("alice", vesting_shares=5000, as_of_block=200)
    state.accounts["bob"] = Account("bob", vesting_shares=100)  # built from ops
    _apply(state, 200, VestingDelta((200, 0, 0), "alice", "own", 700),
           VestingDelta((200, 0, 1), "alice", "delegation", 1000, "bob"))
    alice, bob = state.accounts["alice"], state.accounts["bob"]
    assert (alice.vesting_shares, alice.delegated) == (5000, 0)  # in alice's snapshot
    assert bob.received == 1000  # bob's side is not in any snapshot: it moves
    _apply(state, 201, VestingDelta((201, 0, 0), "alice", "own", 700))
    assert alice.vesting_shares == 5700
