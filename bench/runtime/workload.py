"""The commands the benchmark sends: 1,000 customers registered, then loyalty
points awarded to them round-robin, each a ``CommandEnvelope`` built with
``troupe.service.records.command`` and keyed by the customer id, with a W3C
``traceparent`` header that starts its trace."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import Producer

from contracts.customer.v1 import customer_pb2 as pb
from troupe.service import records
from troupe.service.declaration import Cause, Command

ACTOR = records.system("bench")
Headers = list[tuple[str, str | bytes | None]]


@dataclass(frozen=True, slots=True)
class Record:
    command_id: str
    key: bytes
    value: bytes
    headers: Headers
    trace_id: str


def customer_id(n: int) -> str:
    return f"bench-customer-{n:05d}"


def _record(payload: pb.RegisterCustomerRequest | pb.AwardLoyaltyPointsRequest) -> Record:
    entity_id = payload.customer_id
    correlation_id = str(uuid.uuid4())
    envelope = records.command(Command(entity_id, payload), Cause(correlation_id, correlation_id, ACTOR, entity_id))
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01".encode()
    return Record(
        envelope.command_id,
        entity_id.encode(),
        envelope.SerializeToString(),
        [("traceparent", traceparent)],
        trace_id,
    )


def points(i: int) -> int:
    return 1 + i % 10


def registrations(customers: int) -> list[Record]:
    return [
        _record(pb.RegisterCustomerRequest(customer_id=customer_id(n), name=f"Customer {n}")) for n in range(customers)
    ]


def awards(count: int, customers: int, start: int = 0) -> list[Record]:
    return [
        _record(pb.AwardLoyaltyPointsRequest(customer_id=customer_id(i % customers), points=points(i), reason="bench"))
        for i in range(start, start + count)
    ]


def awarded_points(count: int, start: int = 0) -> int:
    return sum(points(i) for i in range(start, start + count))


def fill(bootstrap: str, topic: str, batch: Sequence[Record]) -> float:
    """Produces the records (idempotent, acks=all) and returns the seconds it took."""
    started = time.perf_counter()
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    errors: list[str] = []

    def delivered(error: object, _: object) -> None:
        if error is not None:
            errors.append(str(error))

    for n, record in enumerate(batch):
        producer.produce(topic, record.value, record.key, headers=record.headers, on_delivery=delivered)
        if n % 10_000 == 0:
            producer.poll(0)
    left = producer.flush(120)
    if left or errors:
        raise RuntimeError(f"filling {topic}: {left} not delivered, errors {errors[:3]}")
    return time.perf_counter() - started
