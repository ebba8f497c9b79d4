"""The ticket service's rules: a customer's request from opening to closing.

    new → in progress ⇄ waiting for customer
     ╰──────────┴─────────────┴→ resolved → closed
                    in progress ←╯ (reopened)

- A ticket is opened by an operator, usually from the interaction they are on:
  then the customer is the interaction's caller.
- Its deadline (SLA) comes from its category; high and urgent priority shorten it.
- Any other transition is refused, saying what the ticket's status is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.interaction.v1 import interaction_pb2 as interaction
from contracts.ticket.v1 import ticket_pb2 as pb
from troupe import CommandContext, Rejected, Service

ticket = Service("ticket", entity=pb.Ticket, id_field="ticket_id")
INTERACTIONS = "interaction.events"
ticket.project(INTERACTIONS, interaction.Interaction)

SLA = {
    pb.CATEGORY_ORDER: timedelta(hours=24),
    pb.CATEGORY_DELIVERY: timedelta(hours=24),
    pb.CATEGORY_RETURN: timedelta(hours=72),
    pb.CATEGORY_COMPLAINT: timedelta(hours=48),
    pb.CATEGORY_LOYALTY: timedelta(hours=120),
    pb.CATEGORY_OTHER: timedelta(hours=72),
}
URGENT_SLA = timedelta(hours=4)
OPEN = (pb.STATUS_NEW, pb.STATUS_IN_PROGRESS, pb.STATUS_WAITING_FOR_CUSTOMER)


def sla_deadline(opened_at: datetime, category: int, priority: int) -> datetime:
    time_allowed = SLA[category]  # type: ignore[index]
    if priority == pb.PRIORITY_HIGH:
        time_allowed /= 2
    elif priority == pb.PRIORITY_URGENT:
        time_allowed = min(time_allowed, URGENT_SLA)
    return opened_at + time_allowed


def _name(status: int) -> str:
    return pb.Status.Name(status).removeprefix("STATUS_").lower().replace("_", " ")


def _transition(
    current: pb.Ticket | None, ticket_id: str, allowed: tuple[int, ...], action: str, to: int
) -> pb.Ticket:
    if current is None:
        raise Rejected(f"ticket {ticket_id} does not exist")
    if current.status not in allowed:
        raise Rejected(
            f"cannot {action} ticket {ticket_id}: it is {_name(current.status)}"
            f" (only a ticket that is {' or '.join(_name(s) for s in allowed)} can be)"
        )
    current.status = to  # type: ignore[assignment]
    return current


@ticket.command(pb.OpenTicketRequest, emits="TicketOpened")
def open_ticket(
    current: pb.Ticket | None, request: pb.OpenTicketRequest, context: CommandContext
) -> pb.Ticket:
    if current is not None:
        raise Rejected(f"ticket {request.ticket_id} is already open")
    if request.category not in SLA:
        raise Rejected("a ticket needs a category")
    if not request.subject.strip():
        raise Rejected("a ticket needs a subject")
    customer_id = request.customer_id
    if request.interaction_id:
        found = context.views.get(INTERACTIONS, request.interaction_id)
        if found is None:
            raise Rejected(f"interaction {request.interaction_id} does not exist")
        from_call: interaction.Interaction = found.state
        if customer_id and from_call.customer_id and customer_id != from_call.customer_id:
            raise Rejected(
                f"interaction {request.interaction_id} is with customer {from_call.customer_id},"
                f" not {customer_id}"
            )
        customer_id = customer_id or from_call.customer_id
    if not customer_id:
        raise Rejected("a ticket needs a customer (the caller is not identified yet)")
    opened_at = datetime.now(UTC)
    opened = pb.Ticket(
        ticket_id=request.ticket_id,
        customer_id=customer_id,
        interaction_id=request.interaction_id,
        category=request.category,
        priority=request.priority or pb.PRIORITY_NORMAL,
        subject=request.subject.strip(),
        description=request.description,
        status=pb.STATUS_NEW,
        opened_by=request.opened_by,
    )
    opened.opened_at.FromDatetime(opened_at)
    opened.sla_deadline.FromDatetime(sla_deadline(opened_at, opened.category, opened.priority))
    return opened


@ticket.command(pb.StartWorkRequest, emits="TicketInProgress")
def start_work(
    current: pb.Ticket | None, request: pb.StartWorkRequest, _context: CommandContext
) -> pb.Ticket:
    changed = _transition(
        current,
        request.ticket_id,
        (pb.STATUS_NEW, pb.STATUS_WAITING_FOR_CUSTOMER),
        "start work on",
        pb.STATUS_IN_PROGRESS,
    )
    changed.assignee = request.assignee or changed.assignee
    return changed


@ticket.command(pb.AwaitCustomerRequest, emits="TicketAwaitingCustomer")
def await_customer(
    current: pb.Ticket | None, request: pb.AwaitCustomerRequest, _context: CommandContext
) -> pb.Ticket:
    return _transition(
        current,
        request.ticket_id,
        (pb.STATUS_IN_PROGRESS,),
        "wait for the customer on",
        pb.STATUS_WAITING_FOR_CUSTOMER,
    )


@ticket.command(pb.ResolveTicketRequest, emits="TicketResolved")
def resolve(
    current: pb.Ticket | None, request: pb.ResolveTicketRequest, _context: CommandContext
) -> pb.Ticket:
    if not request.resolution.strip():
        raise Rejected("a resolved ticket needs a resolution the customer can read")
    changed = _transition(current, request.ticket_id, OPEN, "resolve", pb.STATUS_RESOLVED)
    changed.resolution = request.resolution.strip()
    changed.resolved_at.FromDatetime(datetime.now(UTC))
    return changed


@ticket.command(pb.ReopenTicketRequest, emits="TicketReopened")
def reopen(
    current: pb.Ticket | None, request: pb.ReopenTicketRequest, _context: CommandContext
) -> pb.Ticket:
    changed = _transition(
        current, request.ticket_id, (pb.STATUS_RESOLVED,), "reopen", pb.STATUS_IN_PROGRESS
    )
    changed.resolution = ""
    changed.ClearField("resolved_at")
    return changed


@ticket.command(pb.CloseTicketRequest, emits="TicketClosed")
def close(
    current: pb.Ticket | None, request: pb.CloseTicketRequest, _context: CommandContext
) -> pb.Ticket:
    return _transition(current, request.ticket_id, (pb.STATUS_RESOLVED,), "close", pb.STATUS_CLOSED)


@ticket.lookup("customer")
def of_customer(current: pb.Ticket) -> list[str]:
    return [current.customer_id]
