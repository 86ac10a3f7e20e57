"""Prometheus metrics (prometheus-client), one registry per server so tests can run several."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# fine around the 10 ms target so bench/e2e.py can tell which side of it p99 is
ACK_BUCKETS_S = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02, 0.03,
                 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.commands = Counter("backlay_commands_total", "Commands journaled", ["type"],
                                registry=r)
        self.ack_latency = Histogram("backlay_ack_latency_seconds",
                                     "Submit to journaled acknowledgement", buckets=ACK_BUCKETS_S,
                                     registry=r)
        self.batch_size = Histogram("backlay_journal_batch_commands",
                                    "Commands per journal write (group commit)",
                                    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500), registry=r)
        self.persister_lag_entries = Gauge("backlay_persister_lag_entries",
                                           "Journal entries not yet in Postgres", registry=r)
        self.persister_lag_seconds = Gauge("backlay_persister_lag_seconds",
                                           "Age of the oldest entry not yet in Postgres",
                                           registry=r)
        self.persister_restarts = Counter("backlay_persister_restarts_total",
                                          "Persister processes started again after dying",
                                          registry=r)
        self.connections = Gauge("backlay_ws_connections", "Open WebSocket connections",
                                 registry=r)
        self._sent_by_op: dict[str, Counter] = {}
        self._commands_by_type: dict[type, Counter] = {}
        self.messages_out = Counter("backlay_ws_messages_out_total", "Frames sent", ["op"],
                                    registry=r)
        self.drops = Counter("backlay_ws_dropped_total",
                             "Market-data frames dropped for slow consumers", registry=r)
        self.rejections = Counter("backlay_rejections_total", "Rejected requests", ["code"],
                                  registry=r)
        self.sequencer_healthy = Gauge("backlay_sequencer_healthy", "1 while journaling works",
                                       registry=r)

    def message_sent(self, op: str) -> None:
        # labels() looks the child up under a lock on every call; fan-out calls this for
        # every frame to every subscriber, so the children are kept here
        child = self._sent_by_op.get(op)
        if child is None:
            child = self._sent_by_op[op] = self.messages_out.labels(op)
        child.inc()

    def commands_journaled(self, records) -> None:
        """One journaled batch: its size, and each command by type (children kept, as above:
        every command passes here)."""
        self.batch_size.observe(len(records))
        children = self._commands_by_type
        for _, cmd, _ in records:
            child = children.get(type(cmd))
            if child is None:
                child = children[type(cmd)] = self.commands.labels(type(cmd).__name__)
            child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
