"""``/api/markets`` (filtered, paged) and ``/api/markets/{author}/{permlink}`` (one market)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from curation.phase import Phase
from curation_market.api.common import (
    MAX_LIMIT,
    NAME,
    PERMLINK,
    ApiError,
    Conn,
    Ctx,
    check_range,
    decode_cursor,
    encode_cursor,
    epoch,
    head,
    respond,
    windows,
)
from indexer import readmodel as rm

router = APIRouter(tags=["markets"])


@router.get("/api/markets")
def markets(
    conn: Conn,
    ctx: Ctx,
    phase: Annotated[Phase | None, Query(description="phase on chain time")] = None,
    author: Annotated[str | None, Query(pattern=NAME, max_length=32)] = None,
    tag: Annotated[str | None, Query(
        pattern=PERMLINK, max_length=256,
        description="the post's category (its first tag, the parent_permlink of a top-"
                    "level post). Other tags are not indexed.")] = None,
    created_from: Annotated[datetime | None, Query(alias="from", description=(
        "created at or after (ISO 8601 or unix seconds, chain time)"))] = None,
    created_to: Annotated[datetime | None, Query(alias="to")] = None,
    with_commits: Annotated[bool, Query(description=(
        "only markets that received at least one commit"))] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict:
    """Markets, newest first (by post id, i.e. chain order)."""
    h = head(conn)
    lo, hi = epoch(created_from), epoch(created_to)
    check_range(lo, hi, "from/to")
    before = decode_cursor("markets", cursor, (int,))[0] if cursor else None
    win = windows(ctx, conn)
    rows = rm.markets(conn, win, h.time, phase=phase, author=author, tag=tag,
                      created_from=lo, created_to=hi, with_commits=with_commits,
                      before_id=before, limit=limit + 1)
    items = [rm.market_summary_doc(r, h.time, win) for r in rows[:limit]]
    nxt = encode_cursor("markets", [rows[limit - 1]["id"]]) if len(rows) > limit else None
    return respond(h, items=items, next_cursor=nxt)


@router.get("/api/markets/{author}/{permlink}")
def market(
    conn: Conn,
    ctx: Ctx,
    author: Annotated[str, Path(pattern=NAME, max_length=32)],
    permlink: Annotated[str, Path(pattern=PERMLINK, max_length=256)],
) -> dict:
    """One market: its predictions and every settlement factor. Until the reveal period is
    over only counts and commitments are shown, never predicted values."""
    h = head(conn)
    row = rm.market(conn, author, permlink)
    if row is None:
        raise ApiError(404, f"no market @{author}/{permlink}")
    commits = rm.commits_of(conn, [row["id"]]).get(row["id"], [])
    return respond(h, market=rm.market_doc(row, commits, h.time, windows(ctx, conn)))
