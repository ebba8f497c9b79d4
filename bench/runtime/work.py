"""The work every contestant does per command, for the loops written without Troupe.

Decode the ``CommandEnvelope``, take the entity's current state, apply the customer
service's rule (``services/customer/service.py``: register a customer; award
loyalty points, never below zero), and build the ``Envelope`` of the event with the
full new state, exactly as the Troupe runtime writes it (same fields, event id,
occurred-at, correlation and causation ids, actor, source).

Only protobuf and the generated contracts are imported here, so the same code runs
in the Quix Streams virtualenv, whose package pins differ from the project's.
"""

from __future__ import annotations

import time
import uuid

from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.timestamp_pb2 import Timestamp

from contracts.customer.v1 import customer_pb2 as pb
from contracts.events.v1 import envelope_pb2

SOURCE = "customer"
REGISTER = pb.RegisterCustomerRequest.DESCRIPTOR.full_name
AWARD = pb.AwardLoyaltyPointsRequest.DESCRIPTOR.full_name
TRACEPARENT = "traceparent"


class RefusedError(Exception):
    """The rule refuses the command (the benchmark workload never triggers it)."""


def decode(value: bytes | None) -> envelope_pb2.CommandEnvelope:
    return envelope_pb2.CommandEnvelope.FromString(value or b"")


def _register(current: pb.Customer | None, request: pb.RegisterCustomerRequest) -> pb.Customer:
    if current is not None:
        raise RefusedError(f"customer {request.customer_id} is already registered")
    if not request.name.strip():
        raise RefusedError("a customer needs a name")
    return pb.Customer(
        customer_id=request.customer_id,
        name=request.name.strip(),
        email=request.email,
        preferred_channel=request.preferred_channel,
    )


def _award(current: pb.Customer | None, request: pb.AwardLoyaltyPointsRequest) -> pb.Customer:
    if current is None:
        raise RefusedError(f"customer {request.customer_id} does not exist")
    if current.loyalty_points + request.points < 0:
        raise RefusedError(f"cannot redeem {-request.points} points")
    current.loyalty_points += request.points
    return current


def decide(command: envelope_pb2.CommandEnvelope, version: int, state: bytes) -> tuple[bytes, bytes]:
    """(serialized event Envelope, new state bytes) for a command applied to an
    entity at ``version`` (0: it does not exist) with state ``state``."""
    current = pb.Customer.FromString(state) if version else None
    payload = command.payload
    kind = payload.TypeName()
    if kind == AWARD:
        new = _award(current, pb.AwardLoyaltyPointsRequest.FromString(payload.value))
        event_type = "LoyaltyPointsChanged"
    elif kind == REGISTER:
        new = _register(current, pb.RegisterCustomerRequest.FromString(payload.value))
        event_type = "CustomerRegistered"
    else:
        raise RefusedError(f"no handler for {kind!r}")
    packed = AnyMessage()
    packed.Pack(new)
    occurred_at = Timestamp()
    occurred_at.FromNanoseconds(time.time_ns())
    event = envelope_pb2.Envelope(
        event_id=str(uuid.uuid4()),
        type=event_type,
        entity_id=command.entity_id,
        entity_version=version + 1,
        occurred_at=occurred_at,
        correlation_id=command.correlation_id,
        causation_id=command.command_id,
        actor=command.actor,
        state=packed,
        source=SOURCE,
    )
    return event.SerializeToString(), packed.value
