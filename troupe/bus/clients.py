"""Kafka clients configured the way every part of the layer needs them.

Producers are idempotent with acks=all; consumers read only committed records;
service loops add a transactional id so consume → decide → produce commits
atomically with the consumed offsets.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from troupe.settings import KafkaSettings


def producer(kafka: KafkaSettings, **overrides: Any) -> Producer:
    config: dict[str, Any] = {
        **kafka.client_config(),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "compression.type": "lz4",
    }
    config.update(overrides)
    return Producer(config)


def transactional_producer(kafka: KafkaSettings, transactional_id: str, **overrides: Any) -> Producer:
    return producer(
        kafka,
        **{
            "transactional.id": transactional_id,
            "client.id": transactional_id,
            # A crashed instance's open transaction blocks read_committed readers
            # until it times out, unless the instance restarts with the same id.
            "transaction.timeout.ms": 10_000,
            # A transaction begun right after a commit is refused until the
            # previous one's markers are written; retry after 5 ms, not the
            # default 100 ms, or every hop waits that long.
            "retry.backoff.ms": 5,
            "retry.backoff.max.ms": 5,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 500_000,
            **overrides,
        },
    )


def consumer(kafka: KafkaSettings, group_id: str | None, **overrides: Any) -> Consumer:
    config: dict[str, Any] = {
        **kafka.client_config(),
        "group.id": group_id or "troupe-unassigned",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # The broker answers a waiting fetch as soon as records (or a commit
        # marker) arrive, so a long wait adds no latency; a short one only makes
        # idle consumers ask again and again (at 10 ms, a dozen idle consumers
        # cost the broker a third of a core).
        "fetch.wait.max.ms": 500,
        "queued.min.messages": 20_000,
    }
    config.update(overrides)
    return Consumer(config)


def poll_batch(consumer: Consumer, max_records: int, wait: float) -> list[Any]:
    """Whatever is already fetched, up to ``max_records``; if nothing is, waits up
    to ``wait`` for one record and takes what arrived with it. Big batches under
    load, no added wait when idle (a plain batch consume waits out its timeout)."""
    batch: list[Any] = consumer.consume(max_records, 0)
    if not batch:
        batch = consumer.consume(1, wait)
        if batch:
            batch += consumer.consume(max_records - 1, 0)
    return batch


def watermarks(consumer: Consumer, partition: TopicPartition, attempts: int = 20) -> tuple[int, int]:
    """The (low, high) offsets of a partition, asked of the broker, waiting out a
    leader election: a topic just created, or whose leader just moved, may not be
    served for a moment."""
    for attempt in range(attempts):
        try:
            low, high = consumer.get_watermark_offsets(partition, timeout=10, cached=False)
            return int(low), int(high)
        except KafkaException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.25)
    raise AssertionError("unreachable")
