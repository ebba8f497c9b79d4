"""The notification service's rules: telling customers about their tickets.

- When a ticket is opened or resolved, the customer gets a message on their
  preferred channel (SMS or e-mail); if that channel is not possible (no phone,
  no e-mail), on the other one.
- The channel's adapter delivers it and reports it sent; after its retries it
  reports it failed, and the delivery waits in ``notification.dlq`` to be
  retried. A notification is never dropped.
- One notification per ticket event: a redelivered ticket event does not send
  a second message. An adapter reporting the same outcome twice changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.customer.v1 import customer_pb2 as customer
from contracts.notification.v1 import notification_pb2 as pb
from contracts.ticket.v1 import ticket_pb2 as ticket
from troupe import UNCHANGED, Command, CommandContext, EventContext, Rejected, Service
from troupe.service.declaration import Unchanged

notification = Service("notification", entity=pb.Notification, id_field="notification_id")
CUSTOMERS = "customer.events"
notification.project(CUSTOMERS, customer.Customer)

REASONS = {"TicketOpened": "opened", "TicketResolved": "resolved"}


class CustomerNotKnownYet(LookupError):
    """The customer's profile has not reached this service yet: retried."""


def notification_id(ticket_id: str, reason: str, ticket_version: int) -> str:
    """One notification per ticket event: the same event delivered twice asks once,
    and a ticket resolved again after a reopening is announced again."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"troupe:notification:{ticket_id}:{reason}:{ticket_version}"))


def channel_and_address(profile: customer.Customer) -> tuple[int, str]:
    phone = profile.phones[0] if profile.phones else ""
    by_sms = (pb.CHANNEL_SMS, phone)
    by_email = (pb.CHANNEL_EMAIL, profile.email)
    preferred, other = (
        (by_email, by_sms)
        if profile.preferred_channel == customer.CHANNEL_EMAIL
        else (by_sms, by_email)
    )
    for channel, address in (preferred, other):
        if address:
            return channel, address
    raise Rejected(f"customer {profile.customer_id} has neither a phone nor an e-mail")


def message(request: pb.NotifyCustomerRequest, profile: customer.Customer) -> tuple[str, str]:
    number = request.ticket_id[:8]
    if request.reason == "opened":
        subject = f"Your request {number} is registered"
        text = (
            f"Hello {profile.name}, we have registered your request {number} "
            f"({request.ticket_subject}). We will get back to you soon."
        )
    else:
        subject = f"Your request {number} is resolved"
        text = f"Hello {profile.name}, your request {number} is resolved: {request.resolution}"
    return subject, text


@notification.command(pb.NotifyCustomerRequest, emits="NotificationRequested")
def notify(
    current: pb.Notification | None, request: pb.NotifyCustomerRequest, context: CommandContext
) -> pb.Notification:
    if current is not None:
        raise Rejected(f"notification {request.notification_id} was already requested")
    found = context.views.get(CUSTOMERS, request.customer_id)
    if found is None:
        raise CustomerNotKnownYet(f"customer {request.customer_id} is not known here yet")
    profile: customer.Customer = found.state
    channel, address = channel_and_address(profile)
    subject, text = message(request, profile)
    requested = pb.Notification(
        notification_id=request.notification_id,
        customer_id=request.customer_id,
        ticket_id=request.ticket_id,
        reason=request.reason,
        channel=channel,  # type: ignore[arg-type]
        address=address,
        subject=subject,
        text=text,
        status=pb.STATUS_PENDING,
    )
    requested.requested_at.FromDatetime(datetime.now(UTC))
    return requested


@notification.command(pb.MarkSentRequest, emits="NotificationSent")
def mark_sent(
    current: pb.Notification | None, request: pb.MarkSentRequest, _context: CommandContext
) -> pb.Notification | Unchanged:
    if current is not None and current.status == pb.STATUS_SENT:
        return UNCHANGED  # delivered again after a restart: the gateway dropped the repeat
    current = _pending(current, request.notification_id)
    current.status = pb.STATUS_SENT
    current.provider_message_id = request.provider_message_id
    current.attempts = request.attempts
    current.sent_at.FromDatetime(datetime.now(UTC))
    return current


@notification.command(pb.MarkFailedRequest, emits="NotificationFailed")
def mark_failed(
    current: pb.Notification | None, request: pb.MarkFailedRequest, _context: CommandContext
) -> pb.Notification:
    current = _pending(current, request.notification_id)
    current.status = pb.STATUS_FAILED
    current.error = request.error
    current.attempts = request.attempts
    return current


def _pending(current: pb.Notification | None, notification_id: str) -> pb.Notification:
    if current is None:
        raise Rejected(f"notification {notification_id} does not exist")
    if current.status != pb.STATUS_PENDING:
        raise Rejected(
            f"notification {notification_id} is already {pb.Status.Name(current.status)}"
        )
    return current


@notification.on(
    "ticket.events",
    *REASONS,
    state=ticket.Ticket,
    sends=(pb.NotifyCustomerRequest,),
)
def on_ticket(changed: ticket.Ticket, context: EventContext) -> Command:
    reason = REASONS[context.event_type]
    notification_key = notification_id(changed.ticket_id, reason, context.entity_version)
    return Command(
        notification_key,
        pb.NotifyCustomerRequest(
            notification_id=notification_key,
            customer_id=changed.customer_id,
            ticket_id=changed.ticket_id,
            reason=reason,
            ticket_subject=changed.subject,
            resolution=changed.resolution,
        ),
    )
