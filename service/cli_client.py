"""``curation-market commit`` / ``reveal``: sign with a posting key and broadcast with beem.

The key comes from ``$CURATION_POSTING_KEY`` or ``--key-file`` (never an option value); see
:mod:`service.client` for the rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

from curation.payload import format_milli, parse_milli
from service import salts
from service.client import ClientError, Curator, connect, read_key

err = Console(stderr=True, soft_wrap=True)  # error texts stay on one line

Author = Annotated[str, typer.Option(help="post author")]
Permlink = Annotated[str, typer.Option(help="post permlink")]
Node = Annotated[list[str], typer.Option("--node", help="node URL (repeat for failover)")]
Account = Annotated[str | None, typer.Option(
    help="your account (default: the account the node finds for your key)")]
KeyFile = Annotated[Path | None, typer.Option(
    help="file holding the posting key (WIF); default: $CURATION_POSTING_KEY")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="print the signed transaction, "
                                      "send nothing, store nothing")]
SaltFile = Annotated[Path, typer.Option(help="where salts wait for the reveal")]
Config = Annotated[Path | None, typer.Option("--config", "-c",
                                             help="config.toml (market id; defaults if omitted)")]


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def _curator(node: list[str], account: str | None, key_file: Path | None, dry_run: bool,
             salt_file: Path, config: Path | None) -> Curator:
    from service.config import ConfigError, load_settings

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    try:
        wif = read_key(key_file)
        chain = connect(node, wif, dry_run=dry_run)
        curator = Curator(chain, wif, account, settings.market.custom_json_id, salt_file,
                          dry_run)
    except ClientError as exc:
        raise _fail(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - an unreachable or unknown node, said plainly
        raise _fail(f"cannot use node {', '.join(node)}: {exc}") from None
    if settings.chain.chain_id != curator.chain_id:
        err.print(f"[yellow]warning:[/yellow] the node's chain id {curator.chain_id[:8]}… "
                  f"differs from config chain.chain_id {settings.chain.chain_id[:8]}…; the "
                  "commitment uses the node's")
    return curator


def _run(curator: Curator, action: str, *args: object) -> None:
    try:
        sent = getattr(curator, action)(*args)
    except ClientError as exc:
        raise _fail(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the node refused the transaction: say why
        raise _fail(f"the node refused the {action}: {exc}") from None
    typer.echo(orjson.dumps(sent.as_json(), option=orjson.OPT_INDENT_2).decode())


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""

    @app.command("commit")
    def commit(author: Author, permlink: Permlink,
               prediction: Annotated[str, typer.Option(help="final payout you expect, "
                                                       "e.g. 12.345")],
               node: Node, account: Account = None, key_file: KeyFile = None,
               dry_run: DryRun = False, salt_file: SaltFile = salts.DEFAULT_PATH,
               config: Config = None) -> None:
        """Commit a hashed prediction (salt stored locally first), signed and broadcast."""
        milli = parse_milli(prediction)
        if milli is None:
            raise _fail(f"--prediction must be a decimal amount like 12.345, got {prediction!r}")
        curator = _curator(node, account, key_file, dry_run, salt_file, config)
        _run(curator, "commit", author, permlink, milli)
        if not dry_run:
            err.print(f"committed {format_milli(milli)} on @{author}/{permlink} as "
                      f"{curator.account}; salt in {salt_file}; reveal after the window with "
                      "`curation-market reveal`")

    @app.command("reveal")
    def reveal(author: Author, permlink: Permlink, node: Node, account: Account = None,
               key_file: KeyFile = None, dry_run: DryRun = False,
               salt_file: SaltFile = salts.DEFAULT_PATH, config: Config = None,
               stake: Annotated[str | None, typer.Option(
                   help="stake for staking rule sets, e.g. 10.000")] = None,
               bid: Annotated[str | None, typer.Option(
                   help="bid for staking rule sets, e.g. 0.8")] = None) -> None:
        """Reveal the stored prediction for a post (after the commit window)."""
        stake_milli = None
        if stake is not None:
            stake_milli = parse_milli(stake)
            if stake_milli is None:
                raise _fail(f"--stake must be a decimal amount like 10.000, got {stake!r}")
        curator = _curator(node, account, key_file, dry_run, salt_file, config)
        _run(curator, "reveal", author, permlink, stake_milli, bid)
