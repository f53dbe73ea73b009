"""The read side of the indexed tables: every question the API, ``report`` and the lab ask.

Writes live in :mod:`indexer.store`; every ``SELECT`` lives here. Each function takes an open
SQLAlchemy connection and answers one question ("the markets, filtered and paged", "one
market with its predictions and factors", "a curator", "the leaderboard", "the outcomes",
"an author", "the head", "the rejections"). The ``*_doc`` functions turn those rows into the
one public JSON shape of each thing, so the API (curation_market/api/) and ``report --format
json`` (curation_market/report/build.py) serve the same fields under the same names with the
same values: ``tests/test_readmodel.py`` checks it for every settled market of the demo.

The per-curator counts, each defined once (:func:`curator_totals` and
:func:`leaderboard` share one aggregate):

* ``predictions`` — settled predictions (revealed or not) on settled markets;
* ``in_band`` — of those, the revealed ones inside the 90–100 % band
  (:func:`rewards.band.in_band`, the same test settlement applies);
* ``rewarded`` — of those, the ones paid more than 0; ``earned`` — the sum paid;
* ``n`` / ``r`` — reputation's N and R (spec §3): predictions and hits *counted*, i.e. on
  posts paying at least ``rules.reputation_min_payout``, as settlement kept them in the
  ``curators`` table; ``rp`` — what the curator's next hit is weighted with.

Before, the CLI's curators table printed ``n`` and ``r`` as "predictions" and "hits" while the
page's leaderboard printed all settled predictions and the qualified ones under the same
words (6 and 5 against 12 and 10 for one curator of the demo).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from sqlalchemy import (
    Integer,
    Select,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
    union_all,
)

from curation.chains import curation_fraction
from curation.chaintime import format_time
from curation.payload import format_milli
from curation.phase import WINDOW_KEYS, Phase, Windows
from indexer import schema as t
from rewards.band import band, in_band
from rewards.outcome import Forecast, Outcome, Withheld, bid_weight
from rewards.rules import label_fraction
from rewards.settle import CommitResult, reputation
from rewards.underdog import AuthorEntry, author_average

Row = Mapping[str, Any]
CHUNK = 500  # ids per ``IN (...)``: well under every backend's parameter limit
# a settled prediction's factors: settlement's record (rewards.settle.CommitResult) as stored,
# but ``hit``, which the documents show as ``revealed`` and the band instead
FACTORS = tuple(n for n in CommitResult.__slots__ if n != "hit")

p, s, c = t.posts, t.settlements, t.commits


def code_point(column: Any, dialect: str) -> Any:
    """``column`` ordered and compared by code point on every database.

    PostgreSQL orders text in the database's collation: on an ``en_US.utf8`` cluster ``ab-c``
    sorts after ``abb`` (punctuation is ignored at first), on SQLite (``BINARY``) and in
    Python before it, so tied curators came out in another order and the reports differed.
    ``COLLATE "C"`` compares bytes, which for UTF-8 is code-point order, like the others.
    """
    return column.collate("C") if dialect == "postgresql" else column


def iso(ts: int | None) -> str | None:
    return format_time(ts) if ts is not None else None


# --- the head -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Head:
    block: int
    block_id: str
    time: int
    rules: str


def head(conn: Any) -> Head | None:
    """The indexed head (None before the first checkpoint). Raises the database's error when
    the tables do not exist yet: the caller says what to run."""
    row = conn.execute(select(t.meta).where(t.meta.c.id == 1)).mappings().first()
    if row is None:
        return None
    return Head(row["last_block"], row["last_block_id"], row["last_time"], row["rules"])


def recorded_settings(conn: Any) -> dict[str, str]:
    """Every setting the database recorded at its first write ({} before it, or in one built
    before migration 0006 and not written since): curation.market.MarketConfig.settings."""
    mt = t.market_settings.c
    return dict(conn.execute(select(mt.key, mt.value)).all())


def market_windows(conn: Any) -> Windows | None:
    """The windows the database was built with (its ``market_settings``), the only ones a
    reader judges phases and seals by: never defaults, never the reader's own config. None
    when it recorded none (built before migration 0006 and not written since)."""
    mt = t.market_settings.c
    return Windows.of_settings(dict(conn.execute(
        select(mt.key, mt.value).where(mt.key.in_(WINDOW_KEYS))).all()))


def head_doc(h: Head) -> dict:
    """What every answer is as of."""
    return {"as_of_block": h.block, "as_of_time": iso(h.time) if h.time else None}


# --- markets --------------------------------------------------------------------------------

def _market_select() -> Select:
    """A market with its commit counts and, once settled, its settlement: one row."""
    cc = t.api_market_counts  # kept by the store (was a GROUP BY over all commits)
    return (select(p, cc.c.n_commits, cc.c.n_revealed, s.c.pool, s.c.returned,
                   s.c.n_qualified, s.c.rules.label("srules"), s.c.underdog_returned,
                   s.c.x, s.c.f, s.c.author_average, s.c.r.label("s_r"),
                   s.c.time.label("s_time"))
            .select_from(p.outerjoin(cc, cc.c.post_id == p.c.id)
                         .outerjoin(s, s.c.post_id == p.c.id))
            .where(p.c.is_market))


def markets(conn: Any, windows: Windows, now: int, *, phase: Phase | None = None,
            author: str | None = None, tag: str | None = None,
            created_from: int | None = None, created_to: int | None = None,
            with_commits: bool = False, before_id: int | None = None,
            limit: int = 50) -> list[Row]:
    """Markets newest first (post id, i.e. chain order), at most ``limit`` rows, those with
    a post id below ``before_id`` (the cursor). A phase decided by time uses the same
    boundaries as :meth:`Windows.phase`, at chain time ``now``."""
    q = _market_select()
    if author:
        q = q.where(p.c.author == author)
    if tag:
        q = q.where(p.c.parent_author == "", p.c.parent_permlink == tag)
    if with_commits:
        q = q.where(exists().where(c.c.post_id == p.c.id))
    if created_from is not None:
        q = q.where(p.c.created >= created_from)
    if created_to is not None:
        q = q.where(p.c.created <= created_to)
    if phase is Phase.settled:
        q = q.where(p.c.paid_block.is_not(None))
    elif phase is Phase.deleted:
        q = q.where(p.c.paid_block.is_(None), p.c.deleted)
    elif phase is not None:
        lo, hi = windows.created_bounds(phase, now)
        q = q.where(p.c.paid_block.is_(None), ~p.c.deleted)
        if lo is not None:
            q = q.where(p.c.created >= lo)
        if hi is not None:
            q = q.where(p.c.created <= hi)
    if before_id is not None:
        q = q.where(p.c.id < before_id)
    return list(conn.execute(q.order_by(p.c.id.desc()).limit(limit)).mappings().all())


def market(conn: Any, author: str, permlink: str) -> Row | None:
    return conn.execute(_market_select().where(p.c.author == author, p.c.permlink == permlink)
                        ).mappings().first()


def settled_markets(conn: Any, post: tuple[str, str] | None = None) -> list[Row]:
    """Settled markets in settlement order (block, then post id); one post's with ``post``."""
    q = _market_select().where(s.c.post_id.is_not(None))
    if post:
        q = q.where(p.c.author == post[0], p.c.permlink == post[1])
    return list(conn.execute(q.order_by(s.c.block, p.c.id)).mappings().all())


