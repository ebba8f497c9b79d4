"""A reaction's command to its own service: decided in the reaction's
transaction when this instance owns the entity, its event then its only record;
left to its record in the commands topic otherwise; one effect in every case."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from prometheus_client import REGISTRY

from contracts.customer.v1 import customer_pb2 as pb
from contracts.events.v1 import envelope_pb2
from contracts.interaction.v1 import interaction_pb2 as interaction_pb
from troupe import CommandContext, EventContext, Service
from troupe.bus import clients
from troupe.bus.topics import EVENT_TYPE_HEADER, ensure_topics
from troupe.service import records
from troupe.service.declaration import Cause, Command
from troupe.service.processor import RetryPolicy
from troupe.service.runtime import Runtime, RuntimeOptions
from troupe.settings import KafkaSettings

from ..waiting import wait_until
from .helpers import read_events, records_of, unique_ids

pytestmark = pytest.mark.integration


def greeting_service(failures: dict[str, int], one_command_per_caller: bool = False) -> Service[pb.Customer]:
    """Registers every caller of an arriving call as a customer; the registration
    fails the given number of times for some callers. With ``one_command_per_caller``
    the command's id is the caller's, so every call of a caller sends the same command."""
    service = Service("customer", entity=pb.Customer, id_field="customer_id")

    @service.on(
        "interaction.events",
        "InteractionReceived",
        state=interaction_pb.Interaction,
        sends=(pb.RegisterCustomerRequest,),
    )
    def register_caller(call: interaction_pb.Interaction, context: EventContext) -> Command:
        command_id = str(uuid.uuid5(uuid.NAMESPACE_URL, call.caller)) if one_command_per_caller else None
        request = pb.RegisterCustomerRequest(customer_id=call.caller, name=f"Caller {call.caller}")
        return Command(call.caller, request, command_id=command_id)

    @service.command(pb.RegisterCustomerRequest, emits="CustomerRegistered")
    def register(
        current: pb.Customer | None, request: pb.RegisterCustomerRequest, context: CommandContext
    ) -> pb.Customer:
        if failures.get(request.customer_id, 0) > 0:
            failures[request.customer_id] -= 1
            raise TimeoutError("transient failure")
        return pb.Customer(customer_id=request.customer_id, name=request.name)

    return service


def call_arrives(kafka: KafkaSettings, caller: str) -> envelope_pb2.Envelope:
    """The interaction service's event of a call from ``caller`` (played by the test)."""
    return interaction_event(kafka, "InteractionReceived", caller)[0]


def interaction_event(kafka: KafkaSettings, event_type: str, caller: str) -> tuple[envelope_pb2.Envelope, Any]:
    """An event of the interaction service (played by the test), and its record."""
    interaction_id = str(uuid.uuid4())
    event = records.event(
        source="interaction",
        event_type=event_type,
        entity_id=interaction_id,
        version=1,
        state=interaction_pb.Interaction(interaction_id=interaction_id, caller=caller),
        cause=Cause(str(uuid.uuid4()), interaction_id, records.system("test"), interaction_id),
    )
    producer = clients.producer(kafka)
    delivered: list[Any] = []
    producer.produce(
        "interaction.events",
        event.SerializeToString(),
        interaction_id,
        headers=[(EVENT_TYPE_HEADER, event_type.encode())],
        on_delivery=lambda _error, message: delivered.append(message),
    )
    assert producer.flush(10) == 0
    return event, delivered[0]


def decided_at_once() -> float:
    found = REGISTRY.get_sample_value("troupe_commands_decided_at_once_total", {"service": "customer"})
    return found or 0.0


def wait_consumed(kafka: KafkaSettings, group: str, record: Any, timeout: float = 30) -> None:
    """Until ``group`` has committed an offset past ``record`` (a consumed or delivered message)."""
    consumer = clients.consumer(kafka, group_id=group)
    where = f"{record.topic()}[{record.partition()}]@{record.offset()}"
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            (committed,) = consumer.committed([TopicPartition(record.topic(), record.partition())], timeout=10)
            if committed.offset > record.offset():
                return
            time.sleep(0.2)
        raise AssertionError(f"{group} has not consumed {where} in {timeout} s")
    finally:
        consumer.close()


@contextlib.contextmanager
def running_alone(kafka: KafkaSettings, service: Service[Any], options: RuntimeOptions) -> Iterator[Runtime[Any]]:
    """The service as the only instance, once it owns every partition (it does when it
    has restored them from its topic)."""
    ensure_topics(kafka, ["interaction.events", "customer.commands", "customer.events", "customer.dlq"])
    runtime = Runtime(service, kafka, options).start()
    try:
        wait_until(
            lambda: len(runtime.processor.owned_partitions) == kafka.partitions,
            timeout=60,
            what="the service never owned all its partitions",
        )
        yield runtime
    finally:
        runtime.stop()


