"""``/api/leaderboard``: curators by earnings over a range of settlements, paged."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from curation_market.api.common import (
    MAX_LIMIT,
    Conn,
    check_range,
    decode_cursor,
    encode_cursor,
    epoch,
    head,
    respond,
)
from indexer import readmodel as rm

router = APIRouter(tags=["curators"])


@router.get("/api/leaderboard")
def leaderboard(
    conn: Conn,
    settled_from: Annotated[datetime | None, Query(alias="from", description=(
        "markets settled at or after (ISO 8601 or unix seconds, chain time)"))] = None,
    settled_to: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict:
    """Curators by earnings over markets settled in the range (ties by name)."""
    h = head(conn)
    lo, hi = epoch(settled_from), epoch(settled_to)
    check_range(lo, hi, "from/to")
    after = None
    if cursor:
        earned, name = decode_cursor("leaderboard", cursor, (int, str))
        after = (earned, name)
    rows = rm.leaderboard(conn, lo, hi, after, limit + 1)
    items = [rm.totals_doc(r) for r in rows[:limit]]
    nxt = None
    if len(rows) > limit:
        nxt = encode_cursor("leaderboard", [items[-1]["earned"], items[-1]["curator"]])
    return respond(h, items=items, next_cursor=nxt,
                   range={"from": rm.iso(lo), "to": rm.iso(hi)})
