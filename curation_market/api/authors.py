"""``/api/authors/{name}``: the author's average payout record and underdog factors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from curation_market.api.common import MAX_LIMIT, NAME, ApiError, Conn, Ctx, head, respond
from indexer import readmodel as rm

router = APIRouter(tags=["authors"])


@router.get("/api/authors/{name}")
def author_view(conn: Conn, ctx: Ctx, name: Annotated[str, Path(pattern=NAME, max_length=32)],
                ) -> dict:
    """The author's average payout record (for the underdog adjustment) at the indexed
    head, for posts and replies, and the underdog factors of their settled markets."""
    h = head(conn)
    entries = rm.author_entries(conn, name)
    settled = rm.author_markets(conn, name, MAX_LIMIT)
    if not entries and not settled:
        raise ApiError(404, f"no author {name!r}: no paid posts indexed")
    win = ctx.cfg.rules.author_window
    return respond(h, author=name, average=rm.author_averages(entries, h.time, win),
                   author_window_seconds=win, paid=len(entries), markets=settled)
