"""The interaction service's rules: the state machine of a call."""

from __future__ import annotations

import pytest

from contracts.customer.v1 import customer_pb2 as customer
from contracts.interaction.v1 import interaction_pb2 as pb
from contracts.operator.v1 import operator_pb2 as operator
from contracts.routing.v1 import routing_pb2 as routing
from services.interaction import service as rules
from troupe import UNCHANGED, Rejected

from .world import command_context, event_context


def call(state: pb.State = pb.STATE_RINGING, operator_id: str = "") -> pb.Interaction:
    return pb.Interaction(
        interaction_id="call-1",
        site="msk",
        caller="+79161234567",
        state=state,
        operator_id=operator_id,
    )


def test_a_reported_call_is_ringing() -> None:
    received = rules.receive(
        None,
        pb.ReceiveInteractionRequest(
            interaction_id="call-1", kind=pb.KIND_CALL, site="msk", caller="8916", skill="orders"
        ),
        command_context(),
    )
    assert received.state == pb.STATE_RINGING
    assert received.HasField("received_at")


def test_a_call_without_a_site_or_caller_is_refused() -> None:
    with pytest.raises(Rejected, match="site"):
        rules.receive(
            None, pb.ReceiveInteractionRequest(interaction_id="c", caller="1"), command_context()
        )
    with pytest.raises(Rejected, match="caller"):
        rules.receive(
            None,
            pb.ReceiveInteractionRequest(interaction_id="c", site="msk", kind=pb.KIND_CALL),
            command_context(),
        )


def test_the_whole_life_of_an_answered_call() -> None:
    # given a ringing call
    current = call()
    # when it waits, is assigned, answered, ended and its wrap-up ends
    current = rules.queue(
        current, pb.QueueInteractionRequest(interaction_id="call-1"), command_context()
    )
    assert current.state == pb.STATE_QUEUED
    current = rules.assign(
        current,
        pb.AssignOperatorRequest(interaction_id="call-1", operator_id="olga"),
        command_context(),
    )
    assert (current.state, current.operator_id) == (pb.STATE_ASSIGNED, "olga")
    current = rules.answer(
        current, pb.AnswerInteractionRequest(interaction_id="call-1"), command_context()
    )
    assert current.state == pb.STATE_ACTIVE
    ended = rules.end(current, pb.EndInteractionRequest(interaction_id="call-1"), command_context())
    assert ended.type == "InteractionEnded"
    assert isinstance(ended.state, pb.Interaction)
    closed = rules.close(
        ended.state, pb.CloseInteractionRequest(interaction_id="call-1"), command_context()
    )
    # then it is closed
    assert closed.state == pb.STATE_CLOSED


@pytest.mark.parametrize("state", [pb.STATE_RINGING, pb.STATE_QUEUED, pb.STATE_ASSIGNED])
def test_a_call_that_ends_before_an_answer_is_abandoned(state: pb.State) -> None:
    decision = rules.end(
        call(state), pb.EndInteractionRequest(interaction_id="call-1"), command_context()
    )
    assert decision.type == "InteractionAbandoned"
    assert isinstance(decision.state, pb.Interaction)
    assert decision.state.state == pb.STATE_ABANDONED


def test_assigning_a_call_the_caller_hung_up_on_changes_nothing() -> None:
    decision = rules.assign(
        call(pb.STATE_ABANDONED),
        pb.AssignOperatorRequest(interaction_id="call-1", operator_id="olga"),
        command_context(),
    )
    assert decision is UNCHANGED


def test_a_call_assigned_to_one_operator_is_not_assigned_to_another() -> None:
    assigned = call(pb.STATE_ASSIGNED)
    assigned.operator_id = "olga"
    with pytest.raises(Rejected, match="it is assigned"):
        rules.assign(
            assigned,
            pb.AssignOperatorRequest(interaction_id="call-1", operator_id="ivan"),
            command_context(),
        )


def test_an_assignment_crossing_the_answer_of_another_operator_changes_nothing() -> None:
    # given ivan answered the call after his offer expired and it was offered to olga
    active = call(pb.STATE_ACTIVE)
    active.operator_id = "ivan"
    # when olga's assignment arrives
    decision = rules.assign(
        active, pb.AssignOperatorRequest(interaction_id="call-1", operator_id="olga"), command_context()
    )
    # then ivan keeps the call (routing releases olga)
    assert decision is UNCHANGED


def test_queueing_a_call_already_assigned_changes_nothing() -> None:
    # routing's CallWaiting and the operator's reservation arrive from two topics
    decision = rules.queue(
        call(pb.STATE_ASSIGNED), pb.QueueInteractionRequest(interaction_id="call-1"), command_context()
    )
    assert decision is UNCHANGED


def test_only_the_assigned_operator_answers() -> None:
    with pytest.raises(Rejected, match="offered to olga, not to ivan"):
        rules.answer(
            call(pb.STATE_ASSIGNED, "olga"),
            pb.AnswerInteractionRequest(interaction_id="call-1", operator_id="ivan"),
            command_context(),
        )


def test_a_missed_call_goes_back_to_the_queue_remembering_who_missed_it() -> None:
    back = rules.return_to_queue(
        call(pb.STATE_ASSIGNED, "olga"),
        pb.ReturnToQueueRequest(interaction_id="call-1", operator_id="olga"),
        command_context(),
    )
    assert back.state == pb.STATE_QUEUED
    assert back.operator_id == ""
    assert list(back.missed_by) == ["olga"]


def test_the_cascade_attaches_the_caller_queues_and_assigns() -> None:
    profile = customer.Customer(customer_id="anna", last_interaction_id="call-1")
    attach = rules.on_caller_identified(profile, event_context("CallerIdentified"))
    assert attach.entity_id == "call-1"
    assert attach.payload == pb.AttachCustomerRequest(interaction_id="call-1", customer_id="anna")

    waiting = routing.Assignment(interaction_id="call-1", state=routing.STATE_WAITING)
    queued = rules.on_waiting(waiting, event_context("CallWaiting"))
    assert queued is not None
    assert queued.payload == pb.QueueInteractionRequest(interaction_id="call-1")

    reserved = operator.Operator(operator_id="olga", current_interaction_id="call-1")
    assign = rules.on_operator_reserved(reserved, event_context("OperatorReserved"))
    assert assign.payload == pb.AssignOperatorRequest(interaction_id="call-1", operator_id="olga")
