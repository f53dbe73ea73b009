"""Whole-database snapshots for comparing runs (determinism, idempotence, resume)."""

from __future__ import annotations

from sqlalchemy import Engine, select

from indexer import schema as t

UNDO_TABLES = frozenset({"undo_log", "undo_blocks"})


def dump(engine: Engine, undo: bool = False) -> dict[str, list[tuple]]:
    """``undo``: the undo log's tables too (bookkeeping of the last ``[ingest]
    reversible_blocks`` blocks, which runs with another window hold differently; left out by
    default, so that such runs compare on what they hold)."""
    out = {}
    with engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            if not undo and table.name in UNDO_TABLES:
                continue
            rows = conn.execute(select(table)).all()
            out[table.name] = sorted(tuple(r) for r in rows)
    return out
