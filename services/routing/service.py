"""The routing service's rules: which operator takes which interaction.

- A new interaction is offered to the available operator with the needed skill
  at the interaction's site who has been idle the longest. After it has waited
  ``POLICY.widen_after``, operators of any site may take it (their own site's
  operators first).
- With nobody available it waits. When an operator becomes available they get
  the longest-waiting interaction they can take.
- The operator decides on their own entity whether they can still take it (two
  interactions may be offered the same operator at the same moment): a refused
  offer goes at once to the next operator, not back to those who refused it; with
  nobody left, it waits. A refusal means "not free just now": once free again, an
  operator who refused may still get it, like anyone available.
- An offer not answered within ``POLICY.accept_timeout`` expires: the
  interaction waits again, for the sweep to offer it to someone available (the
  operator who missed it is on a break, by the operator rules).
- A regular sweep matches waiting interactions with available operators, so that
  no interaction waits while someone who could take it is idle.
- A command the situation has overtaken (an offer for an interaction someone else
  already got, a refusal or an expiry of an offer that is no longer open) changes
  nothing and is not an error: such races are expected.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from contracts.interaction.v1 import interaction_pb2 as interaction
from contracts.operator.v1 import operator_pb2 as operator
from contracts.routing.v1 import routing_pb2 as pb
from troupe import UNCHANGED, Command, CommandContext, Emit, EventContext, Rejected, Service
from troupe.service.declaration import Lookup, TickContext, Unchanged
from troupe.state.views import Versioned, Views

routing = Service("routing", entity=pb.Assignment, id_field="interaction_id")
OPERATORS = "operator.events"
ROUTING = routing.events_topic
ANY_SITE = "*"


def available(person: operator.Operator) -> list[str]:
    """The queues an available operator may take calls from: per skill (and ""
    for calls that need none), at their site and at any site (``ANY_SITE``)."""
    if person.presence != operator.PRESENCE_AVAILABLE:
        return []
    return [f"{site}/{skill}" for site in (person.site, ANY_SITE) for skill in (*person.skills, "")]


def idle_since(person: operator.Operator) -> int:
    return person.presence_since.ToNanoseconds()


# Longest idle first: a choice reads the first operators of one queue, not all of them.
routing.project(OPERATORS, operator.Operator, lookups={"available": Lookup(available, order=idle_since)})


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
    return person.site == call.site or _widened(call, now)


# How long an operator just offered a call is held out of this instance's choices
# (``Views.hold``). The hold ends sooner when the operator's answer (reserved, or
# refused) moves their version on; by then routing's store shows the offer too.
# Until then the views still show the operator free: without the hold every call
# of one batch would go to the same longest-idle operator, and all but one would
# come back refused. It is only a hint: the operator entity decides. Five seconds
# cover an offer whose transaction was aborted.
OFFER_HOLD_SECONDS = 5.0


def _hold(views: Views, operator_id: str, version: int) -> None:
    views.hold(OPERATORS, operator_id, version, OFFER_HOLD_SECONDS)


def _widened(call: pb.Assignment, now: datetime) -> bool:
    """The call has waited long enough for any site's operators to take it."""
    return now - call.queued_at.ToDatetime(UTC) >= POLICY.widen_after


def _candidates(call: pb.Assignment, views: Views, now: datetime) -> Iterator[Versioned[operator.Operator]]:
    """The operators the views show available for the call, without an open offer
    and not held (just offered a call by this instance), best first: the longest
    idle at its site, then (once it has waited long enough) at the other sites."""
    with_an_offer = (ROUTING, "offered_to")
    yield from views.walk(OPERATORS, "available", f"{call.site}/{call.skill}", unless=with_an_offer)
    if _widened(call, now):
        for entity in views.walk(OPERATORS, "available", f"{ANY_SITE}/{call.skill}", unless=with_an_offer):
            if entity.state.site != call.site:
                yield entity


def _choose(
    call: pb.Assignment, views: Views, now: datetime, excluded: set[str]
) -> Versioned[operator.Operator] | None:
    """The best candidate for the call who is not excluded."""
    return next((e for e in _candidates(call, views, now) if e.state.operator_id not in excluded), None)


def _offer_or_wait(call: pb.Assignment, context: CommandContext, now: datetime) -> Emit:
    chosen = _choose(call, context.views, now, set(call.passed_over))
    if chosen is not None:
        _hold(context.views, chosen.state.operator_id, chosen.version)
        return _offer(call, chosen.state.operator_id, now)
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
    call.released_operator_id = ""
    call.offered_at.CopyFrom(_stamp(now))
    call.offers += 1
    return Emit("OperatorOffered", call)


