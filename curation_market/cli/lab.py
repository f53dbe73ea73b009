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
    app.command()(fetch)


def evaluate(
    config: Annotated[Path | None, typer.Option(help="evaluation config (examples/eval.toml)")]
    = None,
    out: Annotated[Path, typer.Option(help="directory for report.md, report.html, PNGs")]
    = Path("eval-report"),
    workers: Annotated[int | None, typer.Option(help="processes (default: config, else cores)")]
    = None,
    history: Annotated[list[Path] | None, typer.Option(
        help="block files (either encoding), post dumps or a fetch archive directory "
             "(repeatable; default: the bundled block-17M slice)")] = None,
    accounts: Annotated[list[Path] | None, typer.Option(
        help="account snapshot(s) for --history (JSON lines of get_accounts)")] = None,
    globals_path: Annotated[Path | None, typer.Option(
        "--globals", help="dynamic global properties (JSON) for --history: VESTS→SP")] = None,
    chain: Annotated[str | None, typer.Option(
        help="steem | hive: the chain of --history files (an archive's manifest says it)")]
    = None,
    cache: Annotated[Path, typer.Option(
        help="where --history is kept decoded (parsed once, reused by every run)")]
    = Path(".cache/curation-market"),
    cluster: Annotated[str | None, typer.Option(
        help="Dask scheduler address (tcp://host:8786); default: a local cluster of "
             "--workers processes")] = None,
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
    spec = None
    if history:
        spec = _history_spec(history, accounts or [], globals_path, chain, cache)
    elif accounts or globals_path or chain:
        err.print("[red]--accounts, --globals and --chain go with --history[/red]")
        raise typer.Exit(2)
    start = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err) as progress:
        total = len(dict.fromkeys(cfg.evaluate.variants)) * cfg.evaluate.runs
        task = progress.add_task("rule sets × runs", total=total)

        def step(label: str, n: int) -> None:
            progress.update(task, advance=n, description=f"done {label[:60]}")

        try:
            ev = run(cfg, workers, step, spec, cluster)
        except ValueError as exc:  # unreadable history: said, not a traceback
            err.print(f"[red]evaluate:[/red] {exc}")
            raise typer.Exit(1) from None
    files = write_report(ev, out)
    err.print(f"evaluate: {len(ev.results)} rule sets × {cfg.evaluate.runs} runs, "
              f"{ev.markets} markets, "
              f"{len(ev.agents)} agents in {time.perf_counter() - start:.1f}s")
    for f in files:
        sys.stdout.write(f"{f}\n")


def _history_spec(history: list[Path], accounts: list[Path], globals_path: Path | None,
                  chain: str | None, cache: Path) -> object:
    from curation_market.lab.fetch import MANIFEST, Archive, FetchError
    from curation_market.lab.runner import HistorySpec

    chains = set()
    for p in history:
        if not p.exists():
            err.print(f"[red]--history {p}: no such file or directory[/red]")
            raise typer.Exit(2)
        if p.is_dir() and (p / MANIFEST).exists():
            try:
                chains.add(Archive.load(p / MANIFEST).chain)
            except FetchError as exc:
                err.print(f"[red]{exc}[/red]")
                raise typer.Exit(2) from None
    if chain is not None:
        if chain not in ("steem", "hive"):
            err.print(f"[red]--chain must be steem or hive (got {chain!r})[/red]")
            raise typer.Exit(2)
        if chains - {chain}:
            err.print(f"[red]--chain {chain} but the archive is of {', '.join(chains)}[/red]")
            raise typer.Exit(2)
    elif len(chains) > 1:
        err.print(f"[red]the archives are of different chains: {', '.join(sorted(chains))}"
                  "[/red]")
        raise typer.Exit(2)
    name = chain or (chains.pop() if chains else "steem")
    return HistorySpec(tuple(str(p) for p in history), str(cache), name,
                       tuple(str(a) for a in accounts),
                       str(globals_path) if globals_path else None)


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


def fetch(
    node: Annotated[list[str], typer.Option(help="node URL (repeat for failover)")],
    from_block: Annotated[int, typer.Option("--from", help="first block")],
    out: Annotated[Path, typer.Option(help="archive directory (manifest.json + chunks)")],
    to_block: Annotated[int | None, typer.Option(
        "--to", help="last block (default: the node's last irreversible block)")] = None,
    chunk_blocks: Annotated[int, typer.Option(help="blocks per chunk file")] = 10_000,
    batch_blocks: Annotated[int, typer.Option(help="blocks per node request batch")] = 100,
    timeout: Annotated[float, typer.Option(help="seconds per node request")] = 30.0,
) -> None:
    """Archive a node's blocks and virtual ops as block files for ``evaluate --history``;
    run it again with the same options to continue an interrupted fetch."""
    from curation_market.lab.fetch import FetchError
    from curation_market.lab.fetch import fetch as run
    from curation_market.progress import BatchLog
    from indexer.chain import ChainError, NodeClient
    from indexer.ingest import Stats

    if chunk_blocks < 1 or batch_blocks < 1:
        err.print("[red]--chunk-blocks and --batch-blocks must be ≥ 1[/red]")
        raise typer.Exit(2)
    log = BatchLog()
    target: list[int] = []

    def step(blocks: int, ops: int, last: int, seconds: float) -> None:
        log(Stats(blocks=blocks, ops=ops, seconds=seconds, last_block=last),
            target[0] if target else None)

    client = NodeClient(node, timeout=timeout)
    try:
        target.append(to_block if to_block is not None else client.state().irreversible)
        archive = run(client, out, from_block, target[0], chunk_blocks, batch_blocks, step)
    except (FetchError, ChainError) as exc:
        log.close()
        err.print(f"[red]fetch:[/red] {exc}")
        raise typer.Exit(1) from None
    log.close()
    err.print(f"fetch: blocks {archive.first:,}..{archive.last:,} of {archive.chain} in "
              f"{len(archive.chunks)} chunk(s), {sum(c.ops for c in archive.chunks):,} ops "
              f"→ {out}")
    sys.stdout.write(f"{out}\n")
