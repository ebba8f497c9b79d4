"""The ticket service's rules: opening, SLA, transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.interaction.v1 import interaction_pb2 as interaction
from contracts.ticket.v1 import ticket_pb2 as pb
from services.ticket import service as rules
from troupe import Rejected

from .world import World, command_context

INTERACTIONS = "interaction.events"


def opened(status: int = pb.STATUS_NEW) -> pb.Ticket:
    return pb.Ticket(ticket_id="t-1", customer_id="anna", status=status)  # type: ignore[arg-type]


def test_a_ticket_opened_from_an_interaction_belongs_to_its_caller() -> None:
    # given a call from anna
    w = World().given(
        INTERACTIONS, "call-1", interaction.Interaction(interaction_id="call-1", customer_id="anna")
    )
    # when the operator opens a ticket from it
    ticket = rules.open_ticket(
        None,
        pb.OpenTicketRequest(
            ticket_id="t-1", interaction_id="call-1", category=pb.CATEGORY_DELIVERY, subject="Late"
        ),
        command_context(w),
    )
    # then it is anna's, new, due in 24 h
    assert ticket.customer_id == "anna"
    assert ticket.status == pb.STATUS_NEW
    due = ticket.sla_deadline.ToDatetime(UTC) - ticket.opened_at.ToDatetime(UTC)
    assert due == timedelta(hours=24)


def test_a_ticket_from_an_unidentified_caller_is_refused() -> None:
    w = World().given(INTERACTIONS, "call-1", interaction.Interaction(interaction_id="call-1"))
    with pytest.raises(Rejected, match="not identified"):
        rules.open_ticket(
            None,
            pb.OpenTicketRequest(
                ticket_id="t", interaction_id="call-1", category=pb.CATEGORY_ORDER, subject="x"
            ),
            command_context(w),
        )


def test_a_ticket_needs_a_category_and_a_subject() -> None:
    with pytest.raises(Rejected, match="category"):
        rules.open_ticket(
            None,
            pb.OpenTicketRequest(ticket_id="t", customer_id="a", subject="x"),
            command_context(),
        )
    with pytest.raises(Rejected, match="subject"):
        rules.open_ticket(
            None,
            pb.OpenTicketRequest(ticket_id="t", customer_id="a", category=pb.CATEGORY_ORDER),
            command_context(),
        )


@pytest.mark.parametrize(
    ("category", "priority", "hours"),
    [
        (pb.CATEGORY_RETURN, pb.PRIORITY_NORMAL, 72),
        (pb.CATEGORY_RETURN, pb.PRIORITY_HIGH, 36),
        (pb.CATEGORY_COMPLAINT, pb.PRIORITY_URGENT, 4),
    ],
)
def test_the_deadline_comes_from_the_category_and_priority(
    category: int, priority: int, hours: int
) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    assert rules.sla_deadline(start, category, priority) == start + timedelta(hours=hours)


def test_a_ticket_goes_through_its_statuses() -> None:
    t = rules.start_work(
        opened(), pb.StartWorkRequest(ticket_id="t-1", assignee="olga"), command_context()
    )
    assert (t.status, t.assignee) == (pb.STATUS_IN_PROGRESS, "olga")
    t = rules.await_customer(t, pb.AwaitCustomerRequest(ticket_id="t-1"), command_context())
    assert t.status == pb.STATUS_WAITING_FOR_CUSTOMER
    t = rules.resolve(
        t, pb.ResolveTicketRequest(ticket_id="t-1", resolution="Refunded"), command_context()
    )
    assert (t.status, t.resolution) == (pb.STATUS_RESOLVED, "Refunded")
    t = rules.close(t, pb.CloseTicketRequest(ticket_id="t-1"), command_context())
    assert t.status == pb.STATUS_CLOSED


def test_a_closed_ticket_cannot_be_resolved_and_says_why() -> None:
    with pytest.raises(Rejected, match=r"cannot resolve ticket t-1: it is closed"):
        rules.resolve(
            opened(pb.STATUS_CLOSED),
            pb.ResolveTicketRequest(ticket_id="t-1", resolution="x"),
            command_context(),
        )


def test_only_a_resolved_ticket_is_closed_or_reopened() -> None:
    with pytest.raises(Rejected, match="cannot close ticket t-1: it is new"):
        rules.close(opened(), pb.CloseTicketRequest(ticket_id="t-1"), command_context())
    reopened = rules.reopen(
        opened(pb.STATUS_RESOLVED), pb.ReopenTicketRequest(ticket_id="t-1"), command_context()
    )
    assert reopened.status == pb.STATUS_IN_PROGRESS


def test_a_resolution_is_required() -> None:
    with pytest.raises(Rejected, match="resolution"):
        rules.resolve(
            opened(), pb.ResolveTicketRequest(ticket_id="t-1", resolution=" "), command_context()
        )
