"""``/api/forecasts``: the market's forecast of each post's payout, ranked (a feed a
condenser-style frontend can show beside "trending"), and ``/api/forecasts/quality``: how well
past forecasts matched the final payouts, so a frontend can decide whether to trust the feed.

The rule (an SP-weighted median of the revealed predictions, in milli-units) is
:mod:`rewards.forecast`; the queries are :mod:`indexer.readmodel`. Nothing sealed is ever
read: only markets whose reveal period is over, or that settled.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from curation.phase import Phase
from curation_market.api.common import (
    MAX_LIMIT,
    NAME,
    PERMLINK,
    Conn,
    Ctx,
    decode_cursor,
    encode_cursor,
    envelope,
    head,
)
from indexer import readmodel as rm

router = APIRouter(tags=["forecasts"])


@router.get("/api/forecasts")
def forecasts(
    conn: Conn,
    ctx: Ctx,
    tag: Annotated[str | None, Query(
        pattern=PERMLINK, max_length=256,
        description="the post's category (first tag, parent_permlink of a top-level post)")]
    = None,
    author: Annotated[str | None, Query(pattern=NAME, max_length=32)] = None,
    phase: Annotated[Literal["closed", "settled"] | None, Query(
        description="closed: reveal period over, not paid yet (the live feed); settled: "
                    "paid. Default: both")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict:
    """Posts ranked by the market's forecast of their payout (highest first; ties: newest
    post first): an SP-weighted median of the revealed predictions, with how many
    predictions and how much SP (milli) stand behind it. Only markets whose reveal period
    is over appear."""
    h = head(conn)
    after = None
    if cursor:
        value, post_id = decode_cursor("forecasts", cursor, (int, int))
        after = (value, post_id)
    windows = ctx.cfg.windows
    ph = Phase(phase) if phase else None
    got = rm.forecast_feed(conn, windows, h.time, author=author, tag=tag, phase=ph,
                           after=after, limit=limit + 1)
    items = [rm.forecast_doc(it, h.time, windows, ctx.currency) for it in got[:limit]]
    nxt = None
    if len(got) > limit:
        last = got[limit - 1]
        nxt = encode_cursor("forecasts", [last["forecast"].value, last["row"]["id"]])
    return envelope(h, currency=ctx.currency, items=items, next_cursor=nxt)


@router.get("/api/forecasts/quality")
def forecast_quality(
    conn: Conn,
    ctx: Ctx,
    n: Annotated[int, Query(ge=1, le=10000, description="the last n settled markets that "
                                                      "had a forecast")] = 50,
) -> dict:
    """How well the forecasts of the last ``n`` settled markets matched their final payouts:
    Spearman's rank correlation, the median absolute error (milli) and the median relative
    error, and how many forecasts fell in the 90–100 % band."""
    h = head(conn)
    return envelope(h, currency=ctx.currency,
                    **rm.forecast_quality(conn, ctx.cfg.windows, h.time, n))
