"""Prometheus metrics of the daemon, served by prometheus_client on an HTTP port.

A registry of its own (not the process-global one), so tests can run several daemons in one
process and nothing else's metrics leak in.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Gauge, start_http_server


class Metrics:
    def __init__(self) -> None:
        self.server: Any = None
        r = self.registry = CollectorRegistry()
        self.indexed_block = Gauge("curation_indexed_block", "Last block written", registry=r)
        self.irreversible_block = Gauge("curation_irreversible_block",
                                        "Node's last irreversible block", registry=r)
        self.head_block = Gauge("curation_head_block", "Node's head block", registry=r)
        self.lag_blocks = Gauge("curation_lag_blocks", "Irreversible block minus indexed block",
                                registry=r)
        self.lag_seconds = Gauge("curation_lag_seconds",
                                 "Chain time of the node's head minus indexed block time",
                                 registry=r)
        self.ops_per_second = Gauge("curation_ops_per_second", "Ops ingested per second "
                                    "(rolling)", registry=r)
        self.blocks_per_second = Gauge("curation_blocks_per_second", "Blocks per second "
                                       "(rolling)", registry=r)
        self.rejected_ops = Gauge("curation_rejected_ops", "Rejected ops by reason",
                                  ["reason"], registry=r)
        self.settlements = Gauge("curation_settlements", "Markets settled", registry=r)
        self.overdue_markets = Gauge("curation_overdue_markets", "Markets past their payout "
                                     "time (chain time) with no payout seen", registry=r)
        self.node_stale = Gauge("curation_node_stale", "1 when the node's head block is older "
                                "than stale_seconds", registry=r)
        self.failovers = Gauge("curation_node_failovers", "Node switches so far", registry=r)
        self.provisional_blocks = Gauge("curation_provisional_blocks", "Head mode: reversible "
                                        "blocks shown provisionally", registry=r)
        self.forks = Gauge("curation_forks_seen", "Head mode: ticks where shown reversible "
                           "blocks were replaced by another branch", registry=r)
        self.rewinds = Gauge("curation_fork_rewinds", "Written blocks rewound because the "
                             "node's ids parted from the stored ones", registry=r)

    def serve(self, port: int) -> int:
        """Start the HTTP endpoint on loopback (port 0: a free one); returns the port."""
        self.server, self.thread = start_http_server(port, addr="127.0.0.1",
                                                     registry=self.registry)
        return int(self.server.server_port)

    def stop(self) -> None:
        """Free the port (several daemons may run, one after another, in one process)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
