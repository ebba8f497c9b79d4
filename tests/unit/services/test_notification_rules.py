"""The notification service's rules: who is told what, on which channel."""

from __future__ import annotations

import pytest

from contracts.customer.v1 import customer_pb2 as customer
from contracts.notification.v1 import notification_pb2 as pb
from contracts.ticket.v1 import ticket_pb2 as ticket
from services.notification import service as rules
from troupe import UNCHANGED, Rejected

from .world import World, command_context, event_context

CUSTOMERS = "customer.events"


def anna(
    channel: int = customer.CHANNEL_SMS,
    phones: tuple[str, ...] = ("+79161234567",),
    email: str = "anna@example.com",
) -> customer.Customer:
    return customer.Customer(
        customer_id="anna",
        name="Anna",
        phones=phones,
        email=email,
        preferred_channel=channel,  # type: ignore[arg-type]
    )


def request(reason: str = "resolved") -> pb.NotifyCustomerRequest:
    return pb.NotifyCustomerRequest(
        notification_id="n-1",
        customer_id="anna",
        ticket_id="t-123456789",
        reason=reason,
        ticket_subject="Late delivery",
        resolution="Delivered today",
    )


def test_a_resolved_ticket_asks_for_one_notification_per_ticket_event() -> None:
    resolved = ticket.Ticket(ticket_id="t-1", customer_id="anna", subject="Late", resolution="Done")
    first = rules.on_ticket(resolved, event_context("TicketResolved", version=3))
    again = rules.on_ticket(resolved, event_context("TicketResolved", version=3))
    assert first.entity_id == again.entity_id
    assert isinstance(first.payload, pb.NotifyCustomerRequest)
    assert first.payload.reason == "resolved"
    assert first.payload.resolution == "Done"


def test_a_ticket_resolved_again_after_reopening_is_announced_again() -> None:
    # given a ticket resolved at version 3, reopened, and resolved again at version 5
    resolved = ticket.Ticket(ticket_id="t-1", customer_id="anna", subject="Late", resolution="Done")
    first = rules.on_ticket(resolved, event_context("TicketResolved", version=3))
    # when the second resolution arrives
    second = rules.on_ticket(resolved, event_context("TicketResolved", version=5))
    # then it asks for a notification of its own
    assert second.entity_id != first.entity_id


@pytest.mark.parametrize(
    ("profile", "channel", "address"),
    [
        (anna(customer.CHANNEL_SMS), pb.CHANNEL_SMS, "+79161234567"),
        (anna(customer.CHANNEL_EMAIL), pb.CHANNEL_EMAIL, "anna@example.com"),
        (anna(customer.CHANNEL_EMAIL, email=""), pb.CHANNEL_SMS, "+79161234567"),
        (anna(customer.CHANNEL_SMS, phones=()), pb.CHANNEL_EMAIL, "anna@example.com"),
    ],
)
def test_the_preferred_channel_is_used_when_possible(
    profile: customer.Customer, channel: int, address: str
) -> None:
    w = World().given(CUSTOMERS, "anna", profile)
    notification = rules.notify(None, request(), command_context(w))
    assert (notification.channel, notification.address) == (channel, address)
    assert notification.status == pb.STATUS_PENDING
    assert "Delivered today" in notification.text


def test_a_customer_without_phone_or_email_cannot_be_notified() -> None:
    w = World().given(CUSTOMERS, "anna", anna(phones=(), email=""))
    with pytest.raises(Rejected, match="neither a phone nor an e-mail"):
        rules.notify(None, request(), command_context(w))


def test_a_customer_not_known_yet_is_retried_not_refused() -> None:
    with pytest.raises(rules.CustomerNotKnownYet):
        rules.notify(None, request(), command_context(World()))


def test_a_delivered_notification_is_sent_and_cannot_fail_afterwards() -> None:
    pending = pb.Notification(notification_id="n-1", status=pb.STATUS_PENDING)
    sent = rules.mark_sent(
        pending,
        pb.MarkSentRequest(notification_id="n-1", provider_message_id="sms-1", attempts=2),
        command_context(),
    )
    assert isinstance(sent, pb.Notification)
    assert (sent.status, sent.provider_message_id, sent.attempts) == (pb.STATUS_SENT, "sms-1", 2)
    again = rules.mark_sent(sent, pb.MarkSentRequest(notification_id="n-1"), command_context())
    assert again is UNCHANGED
    with pytest.raises(Rejected, match="already STATUS_SENT"):
        rules.mark_failed(
            sent, pb.MarkFailedRequest(notification_id="n-1", error="x"), command_context()
        )
