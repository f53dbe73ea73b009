"""The report as tables a person reads in a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from curation.payload import format_milli
from curation_market.report.build import explain


def print_report(doc: dict, console: Console, detail: bool) -> None:
    markets = doc["markets"]
    console.print(f"[bold]as of block {doc['as_of_block']:,}[/bold] ({doc['as_of_time']}) · "
                  f"rules {doc['rules']}")
    quiet = [m for m in markets if not m["predictions"]]
    if not detail:
        markets = [m for m in markets if m["predictions"]]
    summary = Table(title=f"Settled markets with predictions ({len(markets)}; "
                          f"{len(quiet)} more settled with none)", show_lines=False)
    for col, just in (("post", "left"), ("F", "right"), ("pool", "right"),
                      ("paid", "right"), ("returned", "right"), ("revealed/commits", "right"),
                      ("winners", "left")):
        summary.add_column(col, justify=just, overflow="fold")
    for m in markets:
        preds = m["predictions"]
        winners = sorted((p for p in preds if p["reward"]), key=lambda p: -p["reward"])
        summary.add_row(
            f"@{m['author']}/{m['permlink'][:40]}", format_milli(m["final_payout"]),
            format_milli(m["pool"]), format_milli(m["pool"] - m["returned"]),
            format_milli(m["returned"] + m["underdog_returned"]),
            f"{sum(p['revealed'] for p in preds)}/{len(preds)}",
            ", ".join(f"{p['predictor']} {format_milli(p['reward'])}" for p in winners[:3])
            + (" …" if len(winners) > 3 else ""))
    console.print(summary)
    if detail:
        for m in markets:
            _market_detail(m, console)
    if doc["curators"]:
        cur = Table(title="Curators")
        for col in ("curator", "earned", "predictions", "hits", "rewarded", "open"):
            cur.add_column(col, justify="left" if col == "curator" else "right")
        for c in doc["curators"]:
            cur.add_row(c["curator"], format_milli(c["earned"]), str(c["predictions"]),
                        str(c["hits"]), str(c["rewarded"]), str(c["open_commits"]))
        console.print(cur)
    rej = doc["rejections"]
    if rej:
        table = Table(title=f"Rejected ops ({sum(rej.values())})")
        table.add_column("reason")
        table.add_column("count", justify="right")
        for reason, n in rej.items():
            table.add_row(reason, str(n))
        console.print(table)


def _market_detail(m: dict, console: Console) -> None:
    table = Table(title=f"@{m['author']}/{m['permlink']} — F {format_milli(m['final_payout'])}, "
                        f"pool {format_milli(m['pool'])} ({m['curation_fraction']} of F)",
                  show_lines=True)
    for col in ("predictor", "prediction", "block", "reward", "why"):
        table.add_column(col, overflow="fold", justify="right" if col == "reward" else "left")
    for p in m["predictions"]:
        pred = "—" if p["prediction"] is None else format_milli(p["prediction"])
        table.add_row(p["predictor"], pred, str(p["commit_block"]), format_milli(p["reward"]),
                      explain(p, m))
    console.print(table)
