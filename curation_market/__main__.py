"""``python -m curation_market``: the ``curation-market`` command."""

from curation_market.cli.main import app

app()
