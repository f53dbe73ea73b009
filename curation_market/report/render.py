"""The report as tables a person reads in a terminal.

Identifiers (``@author/permlink``) are never cut or folded: a reader pastes them into
``report --post``. Their column takes the width of the longest one and the table is drawn
as wide as that needs, wider than the terminal if it must (the terminal then wraps the line,
and a copy still yields the whole identifier); the other columns wrap.
"""

from __future__ import annotations

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from curation.payload import format_milli


def print_report(doc: dict, console: Console, detail: bool) -> None:
    markets = doc["markets"]
    console.print(f"[bold]as of block {doc['as_of_block']:,}[/bold] ({doc['as_of_time']}) · "
                  f"rules {doc['rules']}")
    quiet = [m for m in markets if not m["predictions"]]
    if not detail:
        markets = [m for m in markets if m["predictions"]]
    summary = Table(title=f"Settled markets with predictions ({len(markets)}; "
                          f"{len(quiet)} more settled with none)", show_lines=False)
    posts = [f"@{m['author']}/{m['permlink']}" for m in markets]
    summary.add_column("post", no_wrap=True, min_width=max(map(len, posts), default=4))
    for col in ("F", "pool", "paid", "returned", "revealed/commits"):
        summary.add_column(col, justify="right", no_wrap=True)
    summary.add_column("winners", overflow="fold")
    for m, post in zip(markets, posts, strict=True):
        preds = m["predictions"]
        winners = sorted((p for p in preds if p["reward"]), key=lambda p: -p["reward"])
        summary.add_row(
            post, format_milli(m["final_payout"]),
            format_milli(m["pool"]), format_milli(m["pool"] - m["returned"]),
            format_milli(m["returned"] + m["settlement"]["underdog_returned"]),
            f"{sum(p['revealed'] for p in preds)}/{len(preds)}",
            ", ".join(f"{p['predictor']} {format_milli(p['reward'])}" for p in winners[:3])
            + (" …" if len(winners) > 3 else ""))
    print_whole(summary, console)
    if detail:
        for m in markets:
            _market_detail(m, console)
    if doc["curators"]:
        # the columns of the page's leaderboard, then reputation's N and R (posts paying at
        # least the reputation minimum only), under the names the API gives them
        cur = Table(title="Curators")
        for col in ("curator", "earned", "predictions", "in band", "rewarded", "N", "R",
                    "open"):
            cur.add_column(col, justify="left" if col == "curator" else "right", no_wrap=True)
        for c in doc["curators"]:
            cur.add_row(c["curator"], format_milli(c["earned"]), str(c["predictions"]),
                        str(c["in_band"]), str(c["rewarded"]), str(c["n"]), str(c["r"]),
                        str(c["open_commits"]))
        print_whole(cur, console)
    rej = doc["rejections"]
    if rej:
        table = Table(title=f"Rejected ops ({sum(rej.values())})")
        table.add_column("reason")
        table.add_column("count", justify="right")
        for reason, n in rej.items():
            table.add_row(reason, str(n))
        console.print(table)


def print_whole(table: Table, console: Console) -> None:
    """Draw ``table`` at least as wide as its unbreakable columns need, never cropped."""
    need = Measurement.get(console, console.options.update(width=100_000), table).minimum
    width = console.width
    if need <= width:
        console.print(table)
        return
    console.width = need  # print(width=…) is capped at the console's width
    try:
        console.print(table, crop=False)
    finally:
        console.width = width


def _market_detail(m: dict, console: Console) -> None:
    # the identifier on a line of its own (a title would fold it at the table's width)
    console.print(f"[bold]@{m['author']}/{m['permlink']}[/bold] — F "
                  f"{format_milli(m['final_payout'])}, pool {format_milli(m['pool'])} "
                  f"({m['settlement']['curation_fraction']} of F)",
                  soft_wrap=True, highlight=False)
    table = Table(show_lines=True)
    for col in ("predictor", "prediction", "block", "reward"):
        table.add_column(col, no_wrap=True, justify="right" if col == "reward" else "left")
    table.add_column("why", overflow="fold")
    for p in m["predictions"]:
        pred = "—" if p["prediction"] is None else format_milli(p["prediction"])
        table.add_row(p["predictor"], pred, str(p["commit_block"]), format_milli(p["reward"]),
                      p["why"])
    print_whole(table, console)
