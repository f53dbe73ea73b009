"""Subcommands of ``curation-market`` for this area, registered by
:mod:`curation_market.cli.main`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command()(evaluate)


def evaluate(
    config: Annotated[Path | None, typer.Option(help="evaluation config (examples/eval.toml)")]
    = None,
    out: Annotated[Path, typer.Option(help="directory for report.md, report.html, PNGs")]
    = Path("eval-report"),
    workers: Annotated[int | None, typer.Option(help="processes (default: config, else cores)")]
    = None,
) -> None:
    """Replay real history with simulated curators under every rule set; write the report."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from curation_market.config import ConfigError
    from curation_market.lab.evaluate import evaluate as run
    from curation_market.lab.evaluate import load_eval_config, write_report

    err = Console(stderr=True)
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
