"""``python -m curation_market.devnode``: the local development node (see its module)."""

from curation_market.devnode.node import main

main()
