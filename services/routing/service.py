"""The routing service's rules: which operator takes which interaction.

- A new interaction is offered to the available operator with the needed skill
  at the interaction's site who has been idle the longest. After it has waited
  ``POLICY.widen_after``, operators of any site may take it (their own site's
  operators first).
- With nobody available it waits. When an operator becomes available they get
  the longest-waiting interaction they can take.
- The operator decides on their own entity whether they can still take it (two
  interactions may be offered the same operator at the same moment): a refused
  offer goes at once to the next operator; with nobody left, it waits.
- An offer not answered within ``POLICY.accept_timeout`` expires: the
  interaction waits again and the operator is not offered it again.
- A regular sweep matches waiting interactions with available operators, so that
  no interaction waits while someone who could take it is idle.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from contracts.interaction.v1 import interaction_pb2 as interaction
from contracts.operator.v1 import operator_pb2 as operator
from contracts.routing.v1 import routing_pb2 as pb
from troupe import Command, CommandContext, Emit, EventContext, Rejected, Service
from troupe.service.declaration import TickContext

routing = Service("routing", entity=pb.Assignment, id_field="interaction_id")
OPERATORS = "operator.events"
routing.project(OPERATORS, operator.Operator)


@dataclass
class Policy:
    # How long an operator has to answer an offered interaction.
    accept_timeout: timedelta = timedelta(
        seconds=float(os.environ.get("TROUPE_ROUTING_ACCEPT_TIMEOUT_SECONDS", "20"))
    )
    # After how long in the queue any site's operators may take an interaction.
    widen_after: timedelta = timedelta(
        seconds=float(os.environ.get("TROUPE_ROUTING_WIDEN_AFTER_SECONDS", "60"))
    )


POLICY = Policy()
OFFERING = ("OperatorOffered", "CallWaiting", "StillWaiting")


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


# -- who may take what --------------------------------------------------------


def may_take(person: operator.Operator, call: pb.Assignment, now: datetime) -> bool:
    """An available operator with the skill, at the site or (after a wait) anywhere."""
    if person.presence != operator.PRESENCE_AVAILABLE:
        return False
    if call.skill and call.skill not in person.skills:
        return False
    widened = now - call.queued_at.ToDatetime(UTC) >= POLICY.widen_after
    return person.site == call.site or widened


def choose_operator(
    call: pb.Assignment,
    operators: Iterable[operator.Operator],
    now: datetime,
    excluded: set[str] = frozenset(),  # type: ignore[assignment]
) -> operator.Operator | None:
    """The longest-idle operator who may take the call, own site first."""
    candidates = [
        person
        for person in operators
        if person.operator_id not in excluded and may_take(person, call, now)
    ]
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda p: (p.site != call.site, p.presence_since.ToNanoseconds(), p.operator_id),
    )


def longest_waiting(
    person: operator.Operator, waiting: Iterable[pb.Assignment], now: datetime
) -> pb.Assignment | None:
    """The call that has waited longest among those the operator may take."""
    eligible = [call for call in waiting if may_take(person, call, now)]
    if not eligible:
        return None
    return min(
        eligible,
        key=lambda c: (c.site != person.site, c.queued_at.ToNanoseconds(), c.interaction_id),
    )


def _available_operators(
    context: CommandContext | EventContext | TickContext,
) -> list[operator.Operator]:
    """Available operators, minus those an interaction is offered to right now."""
    offered = {
        entity.state.operator_id
        for entity in context.views.find(routing.events_topic, "state", "offered")
    }
    return [
        entity.state
        for entity in context.views.scan(OPERATORS)
        if entity.state.presence == operator.PRESENCE_AVAILABLE
        and entity.state.operator_id not in offered
    ]


def _offer_or_wait(call: pb.Assignment, context: CommandContext, now: datetime) -> Emit:
    chosen = choose_operator(call, _available_operators(context), now, set(call.passed_over))
    if chosen is not None:
        return _offer(call, chosen.operator_id, now)
    call.state = pb.STATE_WAITING
    call.operator_id = ""
    call.ClearField("offered_at")
    if call.announced_waiting:
        return Emit("StillWaiting", call)
    call.announced_waiting = True
    return Emit("CallWaiting", call)


def _offer(call: pb.Assignment, operator_id: str, now: datetime) -> Emit:
    call.state = pb.STATE_OFFERED
    call.operator_id = operator_id
    call.offered_at.CopyFrom(_stamp(now))
    call.offers += 1
    return Emit("OperatorOffered", call)


def _existing(current: pb.Assignment | None, interaction_id: str) -> pb.Assignment:
    if current is None:
        raise Rejected(f"interaction {interaction_id} is not being routed")
    return current


def _require_offered_to(current: pb.Assignment, operator_id: str) -> None:
    if current.state != pb.STATE_OFFERED or current.operator_id != operator_id:
        raise Rejected(
            f"interaction {current.interaction_id} is not offered to {operator_id} "
            f"(it is {pb.State.Name(current.state)} {current.operator_id})"
        )


# -- commands -----------------------------------------------------------------


@routing.command(pb.RouteInteractionRequest, emits=OFFERING)
def route(
    current: pb.Assignment | None, request: pb.RouteInteractionRequest, context: CommandContext
) -> Emit:
    if current is not None:
        raise Rejected(f"interaction {request.interaction_id} is already being routed")
    call = pb.Assignment(
        interaction_id=request.interaction_id,
        site=request.site,
        skill=request.skill,
        queued_at=request.queued_at,
    )
    return _offer_or_wait(call, context, _now())


@routing.command(pb.OfferOperatorRequest, emits="OperatorOffered")
def offer_operator(
    current: pb.Assignment | None, request: pb.OfferOperatorRequest, _context: CommandContext
) -> Emit:
    current = _existing(current, request.interaction_id)
    if current.state != pb.STATE_WAITING:
        raise Rejected(
            f"interaction {current.interaction_id} no longer waits "
            f"(it is {pb.State.Name(current.state)} {current.operator_id})"
        )
    return _offer(current, request.operator_id, _now())


@routing.command(pb.RecordRefusalRequest, emits=OFFERING)
def record_refusal(
    current: pb.Assignment | None, request: pb.RecordRefusalRequest, context: CommandContext
) -> Emit:
    current = _existing(current, request.interaction_id)
    _require_offered_to(current, request.operator_id)
    current.passed_over.append(request.operator_id)
    return _offer_or_wait(current, context, _now())


@routing.command(pb.ExpireOfferRequest, emits="OfferExpired")
def expire_offer(
    current: pb.Assignment | None, request: pb.ExpireOfferRequest, _context: CommandContext
) -> pb.Assignment:
    current = _existing(current, request.interaction_id)
    _require_offered_to(current, request.operator_id)
    current.passed_over.append(current.operator_id)
    current.released_operator_id = current.operator_id
    current.operator_id = ""
    current.ClearField("offered_at")
    current.state = pb.STATE_WAITING
    current.announced_waiting = True
    return current


@routing.command(pb.MarkAnsweredRequest, emits="RoutingCompleted")
def mark_answered(
    current: pb.Assignment | None, request: pb.MarkAnsweredRequest, _context: CommandContext
) -> pb.Assignment:
    current = _existing(current, request.interaction_id)
    if current.state != pb.STATE_OFFERED:
        raise Rejected(f"interaction {current.interaction_id} was not offered to anyone")
    current.state = pb.STATE_ANSWERED
    return current


@routing.command(pb.CancelRoutingRequest, emits="RoutingCancelled")
def cancel(
    current: pb.Assignment | None, request: pb.CancelRoutingRequest, _context: CommandContext
) -> pb.Assignment:
    current = _existing(current, request.interaction_id)
    if current.state not in (pb.STATE_WAITING, pb.STATE_OFFERED):
        raise Rejected(f"interaction {current.interaction_id} is already routed")
    current.released_operator_id = current.operator_id
    current.operator_id = ""
    current.state = pb.STATE_CANCELLED
    return current


# -- reactions ------------------------------------------------------------------


@routing.on(
    "interaction.events",
    "InteractionReceived",
    "InteractionAnswered",
    "InteractionAbandoned",
    state=interaction.Interaction,
    sends=(pb.RouteInteractionRequest, pb.MarkAnsweredRequest, pb.CancelRoutingRequest),
)
def on_interaction(call: interaction.Interaction, context: EventContext) -> Command:
    if context.event_type == "InteractionReceived":
        return Command(
            call.interaction_id,
            pb.RouteInteractionRequest(
                interaction_id=call.interaction_id,
                site=call.site,
                skill=call.skill,
                queued_at=call.received_at,
            ),
        )
    if context.event_type == "InteractionAnswered":
        return Command(
            call.interaction_id, pb.MarkAnsweredRequest(interaction_id=call.interaction_id)
        )
    return Command(call.interaction_id, pb.CancelRoutingRequest(interaction_id=call.interaction_id))


@routing.on(
    "operator.events", "OfferRefused", state=operator.Operator, sends=(pb.RecordRefusalRequest,)
)
def on_refused(person: operator.Operator, _context: EventContext) -> Command:
    return Command(
        person.last_refused_interaction_id,
        pb.RecordRefusalRequest(
            interaction_id=person.last_refused_interaction_id, operator_id=person.operator_id
        ),
    )


@routing.on(
    "operator.events",
    "PresenceChanged",
    "WrapUpEnded",
    "OperatorReleased",
    state=operator.Operator,
    sends=(pb.OfferOperatorRequest,),
)
def on_operator_available(person: operator.Operator, context: EventContext) -> Command | None:
    if person.presence != operator.PRESENCE_AVAILABLE:
        return None
    waiting = [e.state for e in context.views.find(routing.events_topic, "state", "waiting")]
    call = longest_waiting(person, waiting, _now())
    if call is None:
        return None
    return Command(
        call.interaction_id,
        pb.OfferOperatorRequest(interaction_id=call.interaction_id, operator_id=person.operator_id),
    )


# -- the sweep: expired offers, and idle operators with waiting calls -------------


@routing.every(0.5, sends=(pb.ExpireOfferRequest, pb.OfferOperatorRequest))
def sweep(context: TickContext) -> Iterator[Command]:
    owned = sorted((e.state for e in context.owned()), key=lambda c: c.queued_at.ToNanoseconds())
    for call in owned:
        if (
            call.state == pb.STATE_OFFERED
            and context.now - call.offered_at.ToDatetime(UTC) >= POLICY.accept_timeout
        ):
            yield Command(
                call.interaction_id,
                pb.ExpireOfferRequest(
                    interaction_id=call.interaction_id, operator_id=call.operator_id
                ),
            )
    idle = _available_operators(context)
    taken: set[str] = set()
    for call in owned:
        if call.state != pb.STATE_WAITING:
            continue
        chosen = choose_operator(call, idle, context.now, taken)
        if chosen is not None:
            taken.add(chosen.operator_id)
            yield Command(
                call.interaction_id,
                pb.OfferOperatorRequest(
                    interaction_id=call.interaction_id, operator_id=chosen.operator_id
                ),
            )


@routing.lookup("state")
def state(call: pb.Assignment) -> list[str]:
    if call.state == pb.STATE_WAITING:
        return ["waiting"]
    if call.state == pb.STATE_OFFERED:
        return ["offered"]
    return []
