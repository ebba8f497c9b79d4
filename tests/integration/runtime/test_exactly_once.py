"""Exactly-once under crashes: the customer service as a real process, killed
with SIGKILL in the middle of 10,000 changes, then restarted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from contracts.customer.v1 import customer_pb2 as pb
from services.customer.service import customer
from troupe.bus import clients
from troupe.bus.topics import ensure_topics
from troupe.service import records
from troupe.service.declaration import Command
from troupe.service.rebuild import rebuild
from troupe.service.runtime import Runtime, RuntimeOptions
from troupe.service.sender import CommandSender
from troupe.settings import KafkaSettings
from troupe.state.store import Store

from ..waiting import wait_until
from .helpers import ServiceProcess, by_entity, read_events, unique_ids

CUSTOMERS = 100
AWARDS = 10_000


class EventCounter:
    """Counts committed events of some entities as they appear."""

    def __init__(self, kafka: KafkaSettings, topic: str, entity_ids: set[str]) -> None:
        self.count = 0
        self._stop = threading.Event()
        ensure_topics(kafka, [topic])
        consumer = clients.consumer(kafka, group_id=None)
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        self._consumer = consumer
        self._ids = {i.encode() for i in entity_ids}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for message in self._consumer.consume(1000, 0.05):
                if message.error() is None and message.key() in self._ids:
                    self.count += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()


@pytest.fixture
def service(kafka: KafkaSettings, tmp_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess("customer", kafka, tmp_path / "state")
    yield process
    process.kill()


def test_kill_9_mid_stream_loses_and_duplicates_nothing(
    kafka: KafkaSettings, tmp_path: Path, service: ServiceProcess
) -> None:
    # Given the customer service running as a process, and 100 registered customers
    service.start()
    ids = unique_ids("crash", CUSTOMERS)
    counter = EventCounter(kafka, customer.events_topic, set(ids))
    sender = CommandSender(kafka, "test")
    actor = records.system("test")
    for customer_id in ids:
        sender.send_nowait(
            Command(customer_id, pb.RegisterCustomerRequest(customer_id=customer_id, name="N")),
            actor=actor,
        )
    wait_until(lambda: counter.count >= CUSTOMERS, 120, "the service did not start processing")

    # When 10,000 point awards stream in and the process is killed midway
    sent = [
        sender.send_nowait(
            Command(
                ids[n % CUSTOMERS],
                pb.AwardLoyaltyPointsRequest(customer_id=ids[n % CUSTOMERS], points=1),
            ),
            actor=actor,
        )
        for n in range(AWARDS)
    ]
    award_ids = [future.result(30) for future in sent]
    wait_until(lambda: counter.count >= 2_000, 120, "the service did not process the awards")
    service.kill()
    processed_before_restart = counter.count
    service.start()

    # Then every change appears exactly once in the topic
    events = read_events(kafka, customer.events_topic, set(ids), CUSTOMERS + AWARDS, timeout=180)
    counter.close()
    assert processed_before_restart < CUSTOMERS + AWARDS, "the kill came too late to test anything"
    causes = [e.causation_id for e in events if e.type == "LoyaltyPointsChanged"]
    assert len(causes) == AWARDS
    assert set(causes) == set(award_ids)
    # and every customer's versions are 1..n with the balance equal to its awards
    for customer_id, history in by_entity(events).items():
        assert [e.entity_version for e in history] == list(range(1, len(history) + 1)), customer_id
        last = pb.Customer.FromString(history[-1].state.value)
        assert last.loyalty_points == len(history) - 1

    # and the store equals a replay of the topic
    assert service.stop() == 0
    live = Runtime.store_path("customer", RuntimeOptions(state_dir=tmp_path / "state"))
    replayed = tmp_path / "replayed.sqlite"
    rebuild(customer, kafka, replayed)
    assert list(Store(live).dump()) == list(Store(replayed).dump())
    sender.close()
