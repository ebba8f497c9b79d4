"""Helpers of the runtime's integration tests: a service as a real process,
reading a topic back, sending many commands, and a customer service whose
loyalty points may wait."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from contracts.customer.v1 import customer_pb2 as pb
from contracts.events.v1 import envelope_pb2
from services.customer.service import award_loyalty_points, register
from troupe.bus import clients
from troupe.bus.topics import ensure_topics
from troupe.service.declaration import Service
from troupe.settings import KafkaSettings

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class ServiceProcess:
    """One instance of a service run as ``python -m services.<name>``."""

    name: str
    kafka: KafkaSettings
    state_dir: Path
    instance: str = "0"
    log_path: Path = field(init=False)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.log_path = self.state_dir / f"{self.name}-{self.instance}.log"

    def start(self) -> ServiceProcess:
        env = {
            **os.environ,
            "TROUPE_KAFKA__BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "TROUPE_KAFKA__PARTITIONS": str(self.kafka.partitions),
            "TROUPE_STATE_DIR": str(self.state_dir),
            "TROUPE_INSTANCE": self.instance,
        }
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
        return self

    def kill(self) -> None:
        assert self.process is not None
        if not self.alive():
            return
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def read_events(
    kafka: KafkaSettings,
    topic: str,
    entity_ids: set[str],
    expected: int,
    timeout: float = 120.0,
) -> list[envelope_pb2.Envelope]:
    """Every committed event of ``entity_ids`` in ``topic``; waits until at least
    ``expected`` have arrived, then reads on until the topic's end to catch extras."""
    ensure_topics(kafka, [topic])
    consumer: Consumer = clients.consumer(kafka, group_id=None)
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        found: list[envelope_pb2.Envelope] = []
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.consume(5_000, 0.2)
            for message in batch:
                key, value = message.key(), message.value()
                if message.error() or key is None or value is None:
                    continue
                if key.decode() in entity_ids:
                    found.append(envelope_pb2.Envelope.FromString(value))
            if batch:
                quiet_since = time.monotonic()
            elif len(found) >= expected and time.monotonic() - quiet_since > 1.0:
                return found
        return found
    finally:
        consumer.close()


def records_of(kafka: KafkaSettings, topic: str, key: str) -> list[Any]:
    """The committed records of ``topic`` under ``key``."""
    consumer = clients.consumer(kafka, group_id=None)
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        found = []
        while batch := consumer.consume(5_000, 2.0):
            found += [m for m in batch if m.error() is None and m.key() == key.encode()]
        return found
    finally:
        consumer.close()


def count_events(kafka: KafkaSettings, topic: str, entity_ids: set[str]) -> int:
    return len(read_events(kafka, topic, entity_ids, expected=0, timeout=5))


def unique_ids(prefix: str, count: int) -> list[str]:
    run = uuid.uuid4().hex[:6]
    return [f"{prefix}-{run}-{i}" for i in range(count)]


def by_entity(events: Iterable[envelope_pb2.Envelope]) -> dict[str, list[envelope_pb2.Envelope]]:
    grouped: dict[str, list[envelope_pb2.Envelope]] = {}
    for event in events:
        grouped.setdefault(event.entity_id, []).append(event)
    return grouped


def patient_customer() -> Service[pb.Customer]:
    """The customer service's registration (urgent) and loyalty points (not urgent:
    they may wait for company), with the service's own rules."""
    service = Service("customer", entity=pb.Customer, id_field="customer_id")
    service.command(pb.RegisterCustomerRequest, emits="CustomerRegistered")(register)
    service.command(pb.AwardLoyaltyPointsRequest, emits="LoyaltyPointsChanged", urgent=False)(award_loyalty_points)
    return service
