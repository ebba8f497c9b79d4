"""Prometheus metrics of a service process."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

HANDLER_SECONDS = Histogram(
    "troupe_handler_seconds",
    "Time a handler took to decide, per service and record type (sampled: at most one observation per 10 ms per type)",
    ["service", "type"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0),
)
HANDLER_ERRORS = Counter("troupe_handler_errors_total", "Handler failures (each attempt)", ["service", "type"])
DEAD_LETTERS = Counter("troupe_dead_letters_total", "Records sent to the DLQ", ["service", "reason"])
RECORDS = Counter("troupe_records_total", "Records processed", ["service", "topic"])
COMMANDS_AT_ONCE = Counter(
    "troupe_commands_decided_at_once_total",
    "Commands to the service's own entities decided in the transaction of the reaction that sent them",
    ["service"],
)
TRANSACTIONS = Counter("troupe_transactions_total", "Kafka transactions by outcome", ["service", "outcome"])
OFFSET_COMMITS = Counter(
    "troupe_offset_commits_total",
    "Offsets committed outside a transaction (of batches that produced nothing)",
    ["service"],
)
LOOP_ACTIVITIES = ("waiting", "handling", "committing", "ticking")
LOOP_SECONDS = Counter(
    "troupe_loop_seconds_total",
    "Wall time of the exactly-once loop by activity: waiting for records, handling them (decide and"
    " produce), committing (the transaction's calls to the broker), ticks; busy near 100 % means"
    " records queue behind the loop",
    ["service", "activity"],
)
BATCH_SIZE = Histogram(
    "troupe_batch_records",
    "Records per transaction",
    ["service"],
    buckets=(1, 10, 100, 500, 1000, 5000, 20000),
)
CONSUMER_LAG = Gauge(
    "troupe_consumer_lag",
    "Records not yet consumed, per partition",
    ["service", "topic", "partition"],
)


def record_lag(service: str, stats_json: str) -> None:
    """librdkafka statistics callback: publishes consumer lag per partition."""
    stats: dict[str, Any] = json.loads(stats_json)
    for topic, topic_stats in stats.get("topics", {}).items():
        for partition, p in topic_stats.get("partitions", {}).items():
            if partition == "-1" or p.get("consumer_lag", -1) < 0:
                continue
            CONSUMER_LAG.labels(service, topic, partition).set(p["consumer_lag"])


def serve(port: int) -> None:
    """Serves /metrics on ``port`` (0 disables)."""
    if port:
        start_http_server(port, addr="127.0.0.1")
