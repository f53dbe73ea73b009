"""Settled markets, curator totals and rejections, read back from the database.

The JSON form is the contract frontends read: sorted, integer milli-units for money, no wall
clock — the same database always gives the same bytes.
"""

from __future__ import annotations

from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from curation.payload import format_milli
from indexer import readmodel as rm
from indexer.readmodel import code_point, explain, settled_fraction
from rewards.outcome import Outcome
from rewards.staked import staked_rule

__all__ = ["build_report", "code_point", "explain", "load_outcomes", "parse_post_ref",
           "settled_fraction", "to_json"]


def parse_post_ref(ref: str) -> tuple[str, str]:
    """``@author/permlink`` (or ``author/permlink``) → (author, permlink)."""
    author, sep, permlink = ref.removeprefix("@").partition("/")
    if not sep or not author or not permlink:
        raise ValueError(f"expected @author/permlink, got {ref!r}")
    return author, permlink


def build_report(engine: Engine, post: tuple[str, str] | None = None) -> dict[str, Any]:
    """Every settled market (or one) as ``/api/markets/{author}/{permlink}`` shows it, every
    curator's totals as ``/api/curators/{name}`` shows them, and the rejections by reason.

    A market here has every field of the API's, by the same functions (the window ends from
    the windows the database recorded), but the database's row number and each commit's
    position in its block (:data:`indexer.readmodel.NOT_IN_REPORT`,
    ``PREDICTION_NOT_IN_REPORT``)."""
    with engine.connect() as conn:
        h = rm.head(conn)
        if h is None:
            raise ValueError("nothing indexed yet")
        rows = rm.settled_markets(conn, post)
        commits = rm.commits_of(conn, [r["id"] for r in rows])
        windows = rm.market_windows(conn)
        return {
            **rm.head_doc(h),
            "rules": h.rules,
            "markets": [rm.settled_market_doc(r, commits.get(r["id"], []), h.time, windows)
                        for r in rows],
            "curators": [] if post else [rm.curator_doc(r["predictor"], r)
                                         for r in rm.curators(conn)],
            "rejections": rm.rejection_counts(conn),
        }


def to_json(report: dict) -> bytes:
    return orjson.dumps(report, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


# --- staked rule sets (spec §5) ------------------------------------------------------------

def load_outcomes(engine: Engine) -> list[Outcome]:
    """The settled markets the staked rule sets judge (:func:`indexer.readmodel.outcomes`:
    those with at least one commit, revealed forecasts in commit order). The pool is the
    engine's own (``floor(F × curation_fraction)``, or f(x) with underdog)."""
    with engine.connect() as conn:
        return rm.outcomes(conn)


def build_staked_report(engine: Engine, name: str, params: Any) -> dict[str, Any]:
    """The named staked rule set applied to the settled markets of the database that
    received a commit (:func:`load_outcomes`)."""
    rule = staked_rule(name)
    settled = rule.settle(load_outcomes(engine), params)
    net: dict[str, dict[str, int]] = {}
    for a in settled.awards:
        row = net.setdefault(a.predictor, {"paid": 0, "burned": 0})
        row["paid" if a.amount > 0 else "burned"] += abs(a.amount)
    curators = sorted(({"curator": k, "paid": v["paid"], "burned": v["burned"],
                        "net": v["paid"] - v["burned"]} for k, v in net.items()),
                      key=lambda r: (-r["net"], r["curator"]))
    return {
        "rules": name,
        "per": rule.per,
        "params": {k: getattr(params, k) for k in params.__dataclass_fields__},
        "pools": settled.pools,
        "paid": settled.paid,
        "returned": settled.returned,
        "burned": settled.burned,
        "curators": curators,
        "rounds": [{"key": r.key, "pool": r.pool, "paid": r.paid, "returned": r.returned,
                    "burned": r.burned, **dict(r.info)} for r in settled.rounds],
    }


def print_staked(doc: dict, console: Console) -> None:
    """The staked section of the report as a table a person reads."""
    table = Table(title=f"Staked rule set {doc['rules']} (per {doc['per']}): pools "
                        f"{format_milli(doc['pools'])} = paid {format_milli(doc['paid'])} + "
                        f"returned {format_milli(doc['returned'])}; stakes burned "
                        f"{format_milli(doc['burned'])}")
    for col in ("curator", "paid", "burned", "net"):
        table.add_column(col, justify="left" if col == "curator" else "right")
    for c in doc["curators"]:
        table.add_row(c["curator"], format_milli(c["paid"]), format_milli(c["burned"]),
                      format_milli(c["net"]))
    console.print(table)
