"""curation-market: a prediction market for curation on Steem and Hive. Replay history or
follow a node, settle, report, compare rule sets, serve the reports; curator tooling."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import create_engine, select

from curation.chains import STEEM_CHAIN_ID
from curation.commitment import commitment, new_salt
from curation.payload import ACCOUNT_RE, PERMLINK_RE, format_milli, parse_milli
from curation_market.cli import curator as cli_client
from curation_market.cli import lab as cli_eval
from curation_market.cli import node as cli_node
from curation_market.cli import serve as cli_api
from curation_market.cli.options import ConfigOpt, DbOpt
from curation_market.config import ConfigError, Settings, load_settings
from curation_market.curator import salts
from curation_market.curator.ops import bid_milli, commit_payload, custom_json_op, reveal_payload
from curation_market.report.build import (
    build_report,
    build_staked_report,
    parse_post_ref,
    print_staked,
    to_json,
)
from curation_market.report.render import print_report
from indexer import schema as t
from indexer.accounts import read_accounts, read_globals_at
from indexer.blockfile import TRUNCATED, BadLine, open_text, read_blocks, write_blocks
from indexer.ingest import Ingester, Stats
from indexer.postdump import Anchor, Events, Payout, Refusal, assemble, post_events
from indexer.store import Store

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
prepare_app = typer.Typer(help="Print the custom_json op a curator broadcasts.",
                          no_args_is_help=True)
app.add_typer(prepare_app, name="prepare")
err = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"curation-market {version('curation-market')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            typer.echo("curation-market (not installed: no version recorded)")
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="print the version and exit")] = False,
    log_level: Annotated[str, typer.Option(
        "--log-level", help="our messages from this level: debug | info | warning | error",
        case_sensitive=False)] = "info",
    verbose: Annotated[int, typer.Option(
        "--verbose", "-v", count=True,
        help="-v: also the libraries' warnings (beem's retries, uvicorn); -vv: debug of "
             "everything")] = 0,
) -> None:
    """Options that come before the command: ``curation-market -v run …``."""
    from curation_market import logs

    if log_level.lower() not in logs.LEVELS:
        raise fail(f"--log-level must be one of {', '.join(logs.LEVELS)} (got {log_level!r})")
    logs.setup(log_level.lower(), verbose)


def out_console() -> Console:
    """Wide enough for the report's tables even when piped into a file."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=140)



def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr (one line, so it can be grepped) for ``raise``.

    The message is plain text: brackets in it (``[node] urls``) are shown, not read as markup.
    Exit code 2 is a problem with what was asked (options, config, files, database); 1 is a
    failure while running (a node that stopped answering): retrying later may succeed.
    """
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def check_format(fmt: str, *choices: str) -> None:
    if fmt not in choices:
        raise fail(f"--format must be one of {', '.join(choices)} (got {fmt!r})")


def settings_from(path: Path | None) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def safe_url(url: str) -> str:
    """The database URL as shown in messages: never its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL at all: nothing to hide
        return url


def open_store(settings: Settings, db: str | None, writes_chain: bool = False) -> Store:
    """``writes_chain``: the caller writes blocks with the configured (or named) chain's id
    (replay), so the database must be of that chain. Otherwise only a configured
    ``chain.chain_id`` is checked: readers and the daemon take the database's (the daemon
    then checks it against its node)."""
    url = db or settings.ingest.db
    cfg = settings.market_config()
    chain_id = settings.chain.id if writes_chain else settings.chain.chain_id
    try:
        return Store(create_engine(url), chain_id, cfg.rules.label)
    except ValueError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a bad URL or unreachable server, said plainly
        raise fail(f"cannot open database {safe_url(url)!r}: {exc}") from None


