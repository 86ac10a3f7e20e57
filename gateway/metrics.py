"""Prometheus metrics (prometheus-client), one registry per server so tests can run several."""

from bisect import bisect_left

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

# fine around the 10 ms target so bench/e2e.py can tell which side of it p99 is
ACK_BUCKETS_S = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02, 0.03,
                 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        # counted per command and per frame sent, so kept in plain dicts (a prometheus child's
        # inc() takes a lock) and read out when /metrics is scraped
        self._commands_by_type: dict[str, int] = {}
        self._sent_by_op: dict[str, int] = {}
        r.register(_DictCounters("backlay_commands", "Commands journaled", "type",
                                 self._commands_by_type))
        r.register(_DictCounters("backlay_ws_messages_out", "Frames sent", "op",
                                 self._sent_by_op))
        # observed per request: a plain list of bucket counts (a prometheus Histogram's
        # observe() takes a lock and walks every bucket)
        self.ack_latency = _PlainHistogram("backlay_ack_latency_seconds",
                                           "Submit to journaled acknowledgement", ACK_BUCKETS_S)
        r.register(self.ack_latency)
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
        self.drops = Counter("backlay_ws_dropped_total",
                             "Market-data frames dropped for slow consumers", registry=r)
        self.rejections = Counter("backlay_rejections_total", "Rejected requests", ["code"],
                                  registry=r)
        self.sequencer_healthy = Gauge("backlay_sequencer_healthy", "1 while journaling works",
                                       registry=r)
        self.snapshots = Counter("backlay_snapshots_total", "Engine snapshots stored",
                                 registry=r)
        self.snapshot_seconds = Gauge("backlay_snapshot_seconds",
                                      "The last snapshot's time from fork to stored", registry=r)
        self.snapshot_bytes = Gauge("backlay_snapshot_bytes", "The last snapshot's size",
                                    registry=r)

    def snapshot_taken(self, taken) -> None:
        self.snapshots.inc()
        self.snapshot_seconds.set(taken.elapsed_s)
        self.snapshot_bytes.set(taken.size_bytes)

    def message_sent(self, op: str) -> None:
        sent = self._sent_by_op
        sent[op] = sent.get(op, 0) + 1

    def commands_journaled(self, records) -> None:
        """One journaled batch: its size, and each command by type."""
        self.batch_size.observe(len(records))
        counts = self._commands_by_type
        kinds: dict[type, int] = {}
        for record in records:
            kind = type(record[1])
            kinds[kind] = kinds.get(kind, 0) + 1
        for kind, n in kinds.items():
            name = kind.__name__
            counts[name] = counts.get(name, 0) + n

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _DictCounters(Collector):
    """A labelled counter whose values live in a plain dict of label -> count (only this
    process's event loop writes it; a scrape reads it on the same loop)."""

    def __init__(self, name: str, documentation: str, label: str, counts: dict[str, int]):
        self.name, self.documentation, self.label, self.counts = name, documentation, label, counts

    def collect(self):
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, count in list(self.counts.items()):
            family.add_metric([value], count)
        yield family


class _PlainHistogram:
    """A histogram whose buckets are a plain list (only this process's event loop observes; a
    scrape reads it on the same loop). Exposed like a prometheus Histogram: a registry takes
    any object with collect() (prometheus_client's Collector is only its type). Compiled with
    metrics.pxd: observed once per order, its counts are C-typed."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = list(buckets)
        self.counts = [0] * (len(buckets) + 1)  # the last one: above every bound (+Inf)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def collect(self):
        cumulative, running = [], 0
        for bound, count in zip([*map(str, self.bounds), "+Inf"], self.counts):
            running += count
            cumulative.append((bound, running))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], cumulative, sum_value=self.total)
        yield family
