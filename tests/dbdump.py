"""Whole-database snapshots for comparing runs (determinism, idempotence, resume)."""

from __future__ import annotations

from sqlalchemy import Engine, select

from indexer import schema as t


def dump(engine: Engine) -> dict[str, list[tuple]]:
    out = {}
    with engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            rows = conn.execute(select(table)).all()
            out[table.name] = sorted(tuple(r) for r in rows)
    return out
