"""``curation-market devnode``: the local development node (:mod:`curation_market.devnode`),
recorded blocks over real JSON-RPC on loopback, ``--demo`` for the packaged demo chain.

Its options are the node's own (one definition, in :func:`curation_market.devnode.node.main`,
which ``python -m curation_market.devnode`` runs too): this command hands every argument
after ``devnode`` to it, ``--help`` included.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("devnode", add_help_option=False, context_settings={
        "allow_extra_args": True, "ignore_unknown_options": True})(devnode)


def devnode(ctx: typer.Context) -> None:
    """A local development node on loopback (--demo: the packaged chain; devnode --help)."""
    from curation_market.devnode.node import main

    main(list(ctx.args), prog="curation-market devnode")
