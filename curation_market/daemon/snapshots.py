"""Steem Power from the node: the vesting of a committer as of the block before its batch.

The node answers ``find_accounts`` for its head only; :mod:`indexer.history` rewinds that
snapshot along the account's history to the wanted block and the row is tagged with it
(``Account.as_of_block``), so the engine applies every vesting op of the batch and after it
exactly once, and none before (docs/node.md, "Steem Power from the node"). The rows are
written by :meth:`indexer.store.Store.write_account_snapshots`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from curation.records import Block, CommitMsg, MarketOp
from curation.state import Account
from indexer.accounts import account_from
from indexer.chain import ChainError
from indexer.history import Reconstruction, Rewind, read_back

if TYPE_CHECKING:
    from curation_market.daemon.context import Context

log = logging.getLogger("curation.daemon")


def snapshot_committers(ctx: Context, blocks: list[Block]) -> None:
    """Before each batch (the ingester's ``before_batch``): record the VESTS price the node
    reports, and read the accounts that commit for the first time, as of the end of the
    block before the batch, so the batch's prefetch finds them."""
    if ctx.node is not None:
        ctx.store.add_globals(ctx.node.head, ctx.node.total_vesting_fund,
                              ctx.node.total_vesting_shares)
    names = {rec.signer for block in blocks for rec in block.records
             if type(rec) is MarketOp and rec.signer is not None
             and any(isinstance(m, CommitMsg) for m in rec.msgs)}
    if not names:
        return
    todo = sorted(names - ctx.store.snapshotted(names))
    if todo:
        read_snapshots(ctx, todo, blocks[0].num - 1, blocks[0].num)


def read_snapshots(ctx: Context, names: Sequence[str], target: int, read_block: int,
                   note: str = "") -> dict[str, Reconstruction]:
    """Read ``names`` from the node and write their vesting at the end of ``target``
    (accounts, the delegations the rewind learnt, account_snapshots) in one transaction."""
    client = ctx.client
    snap = client.account_snapshot(list(names))
    if snap.head < target:
        raise ChainError(f"node {client.url} is at block {snap.head:,}, behind the "
                         f"block {target:,} the accounts are wanted at")
    ctx.store.add_globals(snap.head, snap.total_vesting_fund, snap.total_vesting_shares)
    prices = ctx.store.vesting_prices(target, snap.head)
    found = {o.get("name"): o for o in snap.accounts if isinstance(o, dict)}
    out: dict[str, Reconstruction] = {}
    for name in names:
        obj = found.get(name)
        if obj is None:
            out[name] = Reconstruction(Account(name, as_of_block=target), {}, True,
                                       ["not an account on the node"], 0)
            continue
        head_state = account_from(obj, snap.head)
        rewind = Rewind(head_state, snap.head, target, ctx.cfg.chain)
        try:
            read = read_back(client.history_page, rewind)
        except ChainError as exc:  # no account history on this node (plugin off)
            out[name] = Reconstruction(head_state, {}, False, [
                f"no account history ({str(exc)[:120]}): the vesting of block {snap.head} "
                f"stands for block {target}; ops up to {snap.head} are not applied again"],
                0)
            continue
        rec = rewind.result(read.complete, prices)
        if not read.filtered:
            rec.notes.append("the node ignores the operation filter (steemd): history "
                             "read unfiltered")
        rec.notes.insert(0, f"{read.entries} history entries in {read.calls} call(s)")
        out[name] = rec
    ctx.store.write_account_snapshots(out, snap.head, read_block, note)
    approx = [n for n, r in out.items() if not r.exact]
    if approx:
        log.warning("vesting of %s at block %d is approximate: %s", ", ".join(approx),
                    target, "; ".join(out[n].notes[-1] for n in approx)[:300])
    return out


def repair_snapshots(ctx: Context) -> list[str]:
    """Accounts read before snapshots were tagged (migration 0004, or a node_accounts
    table left by an older daemon): their rows hold the node's head state with later
    ops applied again. They are read afresh, as of the checkpoint."""
    stale = ctx.store.untagged_snapshots()
    checkpoint = ctx.ingester.checkpoint
    for name, read_block in stale:
        read_snapshots(ctx, [name], checkpoint, read_block,
                       f"re-read at block {checkpoint}: the head snapshot of block "
                       f"{read_block}'s batch was counted twice before")
    if stale:
        ctx.ingester.state.accounts.clear()
        ctx.ingester.state.delegations.clear()
        log.info("re-read %d account(s) read before snapshots were tagged", len(stale))
    return [n for n, _ in stale]
