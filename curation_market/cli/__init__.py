"""The ``curation-market`` command: :mod:`.main` is the entry point, :mod:`.common` what the
command groups (market, curator, node, serve, lab, devnode) share."""
