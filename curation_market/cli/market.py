"""``curation-market replay``, ``import-posts``, ``report`` and ``rejections``: history into
the database, post dumps into block files, and what the database holds back out.

``replay`` writes (a :class:`~indexer.store.Store`, which migrates the schema); ``report``
and ``rejections`` only read, on a read-only connection (:func:`.common.open_reader`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.markup import escape

from curation_market.cli.common import (
    ConfigOpt,
    DbOpt,
    FormatOpt,
    check_format,
    err,
    fail,
    open_reader,
    open_store,
    out_console,
    progress_bar,
    settings_from,
)
from curation_market.report.build import (
    build_report,
    build_staked_report,
    parse_post_ref,
    print_staked,
    to_json,
)
from curation_market.report.render import print_report
from indexer.accounts import read_accounts, read_globals_at
from indexer.blockfile import TRUNCATED, BadLine, open_text, read_blocks, write_blocks
from indexer.ingest import Ingester
from indexer.postdump import Anchor, Events, Payout, Refusal, assemble, post_events
from indexer.readmodel import rejection_rows
from indexer.store import Store


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command()(replay)
    app.command("import-posts")(import_posts)
    app.command()(report)
    app.command()(rejections)


def load_snapshots(store: Store, accounts: list[Path], globals_file: Path | None) -> None:
    if globals_file:
        try:
            block, fund, shares = read_globals_at(globals_file)
            store.set_globals(fund, shares)
            store.add_globals(block, fund, shares)  # one point of the price history
        except (OSError, ValueError, KeyError) as exc:
            raise fail(f"--globals {globals_file}: {exc}") from None
    if accounts:
        problems: list[str] = []
        try:
            n = store.add_account_snapshot(read_accounts(accounts, problems))
        except OSError as exc:
            raise fail(f"--accounts: {exc}") from None
        err.print(f"accounts: {n} read" + (f", {len(problems)} unreadable" if problems else ""))
        for p in problems[:5]:
            err.print(f"  [yellow]skipped[/yellow] {p}")


def replay(
    files: Annotated[list[Path], typer.Argument(
        help="JSON-lines block files (.gz accepted; a pipe, FIFO or - for stdin too)",
        dir_okay=False)],
    accounts: Annotated[list[Path] | None, typer.Option(
        "--accounts", help="get_accounts objects, one per line (.gz accepted)",
        exists=True)] = None,
    globals_file: Annotated[Path | None, typer.Option(
        "--globals", help="dynamic global properties JSON (.gz accepted): the VESTS price "
        "at its head_block_number", exists=True)] = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Replay block files through the market into the database (resumable, idempotent)."""
    settings = settings_from(config)
    store = open_store(settings, db, writes_chain=True)
    load_snapshots(store, accounts or [], globals_file)
    # the only writer while it runs: rows are kept between batches (indexer.store.Kept)
    ingester = Ingester(store, settings.market_config(), settings.ingest.batch_blocks,
                        keep_rows=True, reversible_blocks=settings.ingest.reversible_blocks)
    start = ingester.checkpoint
    missing = [f for f in files if str(f) != "-" and not f.exists()]
    if missing:
        raise fail(f"no such block file: {missing[0]}")
    bad: list[BadLine] = []
    with progress_bar("replay", files) as update:
        stats = ingester.run(told(read_blocks(files, ingester.adapter), bad), progress=update)
    for line in bad[:5]:
        err.print(f"  [yellow]bad line[/yellow] {escape(line.source)}:{line.line_no}: "
                  f"{escape(line.reason)}")
    err.print(f"replayed {stats.blocks:,} blocks ({stats.ops:,} ops) in {stats.seconds:.2f}s "
              f"— {stats.ops_per_second:,.0f} ops/s; checkpoint {start:,} → {stats.last_block:,}"
              + (f"; {stats.skipped:,} already ingested" if stats.skipped else "")
              + (f"; {stats.bad_lines:,} bad lines recorded" if stats.bad_lines else ""))
    cut = [b for b in bad if b.reason.startswith(TRUNCATED)]
    if cut:
        raise fail(f"{cut[0].source}:{cut[0].line_no}: {cut[0].reason}; the blocks before it "
                   "are committed, a rerun with the whole file resumes there")


def told(source: Iterator[dict | BadLine], bad: list[BadLine]) -> Iterator[dict | BadLine]:
    """Pass blocks on, keeping the bad lines to name them to the operator afterwards."""
    for item in source:
        if isinstance(item, BadLine):
            bad.append(item)
        yield item