def _existing(current: pb.Assignment | None, interaction_id: str) -> pb.Assignment:
    if current is None:
        raise Rejected(f"interaction {interaction_id} is not being routed")
    return current


def _offered_to(current: pb.Assignment, operator_id: str) -> bool:
    return current.state == pb.STATE_OFFERED and current.operator_id == operator_id


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
    current: pb.Assignment | None, request: pb.OfferOperatorRequest, context: CommandContext
) -> Emit | Unchanged:
    current = _existing(current, request.interaction_id)
    if current.state != pb.STATE_WAITING:
        return UNCHANGED  # someone else got it meanwhile, or the caller hung up
    person = context.views.get(OPERATORS, request.operator_id)
    if person is not None:
        _hold(context.views, request.operator_id, person.version)
    return _offer(current, request.operator_id, _now())


@routing.command(pb.RecordRefusalRequest, emits=OFFERING)
def record_refusal(
    current: pb.Assignment | None, request: pb.RecordRefusalRequest, context: CommandContext
) -> Emit | Unchanged:
    current = _existing(current, request.interaction_id)
    if not _offered_to(current, request.operator_id):
        return UNCHANGED  # the offer was already withdrawn
    current.passed_over.append(request.operator_id)
    return _offer_or_wait(current, context, _now())


@routing.command(pb.ExpireOfferRequest, emits="OfferExpired")
def expire_offer(
    current: pb.Assignment | None, request: pb.ExpireOfferRequest, _context: CommandContext
) -> pb.Assignment | Unchanged:
    current = _existing(current, request.interaction_id)
    if not _offered_to(current, request.operator_id):
        return UNCHANGED  # answered, refused or cancelled before it expired
    current.passed_over.append(current.operator_id)
    current.released_operator_id = current.operator_id
    current.operator_id = ""
    current.ClearField("offered_at")
    current.state = pb.STATE_WAITING
    current.announced_waiting = True
    return current


# What follows an answered or abandoned call is not urgent: it may wait a moment to
# share a transaction with the next call's routing.
@routing.command(pb.MarkAnsweredRequest, emits="RoutingCompleted", urgent=False)
def mark_answered(
    current: pb.Assignment | None, request: pb.MarkAnsweredRequest, _context: CommandContext
) -> pb.Assignment | Unchanged:
    """The call was answered: routing is over, whatever it was doing. The answer
    may have crossed an expiring offer, so the call may be waiting again or
    offered to someone else; that other operator is released."""
    current = _existing(current, request.interaction_id)
    if current.state == pb.STATE_ANSWERED:
        return UNCHANGED
    if current.state not in (pb.STATE_OFFERED, pb.STATE_WAITING):
        raise Rejected(f"interaction {current.interaction_id} is not being routed")
    answered_by = request.operator_id or current.operator_id
    offered_to = current.operator_id if current.state == pb.STATE_OFFERED else ""
    current.released_operator_id = offered_to if offered_to and offered_to != answered_by else ""
    current.operator_id = answered_by
    current.state = pb.STATE_ANSWERED
    return current


@routing.command(pb.CancelRoutingRequest, emits="RoutingCancelled", urgent=False)
def cancel(
    current: pb.Assignment | None, request: pb.CancelRoutingRequest, _context: CommandContext
) -> pb.Assignment | Unchanged:
    current = _existing(current, request.interaction_id)
    if current.state == pb.STATE_CANCELLED:
        return UNCHANGED
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
    state=interaction.Interaction,
    sends=(pb.RouteInteractionRequest,),
)
def on_received(call: interaction.Interaction, _context: EventContext) -> Command:
    return Command(
        call.interaction_id,
        pb.RouteInteractionRequest(
            interaction_id=call.interaction_id,
            site=call.site,
            skill=call.skill,
            queued_at=call.received_at,
        ),
    )


