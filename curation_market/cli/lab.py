"""``curation-market evaluate`` (rule sets compared on real history with simulated curators)
and ``demo`` (the bundled real posts replayed, then reported)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from curation_market.cli.common import FormatOpt, check_format, err, out_console


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command()(evaluate)
    app.command()(demo)


def evaluate(
    config: Annotated[Path | None, typer.Option(help="evaluation config (examples/eval.toml)")]
    = None,
    out: Annotated[Path, typer.Option(help="directory for report.md, report.html, PNGs")]
    = Path("eval-report"),
    workers: Annotated[int | None, typer.Option(help="processes (default: config, else cores)")]
    = None,
) -> None:
    """Replay real history with simulated curators under every rule set; write the report."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from curation_market.config import ConfigError
    from curation_market.lab.evaluate import evaluate as run
    from curation_market.lab.evaluate import load_eval_config, write_report

    try:
        cfg = load_eval_config(config)
    except ConfigError as exc:
        err.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from None
    start = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err) as progress:
        total = len(dict.fromkeys(cfg.evaluate.variants)) * cfg.evaluate.runs
        task = progress.add_task("rule sets × runs", total=total)

        def step(label: str, n: int) -> None:
            progress.update(task, advance=n, description=f"done {label[:60]}")

        ev = run(cfg, workers, step)
    files = write_report(ev, out)
    err.print(f"evaluate: {len(ev.results)} rule sets × {cfg.evaluate.runs} runs, "
              f"{ev.markets} markets, "
              f"{len(ev.agents)} agents in {time.perf_counter() - start:.1f}s")
    for f in files:
        sys.stdout.write(f"{f}\n")


def demo(
    db: Annotated[str, typer.Option(help="SQLAlchemy URL")] = "sqlite:///demo.db",
    out: Annotated[Path, typer.Option(help="where the demo's block file goes")]
    = Path("demo-blocks.jsonl.gz"),
    seed: Annotated[int, typer.Option(help="simulation seed")] = 17,
    fmt: FormatOpt = "table",
) -> None:
    """Replay the bundled real block-17M posts with simulated curators, then report."""
    from curation_market.lab.demo import run_demo
    from curation_market.report.build import to_json
    from curation_market.report.render import print_report

    check_format(fmt, "table", "json")
    doc = run_demo(db, out, seed, err)
    if fmt == "json":
        sys.stdout.buffer.write(to_json(doc))
    else:
        print_report(doc, out_console(), detail=False)
        err.print(f"next: curation-market report --db {db} --format json   (every factor)\n"
                  f"      curation-market serve --db {db}   (the page, http://127.0.0.1:8000/)",
                  soft_wrap=True, highlight=False)