def import_posts(
    posts: Annotated[list[Path], typer.Argument(help="post objects (get_content, find_comments, "
                                                "hivemind bridge/condenser), one per line",
                                                exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="block file to write (.gz ok)")],
    anchor_block: Annotated[int, typer.Option(help="a block number of the dump's chain")]
    = 17_000_000,
    anchor_time: Annotated[str, typer.Option(help="that block's timestamp")]
    = "2017-11-07T01:25:09",
    settle_pending: Annotated[bool, typer.Option(
        help="also pay out pending posts at cashout_time with their pending value "
             "(an estimate, not chain history)")] = False,
    beneficiaries_included: Annotated[bool, typer.Option(
        help="the dump's payout fields already contain the beneficiaries' part (hivemind "
             "since HAF); otherwise paid posts with beneficiaries and no "
             "beneficiary_payout_value are refused")] = False,
    refused_out: Annotated[Path | None, typer.Option(
        "--refused", help="write every refused post (file:line: reason) to this file")] = None,
) -> None:
    """Rebuild the op stream of a post dump as a block file (same pipeline as node blocks)."""
    anchor = Anchor.of(anchor_block, anchor_time)
    events = Events.empty()
    refused: list[str] = []
    count = paid = pending = 0
    for path in posts:
        with open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    post = orjson.loads(line)
                    if not isinstance(post, dict):
                        raise ValueError("not a JSON object")
                    settled = post_events(post, anchor, events, settle_pending,
                                          beneficiaries_included)
                except KeyError as exc:  # a field every post has is missing
                    refused.append(f"{where}: unreadable post: no field {exc!s:.60}")
                    continue
                except (ValueError, TypeError) as exc:
                    refused.append(f"{where}: unreadable post: {exc!s:.120}")
                    continue
                if isinstance(settled, Refusal):
                    refused.append(settled.message(post, where))
                    continue
                count += 1
                paid += isinstance(settled, Payout)
                pending += settled is None
    n = write_blocks(assemble(events, anchor), out)
    err.print(f"wrote {n:,} blocks from {count:,} posts to {out}: {paid:,} settle"
              + (" (pending ones at their estimate)" if settle_pending else "")
              + f", {pending:,} stay unsettled (not paid in the dump)"
              + f", {len(refused):,} refused")
    for msg in refused[:20]:
        err.print(f"  refused {msg}", markup=False, highlight=False)
    if len(refused) > 20:
        err.print(f"  … {len(refused) - 20:,} more" + (f" in {refused_out}" if refused_out
                                                       else " (--refused FILE lists all)"))
    if refused_out is not None:
        refused_out.write_text("".join(m + "\n" for m in refused))


def report(
    db: DbOpt = None,
    config: ConfigOpt = None,
    post: Annotated[str | None, typer.Option(help="only @author/permlink")] = None,
    fmt: FormatOpt = "table",
) -> None:
    """Settled markets, every factor of every reward, curator totals, rejected ops."""
    check_format(fmt, "table", "json")
    settings = settings_from(config)
    try:
        ref = parse_post_ref(post) if post else None
    except ValueError as exc:
        raise fail(str(exc)) from None
    engine = open_reader(settings, db)
    doc = build_report(engine, ref)
    if ref and not doc["markets"]:
        raise fail(f"no settled market for @{ref[0]}/{ref[1]} as of block {doc['as_of_block']:,}")
    staked = settings.staked_rules()
    if staked and not ref:  # a staked rule set judges every settled market together
        doc["staked"] = build_staked_report(engine, *staked)
    if fmt == "json":
        sys.stdout.buffer.write(to_json(doc))
    else:
        print_report(doc, out_console(), detail=ref is not None)
        if "staked" in doc:
            print_staked(doc["staked"], out_console())


def rejections(
    db: DbOpt = None,
    config: ConfigOpt = None,
    reason: Annotated[str | None, typer.Option(help="only this reason")] = None,
    account: Annotated[str | None, typer.Option(help="only this account")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
) -> None:
    """List rejected ops with their position and reason (JSON lines)."""
    engine = open_reader(settings_from(config), db)
    with engine.connect() as conn:
        for row in rejection_rows(conn, reason, account, limit):
            sys.stdout.buffer.write(orjson.dumps({str(k): v for k, v in row.items()}) + b"\n")
