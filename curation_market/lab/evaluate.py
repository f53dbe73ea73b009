"""Every rule set side by side on replayed real history with simulated curators (issue 4).

The entry point of ``curation-market evaluate``: load the config, evaluate, write the
report. The work lives in one module per job:

- :mod:`~curation_market.lab.config`: the eval TOML model, its loading and validation;
- :mod:`~curation_market.lab.variants`: which rule sets to compare, grouped into tasks
  (run × the stream the agents need);
- :mod:`~curation_market.lab.agents`: the simulated curators (shared with the demo);
- :mod:`~curation_market.lab.runner`: streams, replays (one per market config and stream,
  reused by the staked rule sets), the Dask workers and the pooled results;
- :mod:`~curation_market.lab.history`: any history (`--history`): parsed once, streamed;
- :mod:`~curation_market.lab.fetch`: a node's blocks archived for it (`fetch`);
- :mod:`~curation_market.lab.stats`: ratios, Gini, rank correlations, shares;
- :mod:`~curation_market.lab.rendering`: Markdown, HTML and PNG plots.
"""

from __future__ import annotations

from curation_market.lab.config import EvalConfig, load_eval_config
from curation_market.lab.rendering import plot, write_report
from curation_market.lab.runner import Evaluation, evaluate
from curation_market.lab.stats import shares

__all__ = ["EvalConfig", "Evaluation", "evaluate", "load_eval_config", "plot", "shares",
           "write_report"]
