"""Ids and events as the runtime builds them."""

from __future__ import annotations

import uuid

from contracts.customer.v1 import customer_pb2 as pb
from troupe.service import records
from troupe.service.declaration import Cause


def test_new_ids_are_distinct_version_4_uuids_in_canonical_form() -> None:
    ids = [records.new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_an_event_carries_its_cause_and_the_given_time() -> None:
    # given a command's cause and one time for a transaction's events
    cause = Cause("command-1", "call-7", records.user("op-3", "Olga"), "c-1")
    at = records.now()
    # when the event is built
    event = records.event(
        source="customer",
        event_type="CustomerRegistered",
        entity_id="c-1",
        version=2,
        state=pb.Customer(customer_id="c-1", name="Anna"),
        cause=cause,
        occurred_at=at,
    )
    # then it names its cause, the time, and packs the full state
    assert (event.causation_id, event.correlation_id, event.actor.name) == ("command-1", "call-7", "Olga")
    assert event.occurred_at == at
    state = pb.Customer()
    assert event.state.Unpack(state)
    assert state.name == "Anna"
