"""``curation-market commit`` / ``reveal``: sign with a posting key and broadcast with beem.

The key comes from ``$CURATION_POSTING_KEY`` or ``--key-file`` (never an option value); see
:mod:`curation_market.curator.client` for the rules. Errors, config loading and the
--stake/--bid checks are
:mod:`curation_market.cli.main`'s, imported inside the functions (that module imports this one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from curation.payload import format_milli, parse_milli
from curation_market.cli.options import NodesOpt as Node
from curation_market.curator import salts
from curation_market.curator.client import ClientError, Curator, connect, read_key

Author = Annotated[str, typer.Option(help="post author")]
Permlink = Annotated[str, typer.Option(help="post permlink")]
Account = Annotated[str | None, typer.Option(
    help="your account (default: the account the node finds for your key)")]
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


def _curator(node: list[str] | None, account: str | None, key_file: Path | None,
             dry_run: bool, salt_file: Path, config: Path | None) -> Curator:
    from curation_market.cli.main import fail, settings_from

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
    from curation_market.cli.main import fail

    try:
        sent = getattr(curator, action)(*args)
    except (ClientError, salts.SaltExists) as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the node refused the transaction: say why
        from curation_market.logs import describe_exception

        raise fail(f"the node refused the {action}: {describe_exception(exc)}") from None
    typer.echo(orjson.dumps(sent.as_json(), option=orjson.OPT_INDENT_2).decode())


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""

    @app.command("commit")
    def commit(author: Author, permlink: Permlink,
               prediction: Annotated[str, typer.Option(help="final payout you expect, "
                                                       "e.g. 12.345")],
               node: Node = None, account: Account = None, key_file: KeyFile = None,
               dry_run: DryRun = False, salt_file: SaltFile = salts.DEFAULT_PATH,
               config: Config = None, stake: Stake = None, bid: Bid = None,
               replace: Replace = False) -> None:
        """Commit a hashed prediction (salt stored locally first), signed and broadcast."""
        from curation_market.cli.main import err, fail, stake_and_bid

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

    @app.command("reveal")
    def reveal(author: Author, permlink: Permlink, node: Node = None, account: Account = None,
               key_file: KeyFile = None, dry_run: DryRun = False,
               salt_file: SaltFile = salts.DEFAULT_PATH, config: Config = None,
               stake: Annotated[str | None, typer.Option(
                   help="optional check: the stake given at commit (it is read from the salt "
                        "file; a different value is refused)")] = None,
               bid: Annotated[str | None, typer.Option(
                   help="optional check: the bid given at commit (read from the salt file; "
                        "a different value is refused)")] = None) -> None:
        """Reveal the stored prediction (and the stake and bid the commit bound) for a post,
        after the commit window."""
        from curation_market.cli.main import stake_and_bid

        stake_milli, bid_thousandths = stake_and_bid(stake, bid)  # before any node is asked
        curator = _curator(node, account, key_file, dry_run, salt_file, config)
        _run(curator, "reveal", author, permlink, stake_milli, bid_thousandths)
