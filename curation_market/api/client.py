"""``/api/client-config``: what the page needs to build, sign and broadcast a curator's ops.

The page computes commitments in the browser and signs there (Hive/Steem Keychain, or a
posting key held in the page's memory); the server never sees a key or a salt. So the page
must hash and sign with exactly what the indexer will check against:

* ``chain_id`` is the database's own (``meta.chain_id``, the id every stored commitment was
  checked with), not a configured guess: spec §2 makes a mismatch an error, and the page
  also compares it with the node's ``get_version.chain_id`` before it broadcasts;
* ``custom_json_id``, the windows and the largest prediction are the served config's;
* ``staked`` names the staked rule set (spec §5) when the config has one: the dialog then
  asks for a stake and a bid, which the commitment binds (curation/commitment.py);
* ``node_url`` is where the page broadcasts (``[serve] node_url`` or ``serve --node-url``);
  None means the page can only sign through Keychain, which broadcasts to its own node.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from sqlalchemy import select

from curation.chains import CHAIN_IDS
from curation_market.api.common import Conn, Ctx, envelope, head
from indexer import schema as t

router = APIRouter(tags=["client"])

ADDRESS_PREFIX = "STM"  # public keys on Steem and on Hive alike (hived keeps "STM")


@dataclass(frozen=True)
class ClientSettings:
    """The served config's part that only the page reads."""

    chain: str = "steem"  # the configured chain name, used when the database has no id yet
    node_url: str | None = None
    staked: str | None = None  # the staked rule set's name, None for the seed rule sets


def client_settings(request: Request) -> ClientSettings:
    return getattr(request.app.state, "client", None) or ClientSettings()


@router.get("/api/client-config")
def client_config(conn: Conn, ctx: Ctx, request: Request) -> dict:
    """Chain id, custom_json id, windows, staking and the node to broadcast to: everything
    the page hashes and signs with. Keys and salts never reach the server."""
    h = head(conn)
    settings = client_settings(request)
    stored = conn.execute(select(t.meta.c.chain_id).where(t.meta.c.id == 1)).scalar()
    chain_id = stored or ctx.cfg.chain_id
    chain = next((name for name, cid in CHAIN_IDS.items() if cid == chain_id), settings.chain)
    limits = ctx.cfg.limits
    return envelope(
        h, chain=chain, chain_id=chain_id, address_prefix=ADDRESS_PREFIX,
        custom_json_id=ctx.cfg.market_id, currency=ctx.currency,
        window_seconds=ctx.cfg.window, reveal_period_seconds=ctx.cfg.reveal_period,
        max_prediction=limits.max_prediction, staked=settings.staked,
        node_url=settings.node_url)
