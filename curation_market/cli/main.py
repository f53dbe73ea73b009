"""curation-market: a prediction market for curation on Steem and Hive. Replay history or
follow a node, settle, report, compare rule sets, serve the reports; curator tooling."""

from __future__ import annotations

from typing import Annotated

import typer

from curation_market.cli import curator, devnode, lab, market, node, serve
from curation_market.cli.common import fail

# The entry point (pyproject's script, ``python -m curation_market``): the one place the
# command groups are put together, each by its module's ``register(app)``. Command modules
# import :mod:`curation_market.cli.common`, never this module.
GROUPS = (market, curator, node, serve, lab, devnode)

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)


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


for _group in GROUPS:
    _group.register(app)

if __name__ == "__main__":  # pragma: no cover
    app()
