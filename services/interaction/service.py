"""The interaction service's rules: the life of a call or a chat.

    ringing → queued → assigned → active → wrap-up → closed
        ╰──────────┴─────────┴→ abandoned (the caller hung up before an answer)

- A platform (telephony adapter) reports a new interaction: it is ringing.
- The customer service identifies the caller: the customer is attached.
- Routing finds no operator: queued. An operator is reserved for it: assigned.
  The operator does not accept in time: back to queued.
- The operator (or the platform) answers: active. The call ends: wrap-up, or
  abandoned if nobody had answered. The operator's wrap-up ends: closed.
- What the cascade asks after the call moved on (queue a call that is already
  assigned, assign one the caller hung up on, return a call the operator has
  already answered) changes nothing and is not an error. An answer or an end
  the platform reports out of turn is refused: the platform must hear about it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from contracts.customer.v1 import customer_pb2 as customer
from contracts.interaction.v1 import interaction_pb2 as pb
from contracts.operator.v1 import operator_pb2 as operator
from contracts.routing.v1 import routing_pb2 as routing
from troupe import UNCHANGED, Command, CommandContext, Emit, EventContext, Rejected, Service
from troupe.service.declaration import Unchanged

interaction = Service("interaction", entity=pb.Interaction, id_field="interaction_id")

WAITING = (pb.STATE_RINGING, pb.STATE_QUEUED)
BEFORE_ANSWER = (pb.STATE_RINGING, pb.STATE_QUEUED, pb.STATE_ASSIGNED)
FINAL = (pb.STATE_CLOSED, pb.STATE_ABANDONED)


def _name(state: int) -> str:
    return pb.State.Name(state).removeprefix("STATE_").lower().replace("_", "-")


def _stamp(given: Timestamp | None = None) -> Timestamp:
    if given is not None and given.ByteSize():
        return given
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC))
    return stamp


def _existing(current: pb.Interaction | None, interaction_id: str) -> pb.Interaction:
    if current is None:
        raise Rejected(f"interaction {interaction_id} does not exist")
    return current


def _require(current: pb.Interaction, allowed: tuple[int, ...], action: str) -> None:
    if current.state not in allowed:
        raise Rejected(
            f"cannot {action} interaction {current.interaction_id}: it is {_name(current.state)}"
        )


@interaction.command(pb.ReceiveInteractionRequest, emits="InteractionReceived")
def receive(
    current: pb.Interaction | None, request: pb.ReceiveInteractionRequest, _context: CommandContext
) -> pb.Interaction:
    if current is not None:
        raise Rejected(f"interaction {request.interaction_id} was already received")
    if not request.site:
        raise Rejected("an interaction arrives at a site")
    if request.kind == pb.KIND_CALL and not request.caller:
        raise Rejected("a call needs the caller's number")
    return pb.Interaction(
        interaction_id=request.interaction_id,
        kind=request.kind or pb.KIND_CALL,
        platform=request.platform,
        external_id=request.external_id,
        site=request.site,
        skill=request.skill,
        caller=request.caller,
        state=pb.STATE_RINGING,
        received_at=_stamp(request.received_at),
    )


@interaction.command(pb.AttachCustomerRequest, emits="CustomerAttached")
def attach_customer(
    current: pb.Interaction | None, request: pb.AttachCustomerRequest, _context: CommandContext
) -> pb.Interaction:
    current = _existing(current, request.interaction_id)
    current.customer_id = request.customer_id
    return current


@interaction.command(pb.QueueInteractionRequest, emits="InteractionQueued")
def queue(
    current: pb.Interaction | None, request: pb.QueueInteractionRequest, _context: CommandContext
) -> pb.Interaction | Unchanged:
    current = _existing(current, request.interaction_id)
    if current.state != pb.STATE_RINGING:
        return UNCHANGED  # already queued, assigned meanwhile, or the caller hung up
    current.state = pb.STATE_QUEUED
    return current


@interaction.command(pb.AssignOperatorRequest, emits="InteractionAssigned")
def assign(
    current: pb.Interaction | None, request: pb.AssignOperatorRequest, _context: CommandContext
) -> pb.Interaction | Unchanged:
    current = _existing(current, request.interaction_id)
    if current.state in FINAL:
        return UNCHANGED  # the caller hung up; routing releases the operator
    if current.state not in WAITING and current.operator_id == request.operator_id:
        return UNCHANGED  # already theirs
    if current.state == pb.STATE_ACTIVE:
        return UNCHANGED  # answered by the operator it was offered to before; routing releases this one
    _require(current, WAITING, "assign")
    current.state = pb.STATE_ASSIGNED
    current.operator_id = request.operator_id
    current.assigned_at.CopyFrom(_stamp())
    return current


@interaction.command(pb.ReturnToQueueRequest, emits="InteractionRequeued")
def return_to_queue(
    current: pb.Interaction | None, request: pb.ReturnToQueueRequest, _context: CommandContext
) -> pb.Interaction | Unchanged:
    current = _existing(current, request.interaction_id)
    if current.state != pb.STATE_ASSIGNED or current.operator_id != request.operator_id:
        return UNCHANGED  # answered or ended before the offer expired
    current.missed_by.append(current.operator_id)
    current.operator_id = ""
    current.ClearField("assigned_at")
    current.state = pb.STATE_QUEUED
    return current


# What follows the assignment (answer, end, close) is not urgent: it may wait a
# moment to share a transaction with the next call's assignment.
@interaction.command(pb.AnswerInteractionRequest, emits="InteractionAnswered", urgent=False)
def answer(
    current: pb.Interaction | None, request: pb.AnswerInteractionRequest, _context: CommandContext
) -> pb.Interaction:
    current = _existing(current, request.interaction_id)
    _require(current, (pb.STATE_ASSIGNED,), "answer")
    if request.operator_id and request.operator_id != current.operator_id:
        raise Rejected(
            f"interaction {current.interaction_id} is offered to {current.operator_id}, "
            f"not to {request.operator_id}"
        )
    current.state = pb.STATE_ACTIVE
    current.answered_at.CopyFrom(_stamp(request.answered_at))
    return current


@interaction.command(
    pb.EndInteractionRequest, emits=("InteractionEnded", "InteractionAbandoned"), urgent=False
)
def end(
    current: pb.Interaction | None, request: pb.EndInteractionRequest, _context: CommandContext
) -> Emit:
    current = _existing(current, request.interaction_id)
    _require(current, (*BEFORE_ANSWER, pb.STATE_ACTIVE), "end")
    current.ended_at.CopyFrom(_stamp(request.ended_at))
    if current.state == pb.STATE_ACTIVE:
        current.state = pb.STATE_WRAP_UP
        return Emit("InteractionEnded", current)
    current.state = pb.STATE_ABANDONED
    return Emit("InteractionAbandoned", current)


@interaction.command(pb.CloseInteractionRequest, emits="InteractionClosed", urgent=False)
def close(
    current: pb.Interaction | None, request: pb.CloseInteractionRequest, _context: CommandContext
) -> pb.Interaction | Unchanged:
    current = _existing(current, request.interaction_id)
    if current.state == pb.STATE_CLOSED:
        return UNCHANGED
    _require(current, (pb.STATE_WRAP_UP,), "close")
    current.state = pb.STATE_CLOSED
    return current


# -- reactions --------------------------------------------------------------


# The caller's profile may wait a moment for the operator's reservation: attached in
# the same transaction, the assignment reaches the operator's screen with it.
@interaction.on(
    "customer.events",
    "CallerIdentified",
    "CallerRegistered",
    state=customer.Customer,
    sends=(pb.AttachCustomerRequest,),
    urgent=False,
)
def on_caller_identified(profile: customer.Customer, _context: EventContext) -> Command:
    return Command(
        profile.last_interaction_id,
        pb.AttachCustomerRequest(
            interaction_id=profile.last_interaction_id, customer_id=profile.customer_id
        ),
    )


@interaction.on(
    "routing.events",
    "CallWaiting",
    "OfferExpired",
    state=routing.Assignment,
    sends=(pb.QueueInteractionRequest, pb.ReturnToQueueRequest),
)
def on_waiting(assignment: routing.Assignment, context: EventContext) -> Command | None:
    if context.event_type == "OfferExpired":
        return Command(
            assignment.interaction_id,
            pb.ReturnToQueueRequest(
                interaction_id=assignment.interaction_id,
                operator_id=assignment.released_operator_id,
            ),
        )
    return Command(
        assignment.interaction_id,
        pb.QueueInteractionRequest(interaction_id=assignment.interaction_id),
    )


@interaction.on(
    "operator.events",
    "OperatorReserved",
    state=operator.Operator,
    sends=(pb.AssignOperatorRequest,),
)
def on_operator_reserved(person: operator.Operator, _context: EventContext) -> Command:
    return Command(
        person.current_interaction_id,
        pb.AssignOperatorRequest(
            interaction_id=person.current_interaction_id, operator_id=person.operator_id
        ),
    )


@interaction.on(
    "operator.events",
    "WrapUpEnded",
    state=operator.Operator,
    sends=(pb.CloseInteractionRequest,),
    urgent=False,
)
def on_wrap_up_ended(person: operator.Operator, _context: EventContext) -> Command:
    return Command(
        person.last_interaction_id,
        pb.CloseInteractionRequest(interaction_id=person.last_interaction_id),
    )


@interaction.lookup("open_at_site")
def open_at_site(current: pb.Interaction) -> list[str]:
    return [] if current.state in FINAL else [current.site]
