"""The curator's commands: ``commitment`` and ``prepare commit``/``prepare reveal`` (print
what to broadcast, the salt kept locally), ``commit``/``reveal`` (sign with a posting key and
broadcast with beem).

The key comes from ``$CURATION_POSTING_KEY`` or ``--key-file`` (never an option value); see
:mod:`curation_market.curator.client` for the rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from curation.chains import STEEM_CHAIN_ID
from curation.chaintime import format_time
from curation.commitment import commitment, new_salt
from curation.payload import ACCOUNT_RE, PERMLINK_RE, format_milli, parse_milli
from curation_market.cli.common import (
    ConfigOpt,
    err,
    fail,
    settings_from,
    stake_and_bid,
)
from curation_market.cli.common import NodesOpt as Node
from curation_market.curator import salts
from curation_market.curator.client import ClientError, Curator, connect, read_key
from curation_market.curator.ops import commit_payload, custom_json_op, reveal_payload

prepare_app = typer.Typer(help="Print the custom_json op a curator broadcasts.",
                          no_args_is_help=True)

Author = Annotated[str, typer.Option(help="post author")]
Permlink = Annotated[str, typer.Option(help="post permlink")]
Predictor = Annotated[str, typer.Option(help="your account (the signer)")]
Account = Annotated[str | None, typer.Option(
    help="your account (default: the account the node finds for your key)")]
ChainId = Annotated[str | None, typer.Option(
    help="64-hex chain id (default: Steem's, 64 zeros; Hive's is beeab0de + 56 zeros)")]
KeyFile = Annotated[Path | None, typer.Option(
    help="file holding the posting key (WIF); default: $CURATION_POSTING_KEY")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="print the signed transaction, "
                                      "send nothing, store nothing")]
SaltFile = Annotated[Path, typer.Option(help="where salts wait for the reveal")]
Config = Annotated[Path | None, typer.Option(
    "--config", "-c", help="config.toml (market id, node.urls; defaults if omitted)")]
Stake = Annotated[str | None, typer.Option(
    help="stake for the staked rule sets, e.g. 10.000 (bound by the commitment)")]
Bid = Annotated[str | None, typer.Option(
    help="bid between 0 and 1 for the staked rule sets, e.g. 0.600 (bound by the commitment)")]
Replace = Annotated[bool, typer.Option(
    "--replace", help="commit again on a post that already has a stored salt (the old salt "
                      "stays in the file, marked replaced)")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("commitment")(commitment_cmd)
    app.command("commit")(commit)
    app.command("reveal")(reveal)
    app.command("curator")(curator_cmd)
    prepare_app.command("commit")(prepare_commit)
    prepare_app.command("reveal")(prepare_reveal)
    app.add_typer(prepare_app, name="prepare")


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


def commitment_cmd(author: Author, permlink: Permlink, predictor: Predictor,
                   prediction: Annotated[str, typer.Option(help="e.g. 12.345")],
                   salt: Annotated[str | None, typer.Option(help="64 hex; fresh if omitted")]
                   = None,
                   chain_id: ChainId = None, stake: Stake = None, bid: Bid = None) -> None:
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


def prepare_commit(author: Author, permlink: Permlink, predictor: Predictor,
                   prediction: Annotated[str, typer.Option(help="e.g. 12.345")],
                   config: ConfigOpt = None, salt_file: SaltFile = salts.DEFAULT_PATH,
                   stake: Stake = None, bid: Bid = None, replace: Replace = False) -> None:
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
                             bid_thousandths)
    typer.echo(orjson.dumps(custom_json_op(settings.market.custom_json_id, predictor, payload)))
    err.print(f"salt stored in {salt_file}; reveal after the {settings.market.window_seconds}s "
              "window with: curation-market prepare reveal")


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
    payload = reveal_payload(author, permlink, milli, salt, stake, bid)
    typer.echo(orjson.dumps(custom_json_op(settings.market.custom_json_id, predictor, payload)))
    err.print(f"reveals {format_milli(milli)}")


def _curator(node: list[str] | None, account: str | None, key_file: Path | None,
             dry_run: bool, salt_file: Path, config: Path | None) -> Curator:
    settings = settings_from(config)
    urls = node or settings.node.urls
    if not urls:
        where = f"in {config}" if config else "(no --config given)"
        raise fail(f"no node: give --node URL or set [node] urls in the config {where}")
    try:
        wif = read_key(key_file)
        chain = connect(urls, wif, dry_run=dry_run)
        curator = Curator(chain, wif, account, settings.market.custom_json_id, salt_file,
                          dry_run, settings.chain)
    except ClientError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - an unreachable or unknown node, said plainly
        from curation_market.logs import describe_exception

        raise fail(f"cannot use node {', '.join(urls)}: {describe_exception(exc)}") from None
    return curator


def _run(curator: Curator, action: str, *args: object) -> None:
    try:
        sent = getattr(curator, action)(*args)
    except (ClientError, salts.SaltExists) as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the node refused the transaction: say why
        from curation_market.logs import describe_exception

        raise fail(f"the node refused the {action}: {describe_exception(exc)}") from None
    typer.echo(orjson.dumps(sent.as_json(), option=orjson.OPT_INDENT_2).decode())


def commit(author: Author, permlink: Permlink,
           prediction: Annotated[str, typer.Option(help="final payout you expect, "
                                                   "e.g. 12.345")],
           node: Node = None, account: Account = None, key_file: KeyFile = None,
           dry_run: DryRun = False, salt_file: SaltFile = salts.DEFAULT_PATH,
           config: Config = None, stake: Stake = None, bid: Bid = None,
           replace: Replace = False) -> None:
    """Commit a hashed prediction (salt stored locally first), signed and broadcast."""
    milli = parse_milli(prediction)
    if milli is None:
        raise fail(f"--prediction: expected a decimal amount like 12.345, got "
                   f"{prediction!r}")
    stake_milli, bid_thousandths = stake_and_bid(stake, bid)  # before any node is asked
    curator = _curator(node, account, key_file, dry_run, salt_file, config)
    where = (salt_file, curator.chain_id, author, permlink, curator.account)
    if not replace:  # before anything is signed or sent
        try:
            salts.check_free(*where)
        except salts.SaltExists as exc:
            raise fail(str(exc)) from None
    elif not dry_run:
        salts.retire(*where)  # kept in the file, marked replaced
    _run(curator, "commit", author, permlink, milli, stake_milli, bid_thousandths)
    if not dry_run:
        terms = "".join(f" {k} {format_milli(v)}" for k, v in
                        (("stake", stake_milli), ("bid", bid_thousandths)) if v is not None)
        err.print(f"committed {format_milli(milli)}{terms} on @{author}/{permlink} as "
                  f"{curator.account}; salt in {salt_file}; reveal after the window with "
                  "`curation-market reveal`", soft_wrap=True)


def reveal(author: Author, permlink: Permlink, node: Node = None, account: Account = None,
           key_file: KeyFile = None, dry_run: DryRun = False,
           salt_file: SaltFile = salts.DEFAULT_PATH, config: Config = None,
           stake: Annotated[str | None, typer.Option(
               help="optional check: the stake given at commit (it is read from the salt "
                    "file; a different value is refused)")] = None,
           bid: Annotated[str | None, typer.Option(
               help="optional check: the bid given at commit (read from the salt file; "
                    "a different value is refused)")] = None) -> None:
    """Reveal the stored prediction, stake and bid of a post, after the commit window.

    Only what the commit bound can be revealed: the values come from the salt file."""
    stake_milli, bid_thousandths = stake_and_bid(stake, bid)  # before any node is asked
    curator = _curator(node, account, key_file, dry_run, salt_file, config)
    _run(curator, "reveal", author, permlink, stake_milli, bid_thousandths)


def curator_cmd(
    auto_reveal: Annotated[bool, typer.Option(
        "--auto-reveal", help="keep running: reveal every stored salt of the account in the "
        "block after its reveal window opens (chain time), with retries; without it, show "
        "what is stored and when each reveal is due, and send nothing")] = False,
    node: Node = None, account: Account = None, key_file: KeyFile = None,
    salt_file: SaltFile = salts.DEFAULT_PATH, config: Config = None,
    poll_seconds: Annotated[float, typer.Option(
        help="how often the node's head is polled (wall clock)")] = 1.0,
    until_idle: Annotated[bool, typer.Option(
        "--until-idle", help="exit once every stored salt is retired (its reveal window "
        "passed)")] = False,
    max_seconds: Annotated[float | None, typer.Option(
        help="give up after this many seconds (exit code 3)")] = None,
) -> None:
    """What is due to reveal; with --auto-reveal, reveal each stored salt as its window opens.

    Never twice, across restarts; see curation_market/curator/autoreveal.py."""
    import signal

    from curation_market.curator.autoreveal import AutoRevealer

    settings = settings_from(config)
    curator = _curator(node, account, key_file, False, salt_file, config)
    windows = settings.market_config().windows
    revealer = AutoRevealer(curator, windows, salt_file)
    if not auto_reveal:
        try:
            st = revealer.step(send=False)
        except Exception as exc:  # noqa: BLE001 - the node failed: say so plainly
            from curation_market.logs import describe_exception

            raise fail(f"cannot read node: {describe_exception(exc)}", code=1) from None
        for e in salts.pending(salt_file, curator.chain_id, curator.account):
            rec = e.entry.get("auto_reveal") or {}
            t = revealer._created.get((e.author, e.permlink))  # noqa: SLF001
            due = "post unknown to the node" if t is None else \
                f"reveal from {format_time(t + windows.window + 1)} to " \
                f"{format_time(t + windows.window + windows.reveal_period)}"
            typer.echo(f"@{e.author}/{e.permlink}: {due}; "
                       f"{rec.get('status', 'not revealed yet')}")
        typer.echo(f"head {st.head} at {format_time(st.head_time)}; "
                   f"{len(st.waiting) + len(st.sent)} salt(s) waiting")
        return
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    err.print(f"auto-reveal for {curator.account} on {', '.join(node or settings.node.urls)} "
              f"(chain {curator.chain_id[:8]}…), salts in {salt_file}", soft_wrap=True,
              highlight=False)
    try:
        code = revealer.run(poll_seconds, until_idle, max_seconds, stop=lambda: bool(stopping))
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)