@contextmanager
def progress_bar(label: str, files: Iterable[Path] = (),
                 console: Console | None = None) -> Iterator[callable]:
    """A bar on stderr while blocks are read. When every input is a regular file their sizes
    are known, so the bar shows the share of bytes read and the time left; a pipe or stdin
    keeps the open-ended bar (blocks, ops, ops/s)."""
    console = console or err
    position = FilePosition(list(files))
    columns = [TextColumn("[bold]{task.description}"), BarColumn(bar_width=None)]
    if position.total:
        columns.append(TaskProgressColumn())
    columns.append(TextColumn("block {task.fields[block]:,} · {task.fields[ops]:,} ops · "
                              "{task.fields[rate]:,.0f} ops/s"))
    columns += [TimeElapsedColumn()] + ([TimeRemainingColumn()] if position.total else [])
    with Progress(*columns, console=console, transient=True,
                  disable=not console.is_terminal) as bar:
        task = bar.add_task(label, total=position.total, block=0, ops=0, rate=0.0)

        def update(stats: Stats) -> None:
            done = position.read() if position.total else None
            bar.update(task, block=stats.last_block, ops=stats.ops, rate=stats.ops_per_second,
                       **({"completed": done} if done is not None else {}))

        yield update


class FilePosition:
    """How many bytes of a list of regular files this process has read, from the kernel's
    offset of the file's open descriptor (``/proc/self/fdinfo``): the reader opens the files
    itself, and the offset costs nothing per block. For a .gz file it is the compressed
    offset, against the compressed size. ``total`` is None when a position cannot be known
    (a pipe, stdin, a FIFO, or no /proc)."""

    def __init__(self, files: list[Path]):
        import stat

        self.files: list[tuple[str, int]] = []
        self.total: int | None = None
        if not files or not Path("/proc/self/fdinfo").is_dir():
            return
        for f in files:
            try:
                st = f.stat() if str(f) != "-" else None
            except OSError:
                return
            if st is None or not stat.S_ISREG(st.st_mode):
                return
            self.files.append((str(f.resolve()), st.st_size))
        self.total = sum(size for _, size in self.files) or None
        self._done = 0  # bytes of the files before the one being read
        self._index = 0

    def read(self) -> int:
        import os

        open_at: dict[str, int] = {}
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if any(target == name for name, _ in self.files[self._index:]):
                try:
                    with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as fh:
                        pos = next(int(x.split()[1]) for x in fh if x.startswith("pos:"))
                except (OSError, StopIteration, ValueError):
                    continue
                open_at[target] = max(pos, open_at.get(target, 0))
        for i in range(self._index, len(self.files)):
            name, size = self.files[i]
            if name in open_at:  # the file being read; every one before it is done
                self._done += sum(s for _, s in self.files[self._index:i])
                self._index = i
                return self._done + min(open_at[name], size)
        return self._done


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


@app.command()
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
                        keep_rows=True)
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


