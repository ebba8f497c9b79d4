"""The whole contact-center cascade in one process, against the real broker: the
six services, the telephony adapters, and what the tests read back from Kafka."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
from fastapi.testclient import TestClient
from google.protobuf.message import Message

from adapters.telephony_ami.app import create_app as ami_app
from adapters.telephony_webhook.app import create_app as webhook_app
from contracts.events.v1 import envelope_pb2
from contracts.operator.v1 import operator_pb2 as operator_pb
from services.customer.app import customer
from services.interaction.app import interaction
from services.notification.app import notification
from services.operator import service as operator_rules
from services.operator.app import operator
from services.routing import service as routing_rules
from services.routing.app import routing
from services.ticket.app import ticket
from troupe.bus import clients
from troupe.bus.topics import ensure_topics
from troupe.service import records
from troupe.service.declaration import Service
from troupe.service.runtime import Runtime, RuntimeOptions
from troupe.service.sender import CommandSender
from troupe.settings import KafkaSettings

from ..waiting import wait_until

SERVICES: list[Service[Any]] = [customer, operator, interaction, routing, ticket, notification]


@dataclass
class Cascade:
    kafka: KafkaSettings
    runtimes: dict[str, Runtime[Any]] = field(default_factory=dict)
    sender: CommandSender | None = None

    def start(self, state_dir: Path) -> Cascade:
        operator_rules.POLICY.wrap_up = timedelta(seconds=0.2)
        routing_rules.POLICY.accept_timeout = timedelta(seconds=30)
        routing_rules.POLICY.widen_after = timedelta(seconds=60)
        prepare_topics(self.kafka)
        for service in SERVICES:
            options = RuntimeOptions(state_dir=state_dir, instance="cascade", grpc_address=None)
            self.runtimes[service.name] = Runtime(service, self.kafka, options).start()
        self.sender = CommandSender(self.kafka, "cascade-test")
        return self

    def stop(self) -> None:
        if self.sender:
            self.sender.close()
        for runtime in self.runtimes.values():
            runtime.stop()

    def __getitem__(self, service: str) -> Runtime[Any]:
        return self.runtimes[service]

    def webhook(self) -> TestClient:
        assert self.sender
        return TestClient(webhook_app(self.sender))

    def ami(self) -> TestClient:
        assert self.sender
        return TestClient(ami_app(self.sender))

    def submit(self, service: str, payload: Message, who: str = "tester") -> int:
        return self.runtimes[service].submit(payload, actor=records.user(who)).version

    def state(self, service: str, entity_id: str) -> Any:
        found = self.runtimes[service].read(entity_id)
        return found.state if found else None

    def wait_for(self, service: str, entity_id: str, check: Callable[[Any], bool], timeout: float = 20.0) -> Any:
        def current() -> Any:
            found = self.state(service, entity_id)
            return found if found is not None and check(found) else None

        return wait_until(current, timeout, f"{service} {entity_id}")

    def operator_on_duty(self, site: str, skills: tuple[str, ...] = ("orders",), name: str = "") -> str:
        operator_id = f"op-{uuid.uuid4().hex[:8]}"
        self.submit(
            "operator",
            operator_pb.RegisterOperatorRequest(
                operator_id=operator_id, name=name or operator_id, site=site, skills=skills
            ),
        )
        self.submit(
            "operator",
            operator_pb.SetPresenceRequest(operator_id=operator_id, presence=operator_pb.PRESENCE_AVAILABLE),
            who=operator_id,
        )
        # On duty once routing sees it available: its projection reads each partition of
        # operator.events on its own, so an operator set available later, on another
        # partition, could otherwise reach routing first.
        if "routing" in self.runtimes:
            views = self.runtimes["routing"].views

            def seen_available() -> bool:
                found = views.get(operator.events_topic, operator_id)
                return found is not None and found.state.presence == operator_pb.PRESENCE_AVAILABLE

            wait_until(seen_available, 20, f"routing to see {operator_id} available")
        return operator_id


def prepare_topics(kafka: KafkaSettings, timeout: float = 30.0) -> None:
    """Creates every topic of the cascade and waits until the broker lists them
    (a runtime that starts right after creating its topics may not see them yet)."""
    names = [f"{service.name}.{kind}" for service in SERVICES for kind in ("events", "commands", "dlq")]
    ensure_topics(kafka, names)
    config: dict[str, str | int | float | bool] = dict(kafka.client_config())
    admin = AdminClient(config)
    wait_until(lambda: set(names) <= set(admin.list_topics(timeout=10).topics), timeout, "the topics")


def history(
    kafka: KafkaSettings, topic: str, keep: Callable[[envelope_pb2.Envelope], bool]
) -> Iterator[envelope_pb2.Envelope]:
    """Every committed event of ``topic`` so far that ``keep`` selects, in offset order
    per partition."""
    for value in read_topic(kafka, topic):
        event = envelope_pb2.Envelope.FromString(value)
        if keep(event):
            yield event


def commands(kafka: KafkaSettings, topic: str) -> list[envelope_pb2.CommandEnvelope]:
    return [envelope_pb2.CommandEnvelope.FromString(v) for v in read_topic(kafka, topic)]


def read_topic(kafka: KafkaSettings, topic: str) -> list[bytes]:
    consumer = clients.consumer(kafka, group_id=None)
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {}
        assignment = []
        for partition in partitions:
            low, high = clients.watermarks(consumer, TopicPartition(topic, partition))
            if high > low:
                ends[partition] = high
                assignment.append(TopicPartition(topic, partition, low))
        consumer.assign(assignment)
        values: list[bytes] = []
        done: set[int] = set()
        deadline = time.monotonic() + 30
        while len(done) < len(ends) and time.monotonic() < deadline:
            for message in consumer.consume(10_000, 0.2):
                if message.error() is not None:
                    continue
                values.append(message.value() or b"")
                partition, offset = message.partition() or 0, message.offset() or 0
                if offset >= ends[partition] - 1:
                    done.add(partition)
            # Transaction markers take offsets too: a partition is done at its end.
            for partition in set(ends) - done:
                position = consumer.position([TopicPartition(topic, partition)])[0].offset
                if position >= ends[partition]:
                    done.add(partition)
        return values
    finally:
        consumer.close()
