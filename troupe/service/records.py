"""Building and reading the records of the layer's topics."""

from __future__ import annotations

import functools
import random
import time
from dataclasses import dataclass

from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from contracts.events.v1 import envelope_pb2
from troupe.service.declaration import Cause, Command


def new_id() -> str:
    """A random (version 4) UUID. Ids need to be unique, not unguessable, and
    os.urandom per record is a system call that costs more than the rest of the
    record's handling; ``random`` is seeded from os.urandom once per process.
    Formatted by hand: a ``uuid.UUID`` object per record costs 3 times as much."""
    h = f"{random.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


# The RFC 9562 variant (binary 10xx) for the first hex digit of the 4th group.
VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def now() -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(time.time_ns())
    return stamp


def unix_ms(stamp: Timestamp) -> int:
    """A timestamp in Unix milliseconds (``ToMilliseconds`` without its Python checks)."""
    return stamp.seconds * 1000 + stamp.nanos // 1_000_000


def pack(message: Message) -> AnyMessage:
    packed = AnyMessage()
    pack_into(packed, message)
    return packed


def pack_into(packed: AnyMessage, message: Message) -> None:
    """``packed.Pack(message)``, with the type URL built once per message type:
    done for every record, and ``Any.Pack`` builds it in Python each time."""
    packed.type_url = _type_url(message.DESCRIPTOR.full_name)
    packed.value = message.SerializeToString()


@functools.cache
def _type_url(full_name: str) -> str:
    return f"type.googleapis.com/{full_name}"


def event(
    *,
    source: str,
    event_type: str,
    entity_id: str,
    version: int,
    state: Message,
    cause: Cause,
    occurred_at: Timestamp | None = None,
) -> envelope_pb2.Envelope:
    """An event; ``occurred_at`` defaults to now (a transaction's events may share one)."""
    envelope = envelope_pb2.Envelope(
        event_id=new_id(),
        type=event_type,
        entity_id=entity_id,
        entity_version=version,
        occurred_at=occurred_at or now(),
        correlation_id=cause.correlation_id,
        causation_id=cause.record_id,
        actor=cause.actor,
        source=source,
    )
    pack_into(envelope.state, state)
    return envelope


def command(command: Command, cause: Cause, command_id: str | None = None) -> envelope_pb2.CommandEnvelope:
    envelope = envelope_pb2.CommandEnvelope(
        command_id=command_id or command.command_id or new_id(),
        type=command.type,
        entity_id=command.entity_id,
        issued_at=now(),
        correlation_id=cause.correlation_id,
        causation_id=cause.record_id,
        actor=cause.actor,
    )
    pack_into(envelope.payload, command.payload)
    if command.expected_version is not None:
        envelope.expected_version = command.expected_version
    return envelope


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a command: the event it produced, or why it produced none."""

    command_id: str
    entity_id: str
    version: int = 0
    event_id: str = ""
    error: str = ""
    reason: int = envelope_pb2.DEAD_LETTER_REASON_UNSPECIFIED

    @property
    def accepted(self) -> bool:
        return not self.error


def user(subject: str, name: str = "") -> envelope_pb2.Actor:
    return envelope_pb2.Actor(kind=envelope_pb2.ACTOR_KIND_USER, id=subject, name=name or subject)


def system(name: str) -> envelope_pb2.Actor:
    return envelope_pb2.Actor(kind=envelope_pb2.ACTOR_KIND_EXTERNAL_SYSTEM, id=name, name=name)


def service_actor(name: str) -> envelope_pb2.Actor:
    return envelope_pb2.Actor(kind=envelope_pb2.ACTOR_KIND_SERVICE, id=name, name=name)
