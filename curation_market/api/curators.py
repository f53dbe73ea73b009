"""``/api/curators/{name}``: reputation, totals, settled history, rejected ops."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from curation_market.api.common import (
    MAX_LIMIT,
    NAME,
    ApiError,
    Conn,
    Ctx,
    decode_cursor,
    encode_cursor,
    envelope,
    head,
    respond,
    windows,
)
from indexer import readmodel as rm

router = APIRouter(tags=["curators"])


@router.get("/api/curators/{name}")
def curator(
    conn: Conn,
    name: Annotated[str, Path(pattern=NAME, max_length=32)],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict:
    """N, R and RP, earnings and counts, the settled-prediction history (newest first,
    paginated) and rejected ops with their reasons."""
    h = head(conn)
    row = next(iter(rm.curators(conn, name)), None)
    counts = rm.rejection_counts(conn, name)
    if row is None and not counts:
        raise ApiError(404, f"no curator {name!r}: no commits or rejected ops indexed")
    before = None
    if cursor:
        block, trx, op, sub = decode_cursor("history", cursor, (int, int, int, int))
        before = (block, trx, op, sub)
    rows = rm.curator_history(conn, name, before, limit + 1)
    nxt = None
    if len(rows) > limit:
        last = rows[limit - 1]
        nxt = encode_cursor("history", [last["block"], last["trx"], last["op"], last["sub"]])
    return respond(
        h, **rm.curator_doc(name, row),
        history=[rm.history_doc(r) for r in rows[:limit]], next_cursor=nxt,
        rejections={"by_reason": counts,
                    "latest": rm.latest_rejections(conn, name, MAX_LIMIT)})


@router.get("/api/curators/{name}/markets")
def curator_markets(
    conn: Conn,
    ctx: Ctx,
    name: Annotated[str, Path(pattern=NAME, max_length=32)],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict:
    """A curator's own view: open commitments (what still has to be revealed, and by when;
    never the predicted value, which the server cannot show to the curator alone) and
    settled results with every factor, newest first (``cursor`` pages these; the open
    commitments come on every page)."""
    h = head(conn)
    before = None
    if cursor:
        block, trx, op, sub = decode_cursor("curator-markets", cursor, (int, int, int, int))
        before = (block, trx, op, sub)
    open_rows = rm.curator_open(conn, name)
    rows = rm.curator_settled(conn, name, before, limit + 1)
    if not open_rows and not rows and next(iter(rm.curators(conn, name)), None) is None:
        raise ApiError(404, f"no curator {name!r}: no commits indexed")
    nxt = None
    if len(rows) > limit:
        last = rows[limit - 1]
        nxt = encode_cursor("curator-markets",
                            [last["block"], last["trx"], last["op"], last["sub"]])
    win = windows(ctx, conn)  # the database's, never the server's config
    docs = [rm.open_commit_doc(r, h.time, win) for r in open_rows]
    return envelope(
        h, curator=name, open=docs, to_reveal=sum(1 for d in docs if d["must_reveal"]),
        settled=[rm.settled_result_doc(r) for r in rows[:limit]], next_cursor=nxt)