def test_a_reaction_to_its_own_service_is_decided_at_once_and_its_event_is_the_only_record(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    # given the service running alone (so it owns every partition)
    (caller,) = unique_ids("+7916", 1)
    with running_alone(kafka, greeting_service({}), RuntimeOptions(state_dir=tmp_path)) as runtime:
        decided_before = decided_at_once()
        # when a call arrives
        call, call_record = interaction_event(kafka, "InteractionReceived", caller)

        # then the caller is registered once, in the reaction's transaction, caused by the call itself
        events = read_events(kafka, "customer.events", {caller}, expected=1, timeout=30)
        assert [(e.type, e.entity_version) for e in events] == [("CustomerRegistered", 1)]
        assert events[0].causation_id == call.event_id
        assert events[0].correlation_id == call.correlation_id
        assert decided_at_once() - decided_before == 1
        # and the command left no record of its own to read back
        assert records_of(kafka, "customer.commands", caller) == []
        # the event's record names its type in a header, for consumers to skip by
        (event_record,) = records_of(kafka, "customer.events", caller)
        assert (EVENT_TYPE_HEADER, b"CustomerRegistered") in event_record.headers()
        # and the call is consumed, and the store knows the customer
        wait_consumed(kafka, "customer", call_record)
        store = runtime.replica.store
        wait_until(lambda: store.get("customer.events", caller) is not None, 10, "the store never had the customer")
        stored = store.get("customer.events", caller)
        assert stored is not None
        assert stored.version == 1


def test_a_reaction_whose_command_fails_at_first_leaves_it_to_its_record_with_one_effect(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    # given the service running alone, whose registration of this caller fails once
    (caller,) = unique_ids("+7916", 1)
    options = RuntimeOptions(state_dir=tmp_path, retry=RetryPolicy(attempts=3, first_backoff=0.01))
    with running_alone(kafka, greeting_service({caller: 1}), options):
        decided_before = decided_at_once()
        # when a call arrives
        call = call_arrives(kafka, caller)

        # then the command goes to the commands topic and its retry registers the caller once
        events = read_events(kafka, "customer.events", {caller}, expected=1, timeout=30)
        assert [(e.type, e.entity_version) for e in events] == [("CustomerRegistered", 1)]
        (command_record,) = records_of(kafka, "customer.commands", caller)
        command = envelope_pb2.CommandEnvelope.FromString(command_record.value())
        assert command.payload.TypeName() == pb.RegisterCustomerRequest.DESCRIPTOR.full_name
        # and the causation chain is event -> command -> event
        assert command.causation_id == call.event_id
        assert events[0].causation_id == command.command_id
        assert events[0].correlation_id == command.correlation_id == call.correlation_id
        assert decided_at_once() == decided_before
        wait_consumed(kafka, "customer", command_record)
        assert len(read_events(kafka, "customer.events", {caller}, expected=1, timeout=5)) == 1


def test_a_command_decided_at_once_and_sent_again_with_its_id_has_one_effect(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    # given the service running alone, whose reaction sends the same command for every call of a caller
    (caller,) = unique_ids("+7916", 1)
    with running_alone(kafka, greeting_service({}, one_command_per_caller=True), RuntimeOptions(state_dir=tmp_path)):
        # when the caller calls twice
        first = call_arrives(kafka, caller)
        _, second = interaction_event(kafka, "InteractionReceived", caller)

        # then the second call is consumed and the caller is registered once, by the first
        wait_consumed(kafka, "customer", second)
        events = read_events(kafka, "customer.events", {caller}, expected=1, timeout=30)
        assert [(e.type, e.entity_version, e.causation_id) for e in events] == [
            ("CustomerRegistered", 1, first.event_id)
        ]
        assert records_of(kafka, "customer.commands", caller) == []


def committed_transactions() -> float:
    found = REGISTRY.get_sample_value("troupe_transactions_total", {"service": "customer", "outcome": "committed"})
    return found or 0.0


def test_events_a_service_does_not_react_to_cost_no_transaction_and_are_consumed(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    # given the service running alone, idle
    with running_alone(kafka, greeting_service({}), RuntimeOptions(state_dir=tmp_path)):
        transactions_before = committed_transactions()
        # when the interaction service reports a change the customer service does not react to
        _, record = interaction_event(kafka, "InteractionQueued", "+79160000000")
        # then the service consumes it (its group's offset moves past it) without a transaction
        wait_consumed(kafka, "customer", record)
        assert committed_transactions() == transactions_before
        # and an event it does react to, right after, still has its effect in a transaction
        (caller,) = unique_ids("+7916", 1)
        call_arrives(kafka, caller)
        assert len(read_events(kafka, "customer.events", {caller}, expected=1, timeout=30)) == 1
        assert committed_transactions() > transactions_before