@routing.on(
    "interaction.events",
    "InteractionAnswered",
    "InteractionAbandoned",
    state=interaction.Interaction,
    sends=(pb.MarkAnsweredRequest, pb.CancelRoutingRequest),
    urgent=False,
)
def on_answered_or_abandoned(call: interaction.Interaction, context: EventContext) -> Command:
    if context.event_type == "InteractionAnswered":
        return Command(
            call.interaction_id,
            pb.MarkAnsweredRequest(interaction_id=call.interaction_id, operator_id=call.operator_id),
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
    urgent=False,  # a waiting call's offer may wait a moment; it has waited longer
)
def on_operator_available(person: operator.Operator, context: EventContext) -> Command | None:
    if person.presence != operator.PRESENCE_AVAILABLE:
        return None
    call = _next_call(person, context.views, _now())
    if call is None:
        return None
    return Command(
        call.interaction_id,
        pb.OfferOperatorRequest(interaction_id=call.interaction_id, operator_id=person.operator_id),
    )


def _next_call(person: operator.Operator, views: Views, now: datetime) -> pb.Assignment | None:
    """The call an operator who became available should get: the longest waiting in
    their site's queues (one per skill, and the calls that need none); without one
    there, the longest waiting call of another site that waited long enough."""
    heads: list[pb.Assignment] = [
        head.state
        for skill in (*person.skills, "")
        if (head := next(views.walk(ROUTING, "waiting_at", f"{person.site}/{skill}"), None)) is not None
    ]
    if heads:
        return min(heads, key=lambda call: (queued(call), call.interaction_id))
    for entity in views.walk(ROUTING, "state", "waiting"):  # longest waiting first
        call: pb.Assignment = entity.state
        if not _widened(call, now):
            return None  # nor have those after it
        if may_take(person, call, now):
            return call
    return None


# -- the sweep: expired offers, and idle operators with waiting calls -------------

SWEEP = uuid.UUID("3f6d2a41-9c7e-4b15-8e0a-5d2c7b9f1e63")


def sweep_command_id(interaction_id: str, version: int, action: str) -> str:
    """The sweep runs every half second over what this instance's store shows,
    which may not show the sweep's last command yet: the same decision about the
    same version of an interaction has the same id, so it takes effect once."""
    return str(uuid.uuid5(SWEEP, f"{interaction_id}/{version}/{action}"))


@routing.every(0.5, sends=(pb.ExpireOfferRequest, pb.OfferOperatorRequest))
def sweep(context: TickContext) -> Iterator[Command]:
    # Only open calls are read (look-up "state"), however many were ever routed.
    for entity in context.owned("state", "offered"):
        call: pb.Assignment = entity.state
        if context.now - call.offered_at.ToDatetime(UTC) >= POLICY.accept_timeout:
            yield Command(
                call.interaction_id,
                pb.ExpireOfferRequest(
                    interaction_id=call.interaction_id, operator_id=call.operator_id
                ),
                command_id=sweep_command_id(call.interaction_id, entity.version, "expire"),
            )
    waiting = context.owned("state", "waiting")  # longest waiting first
    if not waiting:
        return
    taken: set[str] = set()
    # Queues (site, skill, widened) found with nobody left for them in this sweep:
    # the calls after in the same queue are not looked at, so a long backlog costs
    # one look-up per call, not a walk through the operators each.
    dry: set[tuple[str, str, bool]] = set()
    for entity in waiting:
        call = entity.state
        queue = (call.site, call.skill, _widened(call, context.now))
        if queue in dry:
            continue
        chosen = _choose(call, context.views, context.now, taken)
        if chosen is None:
            dry.add(queue)
            continue
        taken.add(chosen.state.operator_id)
        yield Command(
            call.interaction_id,
            pb.OfferOperatorRequest(interaction_id=call.interaction_id, operator_id=chosen.state.operator_id),
            command_id=sweep_command_id(call.interaction_id, entity.version, "offer"),
        )


def queued(call: pb.Assignment) -> int:
    return call.queued_at.ToNanoseconds()


@routing.lookup("state", order=queued)
def state(call: pb.Assignment) -> list[str]:
    if call.state == pb.STATE_WAITING:
        return ["waiting"]
    if call.state == pb.STATE_OFFERED:
        return ["offered"]
    return []


@routing.lookup("waiting_at", order=queued)
def waiting_at(call: pb.Assignment) -> list[str]:
    """Waiting calls by site and skill: an operator who becomes free looks at
    their own site's queues only, however long other sites' queues are."""
    return [f"{call.site}/{call.skill}"] if call.state == pb.STATE_WAITING else []


@routing.lookup("offered_to")
def offered_to(call: pb.Assignment) -> list[str]:
    return [call.operator_id] if call.state == pb.STATE_OFFERED else []