def commits_of(conn: Any, post_ids: Sequence[int]) -> dict[int, list[Row]]:
    """Every commit on these posts, in commit order (one statement per 500 posts)."""
    out: dict[int, list[Row]] = {}
    for i in range(0, len(post_ids), CHUNK):
        q = (select(c).where(c.c.post_id.in_(post_ids[i:i + CHUNK]))
             .order_by(c.c.post_id, c.c.block, c.c.trx, c.c.op, c.c.sub))
        for row in conn.execute(q).mappings():
            out.setdefault(row["post_id"], []).append(row)
    return out


def phase_of(row: Row, now: int, windows: Windows | None) -> Phase:
    """The market's phase at chain time ``now``. Without windows (a database that recorded
    none, :func:`market_windows`) only a settled or deleted market has one."""
    paid, deleted = row["paid_block"] is not None, bool(row["deleted"])
    if windows is None:
        if not (paid or deleted):
            raise ValueError("an unsettled market's phase needs the market windows")
        windows = Windows()  # the phase of a paid or deleted post does not depend on them
    return windows.phase(row["created"], now, paid, deleted)


def sealed(row: Row, now: int, windows: Windows | None) -> bool:
    """Values stay hidden until the reveal period is over (or the market settled)."""
    if row["paid_block"] is not None:
        return False
    if windows is None:
        raise ValueError("an unsettled market's seal needs the market windows")
    return windows.sealed(now - row["created"])


def market_summary_doc(row: Row, now: int, windows: Windows | None) -> dict:
    """A market as listed. ``commit_until``/``reveal_until`` come from the database's windows
    (:func:`market_windows`); a database that recorded none leaves them out."""
    out = {
        "id": row["id"], "author": row["author"], "permlink": row["permlink"],
        "category": row["parent_permlink"] if not row["parent_author"] else None,
        "is_reply": bool(row["parent_author"]),
        "created": iso(row["created"]), "created_block": row["block"],
        "phase": phase_of(row, now, windows).value,
    }
    if windows is not None:
        out["commit_until"] = iso(row["created"] + windows.window)
        # the first second a reveal counts (spec §2: window < t_reveal - created)
        out["reveal_from"] = iso(row["created"] + windows.window + 1)
        out["reveal_until"] = iso(row["created"] + windows.window + windows.reveal_period)
    out.update({
        "n_commits": row["n_commits"] or 0, "n_revealed": row["n_revealed"] or 0,
        "net_rshares": row["net_rshares"],
        "final_payout": row["payout"], "paid_block": row["paid_block"],
    })
    if row["pool"] is not None:
        out.update(pool=row["pool"], returned=row["returned"],
                   n_qualified=row["n_qualified"], rules=row["srules"])
    return out


