"""Priority between topics: a reaction declared ``after=`` another topic reads
only while that topic has no lag (live traffic before a bulk replay)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from contracts.customer.v1 import customer_pb2 as pb
from troupe import EventContext, Service
from troupe.bus import clients
from troupe.bus.topics import ensure_topics
from troupe.service import records
from troupe.service.declaration import Cause
from troupe.service.runtime import Runtime, RuntimeOptions
from troupe.settings import KafkaSettings

RECORDS_PER_TOPIC = 3_000


def fill(kafka: KafkaSettings, topic: str, count: int) -> None:
    producer = clients.producer(kafka)
    cause = Cause("c", "c", records.system("test"), "")
    for n in range(count):
        event = records.event(
            source="customer",
            event_type="CustomerRegistered",
            entity_id=f"c{n}",
            version=1,
            state=pb.Customer(customer_id=f"c{n}"),
            cause=cause,
        )
        producer.produce(topic, event.SerializeToString(), f"c{n}".encode())
        if n % 1000 == 0:
            producer.poll(0)
    producer.flush(30)


def test_a_low_priority_topic_waits_until_the_live_topic_has_no_lag(kafka: KafkaSettings, tmp_path: Path) -> None:
    # Given a live topic and a bulk topic, both with a backlog
    run = uuid.uuid4().hex[:6]
    live, bulk = f"live-{run}.events", f"bulk-{run}.events"
    ensure_topics(kafka, [live, bulk])
    fill(kafka, bulk, RECORDS_PER_TOPIC)
    fill(kafka, live, RECORDS_PER_TOPIC)
    handled: list[str] = []

    # and a service that reads the bulk topic only after the live one
    service = Service("customer", entity=pb.Customer, id_field="customer_id")

    @service.on(live, "CustomerRegistered", state=pb.Customer)
    def on_live(state: pb.Customer, context: EventContext) -> None:
        handled.append("live")

    @service.on(bulk, "CustomerRegistered", state=pb.Customer, after=(live,))
    def on_bulk(state: pb.Customer, context: EventContext) -> None:
        handled.append("bulk")

    # When the service starts on both backlogs
    runtime = Runtime(service, kafka, RuntimeOptions(state_dir=tmp_path)).start()
    try:
        deadline = time.monotonic() + 120
        while len(handled) < 2 * RECORDS_PER_TOPIC and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        runtime.stop()

    # Then every live record was handled before the first bulk record
    assert handled.count("live") == RECORDS_PER_TOPIC
    assert handled.count("bulk") == RECORDS_PER_TOPIC
    assert handled.index("bulk") == RECORDS_PER_TOPIC
