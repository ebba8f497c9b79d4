"""Exactly-once under crashes: the customer service as a real process, killed
with SIGKILL in the middle of 10,000 changes, then restarted; and a batch cut
short, which commits the offsets of what it handled, not of the whole batch."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from contracts.customer.v1 import customer_pb2 as pb
from services.customer.service import customer
from troupe import CommandContext, Service
from troupe.bus import clients
from troupe.bus.partitioning import partition_for
from troupe.bus.topics import ensure_topics
from troupe.service import records
from troupe.service.declaration import Command
from troupe.service.rebuild import rebuild
from troupe.service.runtime import Runtime, RuntimeOptions
from troupe.service.sender import CommandSender
from troupe.settings import KafkaSettings
from troupe.state.store import Store

from ..waiting import wait_until
from .helpers import ServiceProcess, by_entity, read_events, records_of, unique_ids

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


def holding_service(hold: threading.Event, held: threading.Event) -> Service[pb.Customer]:
    """Registers customers; the registration of one named "hold" waits for ``hold``."""
    service = Service("customer", entity=pb.Customer, id_field="customer_id")

    @service.command(pb.RegisterCustomerRequest, emits="CustomerRegistered")
    def register(
        current: pb.Customer | None, request: pb.RegisterCustomerRequest, context: CommandContext
    ) -> pb.Customer:
        if request.name == "hold":
            held.set()
            hold.wait(30)
        return pb.Customer(customer_id=request.customer_id, name=request.name)

    return service


def test_a_batch_cut_short_commits_only_the_offsets_of_what_it_handled(kafka: KafkaSettings, tmp_path: Path) -> None:
    # Given four registrations in one commands partition, the second of them held by its handler,
    # all waiting before the service starts (so that they are read as one batch)
    ensure_topics(kafka, ["customer.commands", "customer.events", "customer.dlq"])
    # Reads the group's committed offsets. (A read_committed client would wait for the open
    # transaction's offsets to settle, and the held registration keeps it open.)
    probe = clients.consumer(kafka, group_id="customer", **{"isolation.level": "read_uncommitted"})
    partitions = len(probe.list_topics("customer.commands", timeout=10).topics["customer.commands"].partitions)
    candidates = unique_ids("cut", 200)
    partition = partition_for(candidates[0], partitions)
    first, second, third, fourth = [c for c in candidates if partition_for(c, partitions) == partition][:4]
    sender = CommandSender(kafka, "test")
    for customer_id in (first, second, third, fourth):
        name = "hold" if customer_id == second else "N"
        sender.send(
            Command(customer_id, pb.RegisterCustomerRequest(customer_id=customer_id, name=name)),
            actor=records.system("test"),
        )
    (held_record,) = records_of(kafka, "customer.commands", second)
    hold, held = threading.Event(), threading.Event()
    runtime = Runtime(holding_service(hold, held), kafka, RuntimeOptions(state_dir=tmp_path, grpc_address=None))
    # and a loop that cuts every batch short after its first record
    runtime.processor.max_transaction_seconds = 0.0
    try:
        # When the service runs until the held registration
        runtime.start()
        wait_until(held.is_set, 60, "the held registration was not handled")

        # Then the group has committed the first registration's offset and none past it
        def committed() -> int:
            (offset,) = probe.committed([TopicPartition("customer.commands", partition)], timeout=10)
            return int(offset.offset)

        wait_until(lambda: committed() >= held_record.offset(), 30, "the first registration was not committed")
        assert committed() == held_record.offset()
        # and once released, every registration has its one event
        hold.set()
        events = read_events(kafka, "customer.events", {first, second, third, fourth}, 4, timeout=60)
        assert sorted(e.entity_id for e in events) == sorted([first, second, third, fourth])
        wait_until(lambda: committed() == held_record.offset() + 3, 30, "the last registrations were not committed")
    finally:
        hold.set()
        runtime.stop()
        probe.close()
        sender.close()
