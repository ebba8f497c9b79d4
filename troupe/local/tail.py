"""``troupe tail``: every event of every service as it happens, one line each,
grouped by the cascade (correlation id) it belongs to."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from google.protobuf.message import DecodeError

from contracts.events.v1 import envelope_pb2
from troupe.bus import clients
from troupe.bus.topics import AUDIT_TOPIC
from troupe.settings import KafkaSettings

EVENTS_TOPICS = "^.*[.]events$"


class CascadePrinter:
    """Prints events; a new cascade gets a header line, its events are indented
    under the short form of its correlation id."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self._seen: dict[str, int] = {}

    def print(self, event: envelope_pb2.Envelope) -> None:
        cascade = event.correlation_id[:8] or "--------"
        if event.correlation_id not in self._seen:
            self._seen[event.correlation_id] = len(self._seen) + 1
            self.out.write(f"cascade {cascade} (#{self._seen[event.correlation_id]})\n")
        at = datetime.fromtimestamp(event.occurred_at.ToNanoseconds() / 1e9, UTC)
        actor = event.actor.name or event.actor.id
        self.out.write(
            f"  {cascade} {at:%H:%M:%S.%f}"[:-3]
            + f" {event.source:<12} {event.type:<28} {event.entity_id} v{event.entity_version}"
            + (f" by {actor}" if actor else "")
            + "\n"
        )
        self.out.flush()


def tail(
    kafka: KafkaSettings,
    from_beginning: bool = False,
    since: datetime | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Prints events until ``stop()``: from the start of every topic, from the
    first event at or after ``since``, or (neither) from now on."""
    consumer = clients.consumer(
        kafka,
        # Its own group: every tail sees every event.
        group_id=f"troupe-tail-{uuid.uuid4().hex[:8]}",
        **{
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "topic.metadata.refresh.interval.ms": 5000,
        },
    )

    def start_at_since(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # A topic created after `since` (e.g. by a service that just started) is read
        # from its first event on, not from the moment the tail happened to see it.
        assert since is not None
        at_ms = int(since.timestamp() * 1000)
        asked = [TopicPartition(p.topic, p.partition, at_ms) for p in partitions]
        # Where nothing is at or after `since`, the answer is -1 (OFFSET_END): what comes next.
        found = [TopicPartition(p.topic, p.partition, OFFSET_BEGINNING) for p in partitions]
        for _ in range(40):
            try:
                found = consumer.offsets_for_times(asked, timeout=10)
                break
            except KafkaException:
                # A topic created a moment ago may have no leader yet: ask again. (If it
                # never answers, the topic is new: its first event is after `since`.)
                time.sleep(0.25)
        consumer.assign(found)

    if since is None:
        consumer.subscribe([EVENTS_TOPICS])
    else:
        consumer.subscribe([EVENTS_TOPICS], on_assign=start_at_since)
    printer = CascadePrinter()
    try:
        while not stop():
            for message in clients.poll_batch(consumer, 500, 0.2):
                # The business audit (sidecars) matches the pattern, but is no entity's events.
                if message.error() is not None or message.topic() == AUDIT_TOPIC:
                    continue
                try:
                    printer.print(envelope_pb2.Envelope.FromString(message.value() or b""))
                except DecodeError:
                    print(
                        f"  undecodable record in {message.topic()} at {message.offset()}",
                        file=sys.stderr,
                    )
    finally:
        consumer.close()