def market_doc(row: Row, commits: Sequence[Row], now: int, windows: Windows | None) -> dict:
    """One market with its predictions and every settlement factor: the API's
    ``/api/markets/{author}/{permlink}`` and each market of ``report --format json``. Until
    the reveal period is over only counts and commitments, never predicted values."""
    out = market_summary_doc(row, now, windows)
    hidden = sealed(row, now, windows)
    out["sealed"] = hidden
    final = row["payout"]
    if row["pool"] is not None:
        out["settlement"] = {
            "final_payout": final, "pool": row["pool"],
            "curation_fraction": settled_fraction(row["srules"], row["s_time"], row["f"]),
            "returned": row["returned"],
            "underdog_returned": row["underdog_returned"], "rules": row["srules"],
            "r": row["s_r"], "x": row["x"], "f": row["f"],
            "author_average": row["author_average"],
            "band": list(band(final)),
        }
    out["predictions"] = [prediction_doc(cm, final, hidden) for cm in commits]
    return out


# What a market's document in ``report`` leaves out of the API's: the row id (the API's paging
# key, which depends on what else this database indexed) and each commit's ``position`` (the op's
# address in its block: an unrelated transaction placed before it moves it, and a report of
# the same markets must stay the same bytes; ``commit_block`` stays). Every other field is
# the same, with the same value.
NOT_IN_REPORT = ("id",)
PREDICTION_NOT_IN_REPORT = ("position",)


def settled_market_doc(row: Row, commits: Sequence[Row], now: int,
                       windows: Windows | None) -> dict:
    """A settled market as ``report`` shows it: :func:`market_doc` (with the database's
    windows) without :data:`NOT_IN_REPORT` and :data:`PREDICTION_NOT_IN_REPORT`, so two
    databases holding the same markets report them alike."""
    doc = market_doc(row, commits, now, windows)
    del doc["id"]
    for pred in doc["predictions"]:
        for key in PREDICTION_NOT_IN_REPORT:
            del pred[key]
    return doc


def prediction_doc(cm: Row, final: int | None, hidden: bool) -> dict:
    item: dict[str, Any] = {
        "predictor": cm["predictor"], "commitment": cm["commitment"],
        "commit_block": cm["block"], "position": [cm["block"], cm["trx"], cm["op"], cm["sub"]],
        "commit_time": iso(cm["time"]), "status": cm["status"]}
    if hidden:
        return item
    item.update(prediction=cm["prediction"], revealed=cm["prediction"] is not None,
                reveal_block=cm["reveal_block"], stake=cm["stake"], bid=cm["bid"],
                sp=cm["sp"], sp_known=cm["sp_known"])
    if cm["status"] == "settled" and final is not None:
        item.update({k: cm[k] for k in FACTORS})
        item["why"] = explain(item, {"final_payout": final})
    return item


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


def explain(pred: Mapping[str, Any], market: Mapping[str, Any]) -> str:
    """One line a curator can read: why this prediction earned what it earned."""
    if not pred["revealed"]:
        return "never revealed: a miss (counts in N)"
    final = market["final_payout"]
    lo, hi = band(final)
    text = f"band {format_milli(lo)}..{format_milli(hi)}"
    if not pred["qualified"]:
        why = "voted on the post" if pred["voted"] and in_band(pred["prediction"], final) \
            else "outside the " + text
        return f"not qualified: {why}"
    parts = [f"in {text}"]
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


# --- curators -------------------------------------------------------------------------------

def _totals(settled_from: int | None = None, settled_to: int | None = None,
            name: str | None = None) -> Select:
    """Per predictor over markets settled in the range: earned, predictions, in_band,
    rewarded (the module docstring defines each)."""
    earned = func.coalesce(func.sum(c.c.reward), 0).label("earned")
    q = (select(c.c.predictor, earned, func.count().label("predictions"),
                func.sum(case((in_band(c.c.prediction, s.c.final_payout), 1), else_=0))
                .label("in_band"),
                func.sum(case((c.c.reward > 0, 1), else_=0)).label("rewarded"))
         .select_from(c.join(s, s.c.post_id == c.c.post_id))
         .where(c.c.status == "settled").group_by(c.c.predictor))
    if settled_from is not None:
        q = q.where(s.c.time >= settled_from)
    if settled_to is not None:
        q = q.where(s.c.time <= settled_to)
    if name is not None:
        q = q.where(c.c.predictor == name)
    return q


def totals_doc(row: Row) -> dict:
    """A leaderboard row: one curator's totals over a range of settlements."""
    return {"curator": row["predictor"], "earned": int(row["earned"] or 0),
            "predictions": int(row["predictions"] or 0), "in_band": int(row["in_band"] or 0),
            "rewarded": int(row["rewarded"] or 0)}


def leaderboard_recomputed(conn: Any, settled_from: int | None = None,
                           settled_to: int | None = None, after: tuple[int, str] | None = None,
                           limit: int = 50) -> list[Row]:
    """:func:`leaderboard` the way it was computed before the aggregates: one GROUP BY over
    every settled commit of the range. The reference the aggregates are tested against."""
    q = _totals(settled_from, settled_to)
    agg = q.selected_columns
    earned, predictor = agg.earned, code_point(c.c.predictor, conn.dialect.name)
    if after is not None:
        e, who = after
        q = q.having(or_(earned < e, and_(earned == e, predictor > literal(who))))
    return list(conn.execute(q.order_by(earned.desc(), predictor).limit(limit))
                .mappings().all())


DAY = 86400  # the aggregates' day: UTC, chain time // DAY