@app.command("import-posts")
def import_posts_cmd(
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
                except (ValueError, KeyError, TypeError) as exc:
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


@app.command()
def report(
    db: DbOpt = None,
    config: ConfigOpt = None,
    post: Annotated[str | None, typer.Option(help="only @author/permlink")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Settled markets, every factor of every reward, curator totals, rejected ops."""
    check_format(fmt, "table", "json")
    settings = settings_from(config)
    store = open_store(settings, db)
    try:
        ref = parse_post_ref(post) if post else None
    except ValueError as exc:
        raise fail(str(exc)) from None
    doc = build_report(store.engine, ref)
    if ref and not doc["markets"]:
        raise fail(f"no settled market for @{ref[0]}/{ref[1]} as of block {doc['as_of_block']:,}")
    staked = settings.staked_rules()
    if staked and not ref:  # a staked rule set judges every settled market together
        doc["staked"] = build_staked_report(store.engine, *staked)
    if fmt == "json":
        sys.stdout.buffer.write(to_json(doc))
    else:
        print_report(doc, out_console(), detail=ref is not None)
        if "staked" in doc:
            print_staked(doc["staked"], out_console())


@app.command()
def rejections(
    db: DbOpt = None,
    config: ConfigOpt = None,
    reason: Annotated[str | None, typer.Option(help="only this reason")] = None,
    account: Annotated[str | None, typer.Option(help="only this account")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
) -> None:
    """List rejected ops with their position and reason (JSON lines)."""
    store = open_store(settings_from(config), db)
    r = t.rejections
    q = select(r).order_by(r.c.block, r.c.trx, r.c.op, r.c.sub).limit(limit)
    if reason:
        q = q.where(r.c.reason == reason)
    if account:
        q = q.where(r.c.account == account)
    with store.engine.connect() as conn:
        for row in conn.execute(q).mappings():
            sys.stdout.buffer.write(orjson.dumps({str(k): v for k, v in row.items()}) + b"\n")


def _check_post(author: str, permlink: str, predictor: str) -> None:
    for what, value, rx in (("--author", author, ACCOUNT_RE), ("--predictor", predictor,
                                                               ACCOUNT_RE),
                            ("--permlink", permlink, PERMLINK_RE)):
        if not rx.fullmatch(value):
            raise fail(f"{what} {value!r} is not a valid name")


def _milli(value: str, what: str) -> int:
    milli = parse_milli(value)
    if milli is None:
        raise fail(f"{what} must be a decimal amount like 12.345, got {value!r}")
    return milli


def _salt(hex_salt: str | None) -> bytes:
    if hex_salt is None:
        return new_salt()
    try:
        salt = bytes.fromhex(hex_salt)
    except ValueError:
        salt = b""
    if len(salt) != 32:
        raise fail("--salt must be 32 bytes written as 64 hex characters")
    return salt


Author = Annotated[str, typer.Option(help="post author")]
Permlink = Annotated[str, typer.Option(help="post permlink")]
Predictor = Annotated[str, typer.Option(help="your account (the signer)")]
ChainId = Annotated[str | None, typer.Option(
    help="64-hex chain id (default: Steem's, 64 zeros; Hive's is beeab0de + 56 zeros)")]
SaltFile = Annotated[Path, typer.Option(help="where salts wait for the reveal")]
StakeOpt = Annotated[str | None, typer.Option(
    help="stake for the staked rule sets, e.g. 10.000 (bound by the commitment)")]
BidOpt = Annotated[str | None, typer.Option(
    help="bid in 0..1 for the staked rule sets, e.g. 0.6 (bound by the commitment)")]


def stake_and_bid(stake: str | None, bid: str | None) -> tuple[int | None, int | None]:
    """--stake/--bid → (milli-units, thousandths), refusing malformed values by name.

    Shared with ``commit``/``reveal`` (cli_client) so both check before anything is built."""
    stake_milli = None if stake is None else parse_milli(stake)
    if stake is not None and stake_milli is None:
        raise fail(f"--stake: expected a decimal amount like 10.000, got {stake!r}")
    try:
        return stake_milli, bid_milli(bid)
    except ValueError:
        raise fail(f"--bid: expected a decimal between 0 and 1, like 0.600, got {bid!r}") \
            from None


@app.command("commitment")
def commitment_cmd(author: Author, permlink: Permlink, predictor: Predictor,
                   prediction: Annotated[str, typer.Option(help="e.g. 12.345")],
                   salt: Annotated[str | None, typer.Option(help="64 hex; fresh if omitted")]
                   = None,
                   chain_id: ChainId = None, stake: StakeOpt = None, bid: BidOpt = None) -> None:
    """Print the commitment for a prediction (and the salt, when a fresh one was drawn)."""
    _check_post(author, permlink, predictor)
    milli = _milli(prediction, "--prediction")
    stake_milli, bid_thousandths = stake_and_bid(stake, bid)
    salt_bytes = _salt(salt)
    cid = chain_id or STEEM_CHAIN_ID
    typer.echo(commitment(cid, author, permlink, predictor, milli, salt_bytes, stake_milli,
                          bid_thousandths))
    if salt is None:
        typer.echo(f"salt {salt_bytes.hex()}")


@prepare_app.command("commit")
def prepare_commit(author: Author, permlink: Permlink, predictor: Predictor,
                   prediction: Annotated[str, typer.Option(help="e.g. 12.345")],
                   config: ConfigOpt = None, salt_file: SaltFile = salts.DEFAULT_PATH,
                   stake: StakeOpt = None, bid: BidOpt = None,
                   replace: Annotated[bool, typer.Option(
                       "--replace", help="commit again on a post that already has a stored "
                       "salt (the old salt stays in the file, marked replaced)")] = False,
                   ) -> None:
    """Draw a salt, store it locally, print the commit op."""
    settings = settings_from(config)
    _check_post(author, permlink, predictor)
    milli = _milli(prediction, "--prediction")
    stake_milli, bid_thousandths = stake_and_bid(stake, bid)
    salt = new_salt()
    cid = settings.chain.id
    try:
        salts.remember(salt_file, cid, author, permlink, predictor, milli, salt, stake_milli,
                       bid_thousandths, replace=replace)
    except salts.SaltExists as exc:
        raise fail(str(exc)) from None
    payload = commit_payload(cid, author, permlink, predictor, milli, salt, stake_milli,
                             None if bid_thousandths is None else bid_thousandths / 1000)
    typer.echo(orjson.dumps(custom_json_op(settings.market.custom_json_id, predictor, payload)))
    err.print(f"salt stored in {salt_file}; reveal after the {settings.market.window_seconds}s "
              "window with: curation-market prepare reveal")


@prepare_app.command("reveal")
def prepare_reveal(author: Author, permlink: Permlink, predictor: Predictor,
                   config: ConfigOpt = None, salt_file: SaltFile = salts.DEFAULT_PATH,
                   commitment_hex: Annotated[str | None, typer.Option(
                       "--commitment", help="reveal the stored commit with this commitment "
                       "(the one on chain), also a replaced one")] = None) -> None:
    """Print the reveal op for a stored commit."""
    settings = settings_from(config)
    _check_post(author, permlink, predictor)
    stored = salts.recall(salt_file, settings.chain.id, author, permlink, predictor,
                          commitment_hex)
    if stored is None:
        which = f" with commitment {commitment_hex}" if commitment_hex else ""
        raise fail(f"no stored salt for {predictor} on @{author}/{permlink}{which} in "
                   f"{salt_file}")
    older = salts.replaced(salt_file, settings.chain.id, author, permlink, predictor)
    if older and commitment_hex is None:
        listed = ", ".join(e.get("commitment", "?") for e in older)
        err.print(f"note: this reveals the latest commit; {len(older)} replaced one(s) are "
                  f"kept in {salt_file}. If the commit on chain is one of those, reveal it "
                  f"with --commitment (replaced: {listed})", soft_wrap=True, highlight=False)
    milli, salt, stake, bid = stored
    payload = reveal_payload(author, permlink, milli, salt, stake,
                             None if bid is None else bid / 1000)
    typer.echo(orjson.dumps(custom_json_op(settings.market.custom_json_id, predictor, payload)))
    err.print(f"reveals {format_milli(milli)}")


@app.command()
def demo(
    db: Annotated[str, typer.Option(help="SQLAlchemy URL")] = "sqlite:///demo.db",
    out: Annotated[Path, typer.Option(help="where the demo's block file goes")]
    = Path("demo-blocks.jsonl.gz"),
    seed: Annotated[int, typer.Option(help="simulation seed")] = 17,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Replay the bundled real block-17M posts with simulated curators, then report."""
    from curation_market.lab.demo import run_demo

    check_format(fmt, "table", "json")
    doc = run_demo(db, out, seed, err)
    if fmt == "json":
        sys.stdout.buffer.write(to_json(doc))
    else:
        print_report(doc, out_console(), detail=False)
        err.print(f"next: curation-market report --db {db} --format json   (every factor)\n"
                  f"      curation-market serve --db {db}   (the page, http://127.0.0.1:8000/)",
                  soft_wrap=True, highlight=False)


def data_path(name: str) -> Path:
    return Path(str(resources.files("curation_market") / "data" / name))


for _area in (cli_node, cli_client, cli_eval, cli_api):
    _area.register(app)

if __name__ == "__main__":  # pragma: no cover
    app()
