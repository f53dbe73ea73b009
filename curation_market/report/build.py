"""Settled markets, curator totals and rejections, read back from the database.

The JSON form is the contract frontends read: sorted, integer milli-units for money, no wall
clock — the same database always gives the same bytes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select

from curation.chains import curation_fraction
from curation.payload import format_milli
from indexer import schema as t
from indexer.ops import format_time
from rewards.outcome import Forecast, Outcome
from rewards.rules import label_fraction
from rewards.staked import staked_rule

PREDICTION_FIELDS = ("predictor", "prediction", "commit_block", "revealed", "qualified", "ep",
                     "d", "cp", "n", "r", "rp", "sp", "sp_known", "ia", "voted", "weight",
                     "reward")


def code_point(column: Any, dialect: str) -> Any:
    """``column`` ordered and compared by code point on every database.

    PostgreSQL orders text in the database's collation: on an ``en_US.utf8`` cluster ``ab-c``
    sorts after ``abb`` (punctuation is ignored at first), on SQLite (``BINARY``) and in
    Python before it, so tied curators came out in another order and the reports differed.
    ``COLLATE "C"`` compares bytes, which for UTF-8 is code-point order, like the others.
    """
    return column.collate("C") if dialect == "postgresql" else column


def parse_post_ref(ref: str) -> tuple[str, str]:
    """``@author/permlink`` (or ``author/permlink``) → (author, permlink)."""
    author, sep, permlink = ref.removeprefix("@").partition("/")
    if not sep or not author or not permlink:
        raise ValueError(f"expected @author/permlink, got {ref!r}")
    return author, permlink


def settled_fraction(rules: str, time: int, f: float | None) -> str:
    """The share of F that made a stored pool, as a decimal string: the underdog f when the
    rules used it, else the configured fraction the label records, else the chain's for the
    era of the settlement's block (curation/chains.py)."""
    if f is not None:
        return f"{f:.6g}"
    fraction = label_fraction(rules)
    if fraction is None:
        fraction = curation_fraction(time)
    den = fraction.denominator
    for prime in (2, 5):
        while den % prime == 0:
            den //= prime
    if den != 1:
        return str(fraction)  # no finite decimal: say it exactly
    return format((Decimal(fraction.numerator) / fraction.denominator).normalize(), "f")


def build_report(engine: Engine, post: tuple[str, str] | None = None) -> dict[str, Any]:
    with engine.connect() as conn:
        meta = conn.execute(select(t.meta)).mappings().one()
        markets = _markets(conn, post)
        return {
            "as_of_block": meta["last_block"],
            "as_of_time": format_time(meta["last_time"]) if meta["last_time"] else None,
            "rules": meta["rules"],
            "markets": markets,
            "curators": [] if post else _curators(conn),
            "rejections": _rejection_counts(conn),
        }


def _markets(conn: Any, post: tuple[str, str] | None) -> list[dict]:
    s, p = t.settlements, t.posts
    q = (select(s, p.c.author, p.c.permlink, p.c.created)
         .join(p, p.c.id == s.c.post_id).order_by(s.c.block, s.c.post_id))
    if post:
        q = q.where(p.c.author == post[0], p.c.permlink == post[1])
    rows = conn.execute(q).mappings().all()
    by_post = _predictions(conn, [r["post_id"] for r in rows])
    return [{
        "author": r["author"],
        "permlink": r["permlink"],
        "created": format_time(r["created"]),
        "paid_block": r["block"],
        "final_payout": r["final_payout"],
        "pool": r["pool"],
        "curation_fraction": settled_fraction(r["rules"], r["time"], r["f"]),
        "returned": r["returned"],
        "underdog_returned": r["underdog_returned"],
        "rules": r["rules"],
        "x": r["x"],
        "f": r["f"],
        "predictions": by_post.get(r["post_id"], []),
    } for r in rows]


def _predictions(conn: Any, post_ids: list[int]) -> dict[int, list[dict]]:
    c = t.commits
    out: dict[int, list[dict]] = {}
    for i in range(0, len(post_ids), 500):
        chunk = post_ids[i:i + 500]
        q = (select(c).where(c.c.post_id.in_(chunk), c.c.status == "settled")
             .order_by(c.c.post_id, c.c.block, c.c.trx, c.c.op, c.c.sub))
        for row in conn.execute(q).mappings():
            out.setdefault(row["post_id"], []).append(_prediction(row))
    return out