def leaderboard(conn: Any, settled_from: int | None = None, settled_to: int | None = None,
                after: tuple[int, str] | None = None, limit: int = 50) -> list[Row]:
    """Curators by ``earned`` over markets settled in the range, ties by name in code-point
    order; ``after`` is the last row's ``(earned, name)`` (the cursor).

    Read from the aggregates the store keeps (``api_curator_totals``, ``api_curator_days``):
    without a range straight from the totals' (earned DESC, name) index; with one, the whole
    UTC days inside it from the day rows and only the partial days at its two ends from the
    commits themselves. Equal to :func:`leaderboard_recomputed` row for row.

    The statement of each shape is built once with bound parameters (:func:`_board_statement`):
    building the ranged union and its cache key was a third of a leaderboard request's CPU
    (docs/api.md "Speed at scale", the profile)."""
    params: dict[str, Any] = {"limit": limit}
    if after is not None:
        params["after_earned"], params["after_name"] = after
    if settled_from is None and settled_to is None:
        shape: tuple = ("all",)
    else:
        lo, hi = settled_from, settled_to
        first = None if lo is None else -(-lo // DAY)  # the first whole day
        last = None if hi is None else (hi + 1) // DAY - 1  # the last whole day
        if first is not None and last is not None and first > last:  # no whole day inside
            shape, edges = ("range", False, False, False, True), [(lo, hi)]
        else:
            lo_edge = first is not None and lo < first * DAY
            hi_edge = last is not None and hi >= (last + 1) * DAY
            shape = ("range", first is not None, last is not None, lo_edge, hi_edge)
            edges = [(lo, first * DAY - 1)] if lo_edge else []
            edges += [((last + 1) * DAY, hi)] if hi_edge else []
            params.update({k: v for k, v in (("first", first), ("last", last))
                           if v is not None})
        for i, (a, b) in enumerate(edges):
            params[f"edge{i}_from"], params[f"edge{i}_to"] = a, b
    q = _board_statement(conn.dialect.name, shape, after is not None)
    return list(conn.execute(q, params).mappings().all())


@functools.lru_cache(maxsize=64)
def _board_statement(dialect: str, shape: tuple, paged: bool) -> Any:
    """The leaderboard's statement for one shape, its values as bound parameters: ``shape``
    is ``("all",)`` or ``("range", has first whole day, has last whole day, has a partial
    day before, has a partial day after)``; a range with no whole day inside is
    ``("range", False, False, False, True)`` with its one edge the whole range."""
    lim = bindparam("limit", type_=Integer)
    if shape == ("all",):
        a = t.api_curator_totals.c
        q = select(a.name.label("predictor"), a.earned, a.predictions, a.in_band,
                   a.rewarded).where(a.predictions > 0)
        earned, name = a.earned, a.name  # its collation is "C" on PostgreSQL (schema)
        if paged:
            e, who = bindparam("after_earned"), bindparam("after_name")
            q = q.where(earned <= e, or_(earned < e, name > who))
        return q.order_by(earned.desc(), name).limit(lim)
    u = _range_parts_bound(dialect, *shape[1:])
    earned = func.sum(u.c.earned).label("earned")
    q = (select(u.c.predictor, earned, func.sum(u.c.predictions).label("predictions"),
                func.sum(u.c.in_band).label("in_band"),
                func.sum(u.c.rewarded).label("rewarded"))
         .group_by(u.c.predictor))
    predictor = code_point(u.c.predictor, dialect)
    if paged:
        e, who = bindparam("after_earned"), bindparam("after_name")
        q = q.having(or_(earned < e, and_(earned == e, predictor > who)))
    return q.order_by(earned.desc(), predictor).limit(lim)


def _range_parts_bound(dialect: str, has_first: bool, has_last: bool, lo_edge: bool,
                       hi_edge: bool) -> Any:
    """:func:`_range_parts` with bound parameters (``first``, ``last``, ``edgeN_from``,
    ``edgeN_to``) instead of values. Without a first and a last whole day but with one edge
    (``hi_edge`` alone), that edge is the whole range and there are no day rows."""
    parts = []
    if has_first or has_last or lo_edge or not hi_edge:
        d = t.api_curator_days.c
        days = select(code_point(d.name, dialect).label("predictor"), d.earned,
                      d.predictions, d.in_band, d.rewarded)
        if has_first:
            days = days.where(d.day >= bindparam("first"))
        if has_last:
            days = days.where(d.day <= bindparam("last"))
        parts.append(days)
    for i in range(int(lo_edge) + int(hi_edge)):
        a, b = bindparam(f"edge{i}_from"), bindparam(f"edge{i}_to")
        paid = select(s.c.post_id).where(s.c.time >= a, s.c.time <= b)
        raw = (_totals().where(s.c.time >= a, s.c.time <= b)
               .where(c.c.post_id.in_(paid)).subquery())
        parts.append(select(code_point(raw.c.predictor, dialect).label("predictor"),
                            raw.c.earned, raw.c.predictions, raw.c.in_band, raw.c.rewarded))
    return (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("parts")


def curators(conn: Any, name: str | None = None) -> list[Row]:
    """Every curator (or one) with reputation's N and R and the open commits settlement keeps
    in ``curators``, beside the totals over every settled market; by ``earned``, then name."""
    cur, dialect = t.curators, conn.dialect.name
    tot = select(t.api_curator_totals.c.name.label("predictor"),
                 *[t.api_curator_totals.c[k] for k in ("earned", "predictions", "in_band",
                                                       "rewarded")]).subquery("tot")
    q = (select(cur.c.name.label("predictor"), cur.c.n, cur.c.hits, cur.c.open_commits,
                tot.c.earned, tot.c.predictions, tot.c.in_band, tot.c.rewarded)
         .select_from(cur.outerjoin(tot, tot.c.predictor == code_point(cur.c.name, dialect))))
    if name is not None:
        q = q.where(cur.c.name == name)
    earned = func.coalesce(tot.c.earned, 0)
    return list(conn.execute(q.order_by(earned.desc(), code_point(cur.c.name,
                                                                   conn.dialect.name)))
                .mappings().all())


def curator_doc(name: str, row: Row | None) -> dict:
    """A curator's totals and reputation (zeros for a name only rejections know)."""
    if row is None:
        row = {"predictor": name, "n": 0, "hits": 0, "open_commits": 0, "earned": 0,
               "predictions": 0, "in_band": 0, "rewarded": 0}
    n, hits = row["n"], row["hits"]
    return {**totals_doc(row), "n": n, "r": hits, "rp": float(reputation(n, hits)[2]),
            "open_commits": row["open_commits"]}


def curator_history(conn: Any, name: str, before: tuple[int, int, int, int] | None = None,
                    limit: int = 50) -> list[Row]:
    """The curator's settled predictions, newest first; ``before`` is a commit position."""
    return _settled_of(conn, name, before, limit,
                       c.c.block, c.c.trx, c.c.op, c.c.sub, c.c.prediction, c.c.qualified,
                       c.c.n, c.c.r, c.c.rp, c.c.reward, c.c.cp, c.c.weight, p.c.author,
                       p.c.permlink, p.c.payout, s.c.time.label("settled_time"),
                       s.c.block.label("settled_block"))


def _settled_of(conn: Any, name: str, before: tuple[int, int, int, int] | None, limit: int,
                *columns: Any) -> list[Row]:
    """A curator's settled commits joined to their post and settlement, newest commit
    first, keyset-paged by commit position: one query shape for the history and the
    curator's own view (they differ only in the columns they need)."""
    q = (select(*columns)
         .select_from(c.join(p, p.c.id == c.c.post_id).join(s, s.c.post_id == c.c.post_id))
         .where(c.c.predictor == name, c.c.status == "settled"))
    if before is not None:
        q = q.where(tuple_(c.c.block, c.c.trx, c.c.op, c.c.sub) < tuple_(*before))
    return list(conn.execute(q.order_by(c.c.block.desc(), c.c.trx.desc(), c.c.op.desc(),
                                        c.c.sub.desc()).limit(limit)).mappings().all())


def history_doc(r: Row) -> dict:
    return {
        "author": r["author"], "permlink": r["permlink"], "commit_block": r["block"],
        "prediction": r["prediction"], "final_payout": r["payout"],
        "qualified": r["qualified"], "n": r["n"], "r": r["r"], "rp": r["rp"],
        "cp": r["cp"], "weight": r["weight"], "reward": r["reward"],
        "settled_block": r["settled_block"], "settled_time": iso(r["settled_time"]),
    }


# --- rejections -----------------------------------------------------------------------------

def rejection_counts(conn: Any, account: str | None = None) -> dict[str, int]:
    """Rejected ops by reason (of one account, or all), reasons in code-point order."""
    rj = t.rejections
    q = select(rj.c.reason, func.count()).group_by(rj.c.reason)
    if account is not None:
        q = q.where(rj.c.account == account)
    return dict(conn.execute(q.order_by(code_point(rj.c.reason, conn.dialect.name))).all())


def rejection_rows(conn: Any, reason: str | None = None, account: str | None = None,
                   limit: int = 50) -> list[dict]:
    """Rejected ops in chain order (position), every column, optionally of one reason or
    account: what ``curation-market rejections`` lists."""
    rj = t.rejections
    q = select(rj).order_by(rj.c.block, rj.c.trx, rj.c.op, rj.c.sub).limit(limit)
    if reason:
        q = q.where(rj.c.reason == reason)
    if account:
        q = q.where(rj.c.account == account)
    return [dict(row) for row in conn.execute(q).mappings()]


def meta_row(conn: Any) -> dict | None:
    """The checkpoint row (None: the tables exist but nothing was indexed yet)."""
    row = conn.execute(select(t.meta).where(t.meta.c.id == 1)).mappings().first()
    return dict(row) if row is not None else None


def latest_rejections(conn: Any, account: str, limit: int) -> list[dict]:
    """The account's newest rejected ops, newest first, each with its reason."""
    rj = t.rejections
    rows = conn.execute(select(rj).where(rj.c.account == account)
                        .order_by(rj.c.block.desc(), rj.c.trx.desc(), rj.c.op.desc(),
                                  rj.c.sub.desc()).limit(limit)).mappings().all()
    return [{"position": [r["block"], r["trx"], r["op"], r["sub"]], "kind": r["kind"],
             "reason": r["reason"], "detail": r["detail"], "author": r["author"],
             "permlink": r["permlink"]} for r in rows]


# --- authors --------------------------------------------------------------------------------

def author_entries(conn: Any, name: str) -> list[Any]:
    """The author's paid posts and replies as (is_reply, time, r, w), oldest first."""
    ah = t.author_history.c
    return list(conn.execute(select(ah.is_reply, ah.time, ah.r, ah.w).where(ah.author == name)
                             .order_by(ah.is_reply, ah.time, ah.post_id)).all())


def author_markets(conn: Any, name: str, limit: int) -> list[dict]:
    """The underdog factors of the author's settled markets, newest first."""
    rows = conn.execute(
        select(p.c.permlink, s.c.block, s.c.final_payout, s.c.r, s.c.x, s.c.f,
               s.c.author_average, s.c.underdog_returned)
        .select_from(s.join(p, p.c.id == s.c.post_id)).where(p.c.author == name)
        .order_by(s.c.block.desc(), s.c.post_id.desc()).limit(limit)).mappings().all()
    return [dict(m) for m in rows]


def author_averages(entries: Iterable[Any], now: int, window: int) -> dict[str, float | None]:
    """Spec §6's weighted average R at ``now``, for posts and for replies apart."""
    entries = list(entries)
    avg = {}
    for reply in (False, True):
        mine = [AuthorEntry(r.time, r.r, r.w) for r in entries if r.is_reply == reply]
        avg["replies" if reply else "posts"] = author_average(mine, now, window)
    return avg


# --- outcomes (what the staked rule sets and the lab judge) ----------------------------------

class OutcomeMarket(NamedTuple):
    post_id: int
    author: str
    permlink: str
    created: int
    paid_at: int
    final_payout: int
    pool: int


class SettledCommit(Protocol):
    """A settled commit, from the database or the engine's state (curation.state.Commit)."""

    post_id: int
    predictor: str
    prediction: int | None
    time: int
    sp: int
    stake: int | None
    bid: int | None  # thousandths


def outcome_table(markets: Iterable[OutcomeMarket],
                  commits: Iterable[SettledCommit]) -> list[Outcome]:
    """The Outcome table, defined once for the database (:func:`outcomes`) and the lab's
    in-memory replays (curation_market/lab/evaluate.py): every settled market that received
    at least one commit, in the order given, with its validly revealed forecasts in commit
    order (``commits`` in commit order); unrevealed commits ride along as ``unrevealed``.

    A market nobody predicted is left out: under every rule set its whole pool goes back,
    and counting it would only swell the pools an epoch rule set (mmc, yuma) shares out.
    (Before, ``report`` kept such markets and the lab dropped them.)"""
    forecasts: dict[int, list[Forecast]] = {}
    withheld: dict[int, list[Withheld]] = {}
    for cm in commits:
        mine = forecasts.setdefault(cm.post_id, [])
        if cm.prediction is not None:
            mine.append(Forecast(cm.predictor, cm.prediction, cm.time, cm.sp, cm.stake,
                                 bid_weight(cm.bid)))
        else:  # a miss: staked rule sets burn its stake (rewards.outcome.forfeits)
            withheld.setdefault(cm.post_id, []).append(Withheld(cm.predictor, cm.time, cm.sp))
    return [Outcome(m.author, m.permlink, m.created, m.paid_at, m.final_payout, m.pool,
                    tuple(forecasts[m.post_id]), tuple(withheld.get(m.post_id, ())))
            for m in markets if m.post_id in forecasts]


def outcomes(conn: Any) -> list[Outcome]:
    """Every settled market of the database as an :class:`Outcome`, in settlement order."""
    rows = conn.execute(
        select(s.c.post_id, p.c.author, p.c.permlink, p.c.created, s.c.time.label("paid_at"),
               s.c.final_payout, s.c.pool)
        .join(p, p.c.id == s.c.post_id).order_by(s.c.block, s.c.post_id)).all()
    commits = conn.execute(
        select(c.c.post_id, c.c.predictor, c.c.prediction, c.c.time, c.c.sp, c.c.stake,
               c.c.bid)
        .where(c.c.status == "settled")
        .order_by(c.c.post_id, c.c.block, c.c.trx, c.c.op, c.c.sub)).all()
    return outcome_table((OutcomeMarket(*r) for r in rows), commits)


# --- the API aggregates, as stored and as recomputed (tests, `db check`) ---------------------

def api_aggregates(conn: Any) -> dict[str, list[tuple]]:
    """The aggregate tables the store keeps (schema ``api_*``), each sorted; a row of zeros
    (a curator whose only settlement was undone) counts as no row."""
    out = {}
    for table, keys in ((t.api_market_counts, 1), (t.api_curator_totals, 1),
                        (t.api_curator_days, 2)):
        rows = conn.execute(select(table)).all()
        out[table.name] = sorted(tuple(r) for r in rows if any(r[keys:]))
    return out


def api_aggregates_recomputed(conn: Any) -> dict[str, list[tuple]]:
    """What :func:`api_aggregates` must hold: the GROUP BY over every commit the read model
    ran per request before the aggregates (migration 0005 backfills with the same sums)."""
    counts = conn.execute(select(c.c.post_id, func.count(), func.count(c.c.reveal_block))
                          .group_by(c.c.post_id)).all()
    tot = _totals().subquery()
    totals = conn.execute(select(tot)).all()
    day = s.c.time // DAY
    days_q = _totals().add_columns(day.label("day")).group_by(day).subquery()
    days = conn.execute(select(days_q.c.day, days_q.c.predictor, days_q.c.earned,
                               days_q.c.predictions, days_q.c.in_band,
                               days_q.c.rewarded)).all()
    return {"api_market_counts": sorted(tuple(int(v) for v in r) for r in counts),
            "api_curator_totals": sorted((r[0], *map(int, r[1:])) for r in totals),
            "api_curator_days": sorted((int(r[0]), r[1], *map(int, r[2:])) for r in days)}

# --- forecasts (issue 14): the market's forecast of each post's payout ------------------------
#
# Only markets whose reveal window is over (or that settled) are ever read here: the SQL
# selects them by ``created`` on the same boundary as :meth:`Windows.sealed`, and every row is
# checked again with :func:`sealed` before a prediction of it is looked at. Nothing sealed can
# therefore enter a forecast, a count or an SP sum (tests/test_forecasts.py checks it for
# every market of a database at every phase).

FORECAST_PHASES = (Phase.closed, Phase.settled)


def _forecast_markets(conn: Any, windows: Windows, now: int, *, author: str | None = None,
                      tag: str | None = None, phase: Phase | None = None,
                      post_ids: Sequence[int] | None = None) -> list[Row]:
    """Unsealed markets (reveal period over, or settled) with at least one revealed
    prediction; deleted unpaid ones are void and left out."""
    unsealed_before = now - windows.window - windows.reveal_period  # age > W + R
    q = (select(p.c.id, p.c.author, p.c.permlink, p.c.created, p.c.block, p.c.parent_author,
                p.c.parent_permlink, p.c.payout, p.c.paid_block, p.c.deleted,
                s.c.time.label("s_time"))
         .select_from(p.outerjoin(s, s.c.post_id == p.c.id))
         .where(p.c.is_market,
                exists().where(c.c.post_id == p.c.id, c.c.prediction.is_not(None))))
    settled_q = p.c.paid_block.is_not(None)
    closed_q = and_(p.c.paid_block.is_(None), ~p.c.deleted, p.c.created < unsealed_before)
    if phase is Phase.settled:
        q = q.where(settled_q)
    elif phase is Phase.closed:
        q = q.where(closed_q)
    else:
        q = q.where(or_(settled_q, closed_q))
    if author:
        q = q.where(p.c.author == author)
    if tag:
        q = q.where(p.c.parent_author == "", p.c.parent_permlink == tag)
    if post_ids is not None:
        q = q.where(p.c.id.in_(post_ids))
    rows = conn.execute(q).mappings().all()
    return [r for r in rows if not sealed(r, now, windows)]  # the same test as market_doc


def revealed_of(conn: Any, post_ids: Sequence[int]) -> dict[int, list[tuple[int, int]]]:
    """The validly revealed ``(prediction, sp)`` of these posts, in commit order. Callers
    pass unsealed posts only."""
    out: dict[int, list[tuple[int, int]]] = {}
    for i in range(0, len(post_ids), CHUNK):
        q = (select(c.c.post_id, c.c.prediction, c.c.sp)
             .where(c.c.post_id.in_(post_ids[i:i + CHUNK]), c.c.prediction.is_not(None))
             .order_by(c.c.post_id, c.c.block, c.c.trx, c.c.op, c.c.sub))
        for pid, pred, sp in conn.execute(q):
            out.setdefault(pid, []).append((int(pred), int(sp or 0)))
    return out


def forecast_feed(conn: Any, windows: Windows, now: int, *, author: str | None = None,
                  tag: str | None = None, phase: Phase | None = None,
                  after: tuple[int, int] | None = None, limit: int = 50) -> list[dict]:
    """Unsealed markets ranked by their forecast (highest first, ties newest post first),
    as plain dicts with ``post``, ``forecast`` (:class:`rewards.forecast.Forecast`) and the
    market row; ``after`` is the last item's ``(forecast, post id)`` (the cursor).

    The weighted median is not SQL, so every matching market's forecast is computed here:
    one query for the markets and one per 500 of them for their revealed predictions. Fine
    for thousands of markets with predictions; a frontend over years of history passes
    ``author``/``tag``/``phase`` (closed = not yet paid, the feed beside "trending")."""
    from rewards.forecast import forecast

    rows = _forecast_markets(conn, windows, now, author=author, tag=tag, phase=phase)
    revealed = revealed_of(conn, [r["id"] for r in rows])
    items = []
    for r in rows:
        fc = forecast(revealed.get(r["id"], []))
        if fc is None:
            continue
        key = (fc.value, r["id"])
        if after is not None and not key < after:
            continue
        items.append((key, r, fc))
    items.sort(key=lambda it: it[0], reverse=True)
    return [{"row": r, "forecast": fc} for _, r, fc in items[:limit]]


def forecast_doc(item: Mapping[str, Any], now: int, windows: Windows, currency: str) -> dict:
    """One post of the forecast feed."""
    r, fc = item["row"], item["forecast"]
    settled = r["paid_block"] is not None
    return {
        "author": r["author"], "permlink": r["permlink"],
        "tag": r["parent_permlink"] if not r["parent_author"] else None,
        "is_reply": bool(r["parent_author"]),
        "created": iso(r["created"]), "created_block": r["block"],
        "phase": phase_of(r, now, windows).value,
        "reveal_until": iso(r["created"] + windows.window + windows.reveal_period),
        "forecast": f"{format_milli(fc.value)} {currency}", "forecast_milli": fc.value,
        "predictions": fc.predictions, "sp": fc.sp,
        "final_payout": r["payout"] if settled else None,
        "paid_block": r["paid_block"],
    }


def forecast_quality(conn: Any, windows: Windows, now: int, n: int) -> dict:
    """How the forecasts of the last ``n`` settled markets that had one matched their final
    payouts F (settlement order, newest first): :func:`rewards.forecast.quality` plus the
    range of settlement blocks it covers."""
    from rewards.forecast import forecast, quality

    q = (select(s.c.post_id, s.c.block, s.c.final_payout)
         .where(exists().where(c.c.post_id == s.c.post_id, c.c.prediction.is_not(None)))
         .order_by(s.c.block.desc(), s.c.post_id.desc()).limit(n))
    rows = conn.execute(q).all()
    revealed = revealed_of(conn, [r.post_id for r in rows])
    pairs = []
    for r in rows:
        fc = forecast(revealed.get(r.post_id, []))
        if fc is not None:
            pairs.append((fc.value, int(r.final_payout)))
    qual = quality(pairs)
    return {"n": n, "markets": qual.markets, "spearman": qual.spearman,
            "median_abs_error": qual.median_abs_error,
            "median_rel_error": qual.median_rel_error,
            "within_band": qual.within_band, "zero_payout": qual.zero_payout,
            "settled_from_block": rows[-1].block if rows else None,
            "settled_to_block": rows[0].block if rows else None}


# --- a curator's own view (issue 14) ---------------------------------------------------------

def curator_open(conn: Any, name: str) -> list[Row]:
    """The curator's commits on markets not settled yet (nor voided), oldest first, with
    their post."""
    q = (select(c.c.block, c.c.trx, c.c.op, c.c.sub, c.c.commitment, c.c.time,
                c.c.reveal_block, c.c.status, p.c.author, p.c.permlink, p.c.created,
                p.c.paid_block, p.c.deleted)
         .select_from(c.join(p, p.c.id == c.c.post_id))
         .where(c.c.predictor == name, c.c.status == "open", p.c.paid_block.is_(None)))
    return list(conn.execute(q.order_by(c.c.block, c.c.trx, c.c.op, c.c.sub)).mappings().all())


def open_commit_doc(r: Row, now: int, windows: Windows) -> dict:
    """An open commitment: what still has to be revealed, and by when. Never the prediction
    (the server cannot tell the curator from anyone else)."""
    created = r["created"]
    ph = windows.phase(created, now, False, bool(r["deleted"]))
    revealed = r["reveal_block"] is not None
    reveal_from, reveal_until = created + windows.window + 1, \
        created + windows.window + windows.reveal_period
    if revealed:
        todo = "revealed"
    elif ph is Phase.open:
        todo = "reveal from reveal_from"
    elif ph is Phase.revealing:
        todo = "reveal now"
    elif ph is Phase.deleted:
        todo = "post deleted: nothing to reveal"
    else:
        todo = "missed: the reveal period is over"
    return {"author": r["author"], "permlink": r["permlink"], "commitment": r["commitment"],
            "commit_block": r["block"], "position": [r["block"], r["trx"], r["op"], r["sub"]],
            "committed_at": iso(r["time"]), "phase": ph.value,
            "created": iso(created), "reveal_from": iso(reveal_from),
            "reveal_until": iso(reveal_until), "revealed": revealed,
            "reveal_block": r["reveal_block"],
            "must_reveal": not revealed and ph in (Phase.open, Phase.revealing),
            "seconds_left": max(0, reveal_until - now) if ph in (Phase.open, Phase.revealing)
            else 0, "todo": todo}


def curator_settled(conn: Any, name: str, before: tuple[int, int, int, int] | None = None,
                    limit: int = 50) -> list[Row]:
    """The curator's settled commits with every column and their market's settlement,
    newest commit first; ``before`` is a commit position (the cursor)."""
    return _settled_of(conn, name, before, limit,
                       c, p.c.author, p.c.permlink, p.c.created, s.c.final_payout, s.c.pool,
                       s.c.returned, s.c.rules.label("srules"), s.c.time.label("settled_time"),
                       s.c.block.label("settled_block"), s.c.f)


def settled_result_doc(r: Row) -> dict:
    """One settled prediction with every factor, the same fields and values as the
    prediction in :func:`market_doc`, plus its market's settlement."""
    final = r["final_payout"]
    out = {"author": r["author"], "permlink": r["permlink"], "created": iso(r["created"]),
           "final_payout": final, "band": list(band(final)), "pool": r["pool"],
           "returned": r["returned"],
           "curation_fraction": settled_fraction(r["srules"], r["settled_time"], r["f"]),
           "rules": r["srules"], "settled_block": r["settled_block"],
           "settled_time": iso(r["settled_time"])}
    out.update(prediction_doc(r, final, False))
    return out
