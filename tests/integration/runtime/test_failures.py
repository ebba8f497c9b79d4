"""Bad input and failing handlers: nothing is silently dropped, and the service
keeps going past what it cannot process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from contracts.customer.v1 import customer_pb2 as pb
from contracts.events.v1 import envelope_pb2
from troupe import UNCHANGED, CommandContext, Rejected, Service
from troupe.bus import clients
from troupe.bus.topics import dlq_topic, ensure_topics
from troupe.service import dead_letters as troupe_dead_letters
from troupe.service import records
from troupe.service.declaration import Cause, Command, Unchanged
from troupe.service.processor import RetryPolicy
from troupe.service.runtime import CommandRefused, Runtime, RuntimeOptions
from troupe.service.sender import CommandSender
from troupe.settings import KafkaSettings

from .helpers import count_events, read_events, unique_ids

ACTOR = records.system("test")


def flaky_customer_service(failures: dict[str, int]) -> Service[pb.Customer]:
    """The customer service's registration with a handler that fails for some
    names: always for "poison", the given number of times for others."""
    service = Service("customer", entity=pb.Customer, id_field="customer_id")

    @service.command(pb.RegisterCustomerRequest, emits="CustomerRegistered")
    def register(
        current: pb.Customer | None, request: pb.RegisterCustomerRequest, context: CommandContext
    ) -> pb.Customer | Unchanged:
        if request.name == "poison":
            raise RuntimeError("the profile database is unreachable")
        if failures.get(request.name, 0) > 0:
            failures[request.name] -= 1
            raise TimeoutError("transient failure")
        if current is not None and current.name == request.name == "same again":
            return UNCHANGED
        if current is not None:
            raise Rejected("already registered")
        return pb.Customer(customer_id=request.customer_id, name=request.name)

    return service


class DeadLetterTap:
    """What reaches the customer DLQ from the moment it is made."""

    def __init__(self, kafka: KafkaSettings) -> None:
        topic = dlq_topic("customer")
        ensure_topics(kafka, [topic])
        self.letters: list[envelope_pb2.DeadLetter] = []
        self._consumer = clients.consumer(kafka, group_id=None)
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._consumer.assign(
            [
                TopicPartition(topic, p, clients.watermarks(self._consumer, TopicPartition(topic, p))[1])
                for p in partitions
            ]
        )

    def wait_for(self, count: int, timeout: float = 30) -> list[envelope_pb2.DeadLetter]:
        deadline = time.monotonic() + timeout
        while len(self.letters) < count and time.monotonic() < deadline:
            for message in self._consumer.consume(1000, 0.5):
                if message.error() is None:
                    self.letters.append(envelope_pb2.DeadLetter.FromString(message.value() or b""))
        return self.letters

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture
def dead_letters(kafka: KafkaSettings) -> Iterator[DeadLetterTap]:
    tap = DeadLetterTap(kafka)
    yield tap
    tap.close()


@pytest.fixture
def runtime(kafka: KafkaSettings, tmp_path: Path) -> Iterator[Runtime[pb.Customer]]:
    """One instance of the customer service whose handlers never fail."""
    runtime = Runtime(flaky_customer_service({}), kafka, RuntimeOptions(state_dir=tmp_path)).start()
    try:
        yield runtime
    finally:
        runtime.stop()


def test_a_poison_record_reaches_the_dlq_after_its_retries_and_later_records_go_on(
    kafka: KafkaSettings, tmp_path: Path, dead_letters: DeadLetterTap
) -> None:
    # Given a service whose handler fails for one record, and fails twice for another
    service = flaky_customer_service({"flaky": 2})
    retry = RetryPolicy(attempts=3, first_backoff=0.01)
    runtime = Runtime(service, kafka, RuntimeOptions(state_dir=tmp_path, retry=retry)).start()
    sender = CommandSender(kafka, "test")
    poison_id, flaky_id, *later_ids = unique_ids("poison", 12)
    try:
        # When the poison record comes first and ordinary ones after it
        poison_command = sender.send(
            Command(poison_id, pb.RegisterCustomerRequest(customer_id=poison_id, name="poison")),
            actor=ACTOR,
        )
        sender.send(
            Command(flaky_id, pb.RegisterCustomerRequest(customer_id=flaky_id, name="flaky")),
            actor=ACTOR,
        )
        for customer_id in later_ids:
            sender.send(
                Command(customer_id, pb.RegisterCustomerRequest(customer_id=customer_id, name="N")),
                actor=ACTOR,
            )

        # Then the later records are processed, the flaky one after its retries
        events = read_events(kafka, service.events_topic, {flaky_id, *later_ids}, expected=11)
        assert sorted(e.entity_id for e in events) == sorted([flaky_id, *later_ids])
        # and the poison record is in the DLQ with its error, attempts and original record
        (letter,) = [d for d in dead_letters.wait_for(1) if d.entity_id == poison_id]
        assert letter.reason == envelope_pb2.DEAD_LETTER_REASON_FAILED
        assert letter.attempts == 3
        assert "profile database is unreachable" in letter.error
        assert letter.record_id == poison_command
        original = envelope_pb2.CommandEnvelope.FromString(letter.value)
        assert original.command_id == poison_command
        assert letter.topic == "customer.commands"
        # and nothing was produced for it
        assert read_events(kafka, service.events_topic, {poison_id}, expected=0, timeout=3) == []
    finally:
        sender.close()
        runtime.stop()


@pytest.mark.usefixtures("runtime")
def test_undecodable_and_unknown_records_go_to_the_dlq_with_a_clear_error(
    kafka: KafkaSettings, dead_letters: DeadLetterTap
) -> None:
    garbage_key, unknown_id, ok_id = unique_ids("bad", 3)
    producer = clients.producer(kafka)
    producer.produce("customer.commands", b"\xff\x00 not protobuf", garbage_key.encode())
    unknown = records.command(
        Command(unknown_id, pb.ChangeContactRequest(customer_id=unknown_id)),
        Cause(unknown_id, unknown_id, ACTOR, unknown_id),
    )
    producer.produce("customer.commands", unknown.SerializeToString(), unknown_id.encode())
    producer.flush(10)
    sender = CommandSender(kafka, "test")
    sender.send(Command(ok_id, pb.RegisterCustomerRequest(customer_id=ok_id, name="N")), actor=ACTOR)
    sender.close()

    assert len(read_events(kafka, "customer.events", {ok_id}, expected=1)) == 1
    reasons = {d.key.decode(): (d.reason, d.error) for d in dead_letters.wait_for(2)}
    assert reasons[garbage_key][0] == envelope_pb2.DEAD_LETTER_REASON_UNDECODABLE
    assert "not a command envelope" in reasons[garbage_key][1]
    assert reasons[unknown_id][0] == envelope_pb2.DEAD_LETTER_REASON_UNKNOWN_TYPE
    assert "no handler for 'contracts.customer.v1.ChangeContactRequest'" in reasons[unknown_id][1]


def test_a_rejected_command_answers_the_caller_and_a_wrong_version_is_refused(runtime: Runtime[pb.Customer]) -> None:
    (customer_id,) = unique_ids("reject", 1)
    runtime.submit(pb.RegisterCustomerRequest(customer_id=customer_id, name="A"), actor=ACTOR)
    with pytest.raises(CommandRefused, match="already registered") as refused:
        runtime.submit(pb.RegisterCustomerRequest(customer_id=customer_id, name="A"), actor=ACTOR)
    assert refused.value.rejected
    with pytest.raises(CommandRefused, match=r"expected .* at version 7, it is at 1"):
        runtime.submit(
            pb.RegisterCustomerRequest(customer_id=customer_id, name="A"),
            actor=ACTOR,
            expected_version=7,
        )


def test_a_command_that_changes_nothing_answers_the_caller_with_the_current_version(
    kafka: KafkaSettings, runtime: Runtime[pb.Customer]
) -> None:
    # given a registered customer
    (customer_id,) = unique_ids("unchanged", 1)
    registered = runtime.submit(pb.RegisterCustomerRequest(customer_id=customer_id, name="same again"), actor=ACTOR)
    # when the same registration comes again (the rule: nothing to change)
    started = time.monotonic()
    again = runtime.submit(
        pb.RegisterCustomerRequest(customer_id=customer_id, name="same again"), actor=ACTOR, timeout=8
    )
    # then the caller hears at once that the customer stays at its version, with no event
    assert (again.version, again.event_id, again.accepted) == (registered.version, "", True)
    assert time.monotonic() - started < 8
    assert count_events(kafka, "customer.events", {customer_id}) == 1


def test_the_same_command_id_twice_changes_the_entity_once(kafka: KafkaSettings, runtime: Runtime[pb.Customer]) -> None:
    sender = CommandSender(kafka, "webhook")
    (customer_id,) = unique_ids("dup", 1)
    try:
        command = Command(customer_id, pb.RegisterCustomerRequest(customer_id=customer_id, name="A"))
        sender.send(command, actor=ACTOR, command_id=f"call-{customer_id}")
        sender.send(command, actor=ACTOR, command_id=f"call-{customer_id}")
        events = read_events(kafka, "customer.events", {customer_id}, expected=1, timeout=20)
        assert len(events) == 1
    finally:
        sender.close()


def test_a_dead_letter_sent_back_is_processed_once_the_cause_is_gone(
    kafka: KafkaSettings, tmp_path: Path, dead_letters: DeadLetterTap
) -> None:
    # Given a record that failed all its retries while a dependency was down
    service = flaky_customer_service({"late": 3})
    retry = RetryPolicy(attempts=3, first_backoff=0.01)
    runtime = Runtime(service, kafka, RuntimeOptions(state_dir=tmp_path, retry=retry)).start()
    (customer_id,) = unique_ids("late", 1)
    try:
        runtime_sender = CommandSender(kafka, "test")
        command_id = runtime_sender.send(
            Command(customer_id, pb.RegisterCustomerRequest(customer_id=customer_id, name="late")), actor=ACTOR
        )
        runtime_sender.close()
        (letter,) = [d for d in dead_letters.wait_for(1) if d.record_id == command_id]

        # When an operator sends it back (troupe dlq retry), the dependency being up again
        assert command_id in {d.record_id for d in troupe_dead_letters.read(kafka, "customer")}
        troupe_dead_letters.retry(kafka, [letter])

        # Then it is processed, once
        events = read_events(kafka, service.events_topic, {customer_id}, expected=1, timeout=30)
        assert [e.causation_id for e in events] == [command_id]
    finally:
        runtime.stop()