def _prediction(row: Any) -> dict:
    return {
        "predictor": row["predictor"],
        "prediction": row["prediction"],
        "commit_block": row["block"],
        "revealed": row["prediction"] is not None,
        "qualified": row["qualified"],
        "ep": row["ep"],
        "d": row["d"],
        "cp": row["cp"],
        "n": row["n"],
        "r": row["r"],
        "rp": row["rp"],
        "sp": row["sp"],
        "sp_known": row["sp_known"],
        "ia": row["ia"],
        "voted": row["voted"],
        "weight": row["weight"],
        "reward": row["reward"],
    }


def _curators(conn: Any) -> list[dict]:
    c = t.curators
    name = code_point(c.c.name, conn.dialect.name)
    rows = conn.execute(select(c).order_by(c.c.earned.desc(), name)).mappings()
    return [{"curator": r["name"], "earned": r["earned"], "predictions": r["n"],
             "hits": r["hits"], "rewarded": r["rewarded"], "open_commits": r["open_commits"]}
            for r in rows]


def _rejection_counts(conn: Any) -> dict[str, int]:
    r = t.rejections
    rows = conn.execute(select(r.c.reason, func.count()).group_by(r.c.reason)
                        .order_by(code_point(r.c.reason, conn.dialect.name)))
    return {reason: n for reason, n in rows}


def to_json(report: dict) -> bytes:
    return orjson.dumps(report, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def explain(pred: dict, market: dict) -> str:
    """One line a curator can read: why this prediction earned what it earned."""
    if not pred["revealed"]:
        return "never revealed: a miss (counts in N)"
    final = market["final_payout"]
    band = f"band {format_milli(-(-9 * final // 10))}..{format_milli(final)}"  # 10·P ≥ 9·F
    if not pred["qualified"]:
        why = "voted on the post" if pred["voted"] and 10 * pred["prediction"] >= 9 * final \
            and pred["prediction"] <= final else "outside the " + band
        return f"not qualified: {why}"
    parts = [f"in {band}"]
    if pred["ep"] is None:
        parts.append("first prediction: CP 1")
    else:
        parts.append(f"closest earlier {format_milli(pred['ep'])} → d {pred['d']:.4f}, "
                     f"CP {pred['cp']:.4f}")
    parts.append(f"RP ({pred['r']}/{pred['n']})³ = {pred['rp']:.4f}")
    sp = format_milli(pred["sp"]) + ("" if pred["sp_known"] else " (unknown)")
    parts.append(f"SP {sp}")
    if pred["ia"] != 1.0:
        parts.append(f"IA {pred['ia']:.4f}")
    parts.append(f"weight {pred['weight']:.6g} → {format_milli(pred['reward'])}")
    return "; ".join(parts)


# --- staked rule sets (spec §5) ------------------------------------------------------------

def load_outcomes(engine: Engine) -> list[Outcome]:
    """Every settled market as an :class:`Outcome`, in settlement order, with its validly
    revealed forecasts in commit order (unrevealed commits carry no stake or bid to judge).
    The pool is the engine's own (``floor(F × curation_fraction)``, or f(x) with underdog)."""
    s, p, c = t.settlements, t.posts, t.commits
    with engine.connect() as conn:
        rows = conn.execute(
            select(s.c.post_id, s.c.time, s.c.final_payout, s.c.pool, p.c.author,
                   p.c.permlink, p.c.created)
            .join(p, p.c.id == s.c.post_id).order_by(s.c.block, s.c.post_id)).all()
        forecasts: dict[int, list[Forecast]] = {}
        q = (select(c.c.post_id, c.c.predictor, c.c.prediction, c.c.time, c.c.sp, c.c.stake,
                    c.c.bid)
             .where(c.c.status == "settled", c.c.prediction.is_not(None))
             .order_by(c.c.post_id, c.c.block, c.c.trx, c.c.op, c.c.sub))
        for r in conn.execute(q):
            forecasts.setdefault(r.post_id, []).append(
                Forecast(r.predictor, r.prediction, r.time, r.sp, r.stake, r.bid))
    return [Outcome(r.author, r.permlink, r.created, r.time, r.final_payout, r.pool,
                    tuple(forecasts.get(r.post_id, ()))) for r in rows]


def build_staked_report(engine: Engine, name: str, params: Any) -> dict[str, Any]:
    """The named staked rule set applied to every settled market of the database."""
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
