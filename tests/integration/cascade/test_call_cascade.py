"""A call through the cascade alone, against the real broker: from either telephony
adapter to the right operator, with the caller identified or created; queued when
nobody is available; a ticket resolved reaches the customer by SMS or e-mail."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from contracts.customer.v1 import customer_pb2 as customer_pb
from contracts.events.v1 import envelope_pb2
from contracts.interaction.v1 import interaction_pb2 as interaction_pb
from contracts.notification.v1 import notification_pb2 as notification_pb
from contracts.operator.v1 import operator_pb2 as operator_pb
from contracts.ticket.v1 import ticket_pb2 as ticket_pb
from services.customer.app import customer
from services.notification.service import notification_id
from troupe.service import records

from ..waiting import wait_until
from .conftest import Gateways
from .harness import Cascade, commands, history, read_topic

pytestmark = pytest.mark.integration


def webhook_call(cascade: Cascade, site: str, caller: str, line: str = "orders") -> str:
    response = cascade.webhook().post(
        f"/sites/{site}/events",
        json={
            "id": f"evt-{uuid.uuid4().hex}",
            "type": "call.started",
            "occurred_at": datetime.now(UTC).isoformat(),
            "call": {"id": uuid.uuid4().hex, "from": caller, "line": line},
        },
    )
    assert response.status_code == 202, response.text
    return str(response.json()["interaction_id"])


def assigned(cascade: Cascade, interaction_id: str) -> interaction_pb.Interaction:
    found: interaction_pb.Interaction = cascade.wait_for(
        "interaction",
        interaction_id,
        lambda i: i.state == interaction_pb.STATE_ASSIGNED and bool(i.customer_id),
    )
    return found


def test_a_webhook_call_reaches_the_longest_idle_skilled_operator_at_its_site(
    cascade: Cascade, site: str
) -> None:
    # given operators: one elsewhere, one without the skill, then two who can take it
    cascade.operator_on_duty(f"{site}-elsewhere")
    cascade.operator_on_duty(site, skills=("returns",))
    longest_idle = cascade.operator_on_duty(site)
    cascade.operator_on_duty(site)
    # when an unknown caller calls the site's "orders" line
    interaction_id = webhook_call(cascade, site, "8 (916) 555-01-01")
    # then the longest-idle operator with the skill at the site has it, and is busy
    call = assigned(cascade, interaction_id)
    assert call.operator_id == longest_idle
    person = cascade.wait_for(
        "operator", longest_idle, lambda o: o.presence == operator_pb.PRESENCE_BUSY
    )
    assert person.current_interaction_id == interaction_id
    # and the caller got a profile with their number
    profile = cascade.wait_for("customer", call.customer_id, lambda _c: True)
    assert list(profile.phones) == ["+79165550101"]
    # and every event of the call carries the call as correlation id
    types = {
        event.type
        for topic in ("interaction.events", "customer.events", "routing.events", "operator.events")
        for event in history(cascade.kafka, topic, lambda e: e.correlation_id == interaction_id)
    }
    assert {
        "InteractionReceived",
        "CallerRegistered",
        "CustomerAttached",
        "OperatorOffered",
        "OperatorReserved",
        "InteractionAssigned",
    } <= types


def test_a_known_caller_through_the_manager_interface_is_identified(
    cascade: Cascade, site: str
) -> None:
    # given a registered customer and an operator at the site
    customer_id = f"cust-{uuid.uuid4().hex[:8]}"
    cascade.submit(
        "customer",
        customer_pb.RegisterCustomerRequest(
            customer_id=customer_id, name="Anna", phone="+7 916 555-02-02"
        ),
    )
    cascade["customer"].read(customer_id, min_version=1)
    olga = cascade.operator_on_duty(site)
    # when she calls a PBX that speaks the manager interface
    response = cascade.ami().post(
        f"/sites/{site}/ami",
        content=f"Event: Newchannel\nUniqueid: {uuid.uuid4().hex}\nCallerIDNum: 89165550202\n"
        "Exten: orders\n\n",
    )
    assert response.status_code == 202, response.text
    (interaction_id,) = response.json()["interaction_ids"]
    # then the call is hers and goes to the operator
    call = assigned(cascade, interaction_id)
    assert call.customer_id == customer_id
    assert call.operator_id == olga


def test_a_repeated_delivery_has_one_effect(cascade: Cascade, site: str) -> None:
    event = {
        "id": f"evt-{uuid.uuid4().hex}",
        "type": "call.started",
        "occurred_at": datetime.now(UTC).isoformat(),
        "call": {"id": uuid.uuid4().hex, "from": "+79165550303", "line": "orders"},
    }
    client = cascade.webhook()
    first = client.post(f"/sites/{site}/events", json=event)
    second = client.post(f"/sites/{site}/events", json=event)
    interaction_id = first.json()["interaction_id"]
    assert second.json() == first.json()
    cascade.wait_for(
        "interaction", interaction_id, lambda i: i.state == interaction_pb.STATE_QUEUED
    )
    received = list(
        history(
            cascade.kafka,
            "interaction.events",
            lambda e: e.entity_id == interaction_id and e.type == "InteractionReceived",
        )
    )
    assert len(received) == 1


def test_with_nobody_available_a_call_waits_and_goes_to_the_first_available(
    cascade: Cascade, site: str
) -> None:
    # given a site with nobody on duty
    # when a call arrives
    interaction_id = webhook_call(cascade, site, "+79165550404")
    # then it is queued
    cascade.wait_for(
        "interaction", interaction_id, lambda i: i.state == interaction_pb.STATE_QUEUED
    )
    # when an operator becomes available
    ivan = cascade.operator_on_duty(site)
    # then the call is theirs
    assert assigned(cascade, interaction_id).operator_id == ivan


def test_a_call_ends_and_the_operator_is_available_again_after_wrap_up(
    cascade: Cascade, site: str
) -> None:
    olga = cascade.operator_on_duty(site)
    interaction_id = webhook_call(cascade, site, "+79165550505")
    assigned(cascade, interaction_id)
    answered = cascade.submit(
        "interaction", interaction_pb.AnswerInteractionRequest(interaction_id=interaction_id), olga
    )
    assert answered > 0
    cascade.submit(
        "interaction", interaction_pb.EndInteractionRequest(interaction_id=interaction_id)
    )
    cascade.wait_for(
        "interaction", interaction_id, lambda i: i.state == interaction_pb.STATE_CLOSED
    )
    person = cascade.wait_for(
        "operator", olga, lambda o: o.presence == operator_pb.PRESENCE_AVAILABLE
    )
    assert person.last_interaction_id == interaction_id


def resolve_ticket_from_call(cascade: Cascade, interaction_id: str, correlation_id: str) -> str:
    ticket_id = f"t-{uuid.uuid4().hex[:10]}"
    cascade["ticket"].submit(
        ticket_pb.OpenTicketRequest(
            ticket_id=ticket_id,
            interaction_id=interaction_id,
            category=ticket_pb.CATEGORY_DELIVERY,
            subject="Parcel is late",
        ),
        actor=records.user("olga"),
    )
    cascade["ticket"].submit(
        ticket_pb.ResolveTicketRequest(ticket_id=ticket_id, resolution="Delivered today"),
        actor=records.user("olga"),
        correlation_id=correlation_id,
    )
    return ticket_id


def test_a_resolved_ticket_reaches_the_caller_by_sms_in_one_cascade(
    cascade: Cascade, gateways: Gateways, site: str
) -> None:
    # given an unknown caller's call, taken by an operator
    cascade.operator_on_duty(site)
    interaction_id = webhook_call(cascade, site, "+79165550606")
    assigned(cascade, interaction_id)
    # when the operator opens a ticket from it and resolves it
    resolution = f"resolve-{uuid.uuid4().hex}"
    ticket_id = resolve_ticket_from_call(cascade, interaction_id, resolution)
    # then the caller gets an SMS about it
    wait_until(
        lambda: any(
            "Delivered today" in m.text and m.to == "+79165550606" for m in gateways.outbox.sent
        ),
        what="the SMS",
    )
    # and the resolution's cascade has one correlation id and the right causes
    found = wait_until(lambda: cascade_of(cascade, resolution, ticket_id))
    assert found is not None
    resolved, requested, sent = found
    notify = [
        c
        for c in commands(cascade.kafka, "notification.commands")
        if c.correlation_id == resolution
    ]
    # the request is decided in the reaction to the resolution: caused by it, no command between
    assert requested.causation_id == resolved.event_id
    assert [c.type for c in notify] == ["MarkSent"]
    mark_sent = notify[0]
    # the SMS adapter's report answers the request it delivered
    assert mark_sent.causation_id == requested.event_id
    assert sent.causation_id == mark_sent.command_id


def cascade_of(
    cascade: Cascade, correlation_id: str, ticket_id: str
) -> tuple[envelope_pb2.Envelope, ...] | None:
    resolved = [
        e
        for e in history(
            cascade.kafka, "ticket.events", lambda e: e.correlation_id == correlation_id
        )
        if e.type == "TicketResolved" and e.entity_id == ticket_id
    ]
    notices = {
        e.type: e
        for e in history(
            cascade.kafka, "notification.events", lambda e: e.correlation_id == correlation_id
        )
    }
    if not resolved or not {"NotificationRequested", "NotificationSent"} <= set(notices):
        return None
    return resolved[0], notices["NotificationRequested"], notices["NotificationSent"]


def test_merging_two_profiles_retires_the_duplicate_through_the_cascade(cascade: Cascade) -> None:
    # given two profiles of one person
    survivor, duplicate = (f"cust-{uuid.uuid4().hex[:8]}" for _ in range(2))
    phone = f"+7916{uuid.uuid4().int % 10**7:07d}"
    cascade.submit("customer", customer_pb.RegisterCustomerRequest(customer_id=survivor, name="Vera"))
    cascade.submit("customer", customer_pb.RegisterCustomerRequest(customer_id=duplicate, name="V", phone=phone))
    # when they are merged
    cascade.submit("customer", customer_pb.MergeCustomersRequest(customer_id=survivor, duplicate_id=duplicate))
    # then the survivor has the phone, and the duplicate is retired by the customer
    # service's reaction to its own event
    retired = cascade.wait_for("customer", duplicate, lambda c: bool(c.merged_into))
    assert retired.merged_into == survivor
    assert [c.state.customer_id for c in cascade["customer"].find("phone", phone)] == [survivor]


def test_a_customer_who_prefers_email_gets_an_email(cascade: Cascade, gateways: Gateways) -> None:
    customer_id = f"cust-{uuid.uuid4().hex[:8]}"
    cascade.submit(
        "customer",
        customer_pb.RegisterCustomerRequest(
            customer_id=customer_id,
            name="Boris",
            phone="+79165550707",
            email=f"{customer_id}@example.com",
            preferred_channel=customer_pb.CHANNEL_EMAIL,
        ),
    )
    wait_until(lambda: cascade["notification"].views.get(customer.events_topic, customer_id))
    ticket_id = f"t-{uuid.uuid4().hex[:10]}"
    cascade.submit(
        "ticket",
        ticket_pb.OpenTicketRequest(
            ticket_id=ticket_id,
            customer_id=customer_id,
            category=ticket_pb.CATEGORY_RETURN,
            subject="Return a kettle",
        ),
    )
    mails = wait_until(
        lambda: [m for m in gateways.mailbox.messages if m["To"] == f"{customer_id}@example.com"],
        what="the e-mail",
    )
    assert "registered" in str(mails[0]["Subject"])


def test_a_delivery_that_keeps_failing_is_in_the_dlq_not_lost(
    cascade: Cascade, gateways: Gateways
) -> None:
    # given the SMS gateway is down
    gateways.outbox.fail_next = 1_000
    try:
        customer_id = f"cust-{uuid.uuid4().hex[:8]}"
        cascade.submit(
            "customer",
            customer_pb.RegisterCustomerRequest(
                customer_id=customer_id, name="C", phone="+79165550808"
            ),
        )
        wait_until(lambda: cascade["notification"].views.get(customer.events_topic, customer_id))
        ticket_id = f"t-{uuid.uuid4().hex[:10]}"
        cascade.submit(
            "ticket",
            ticket_pb.OpenTicketRequest(
                ticket_id=ticket_id,
                customer_id=customer_id,
                category=ticket_pb.CATEGORY_ORDER,
                subject="Where is my order",
            ),
        )
        # then the notification fails after its retries, and its delivery is in the DLQ
        failed = cascade.wait_for(
            "notification",
            notification_id(ticket_id, "opened", 1),
            lambda n: n.status == notification_pb.STATUS_FAILED,
        )
        assert failed.attempts == 3
        letters = [
            envelope_pb2.DeadLetter.FromString(v)
            for v in read_topic(cascade.kafka, "notification.dlq")
        ]
        assert any(
            letter.entity_id == failed.notification_id and "503" in letter.error
            for letter in letters
        )
    finally:
        gateways.outbox.fail_next = 0
