"""The operator service's rules: who the operators are and what they are doing.

- An operator registers with a site, skills and roles, and starts offline.
- An operator sets their own presence: available, break or offline; not while on
  a call (busy) — they can end a wrap-up early by becoming available.
- Routing offers an interaction: an available operator becomes busy with it; an
  operator who is not available refuses it (the offer goes to someone else).
- When the call ends the operator is in wrap-up, and available again after the
  wrap-up time (``POLICY.wrap_up``).
- An offer the operator did not accept in time puts them on a break ("missed
  call"), so that calls are not offered to an empty desk; an offer cancelled
  because the caller hung up makes them available again.
- What the cascade asks after the situation changed (ending a wrap-up that is
  already over, releasing an operator from a call they are no longer on)
  changes nothing and is not an error.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from contracts.interaction.v1 import interaction_pb2 as interaction
from contracts.operator.v1 import operator_pb2 as pb
from contracts.routing.v1 import routing_pb2 as routing
from troupe import UNCHANGED, Command, CommandContext, Emit, EventContext, Rejected, Service
from troupe.service.declaration import TickContext, Unchanged

operator = Service("operator", entity=pb.Operator, id_field="operator_id")


@dataclass
class Policy:
    # How long an operator stays in wrap-up after a call.
    wrap_up: timedelta = timedelta(
        seconds=float(os.environ.get("TROUPE_OPERATOR_WRAP_UP_SECONDS", "30"))
    )


POLICY = Policy()
SELF_CHOSEN = (pb.PRESENCE_AVAILABLE, pb.PRESENCE_BREAK, pb.PRESENCE_OFFLINE)


def _stamp(at: datetime | None = None) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at or datetime.now(UTC))
    return stamp


def _name(presence: int) -> str:
    return pb.Presence.Name(presence).removeprefix("PRESENCE_").lower()


def _change_presence(current: pb.Operator, presence: int, at: datetime | None = None) -> None:
    current.presence = presence  # type: ignore[assignment]
    current.presence_since.CopyFrom(_stamp(at))
    if presence != pb.PRESENCE_BREAK:
        current.break_reason = ""
    if presence != pb.PRESENCE_WRAP_UP:
        current.ClearField("wrap_up_until")


def _existing(current: pb.Operator | None, operator_id: str) -> pb.Operator:
    if current is None:
        raise Rejected(f"operator {operator_id} does not exist")
    return current


@operator.command(pb.RegisterOperatorRequest, emits="OperatorRegistered")
def register(
    current: pb.Operator | None, request: pb.RegisterOperatorRequest, _context: CommandContext
) -> pb.Operator:
    if current is not None:
        raise Rejected(f"operator {request.operator_id} is already registered")
    if not request.name.strip():
        raise Rejected("an operator needs a name")
    if not request.site:
        raise Rejected("an operator works at a site")
    return pb.Operator(
        operator_id=request.operator_id,
        name=request.name.strip(),
        site=request.site,
        skills=sorted(set(request.skills)),
        roles=sorted(set(request.roles)) or ["operator"],
        presence=pb.PRESENCE_OFFLINE,
        presence_since=_stamp(),
    )


@operator.command(pb.SetPresenceRequest, emits=("PresenceChanged", "WrapUpEnded"))
def set_presence(
    current: pb.Operator | None, request: pb.SetPresenceRequest, _context: CommandContext
) -> Emit:
    current = _existing(current, request.operator_id)
    if request.presence not in SELF_CHOSEN:
        raise Rejected(
            f"an operator cannot set themselves {_name(request.presence)}: "
            "only available, break or offline"
        )
    if current.presence == pb.PRESENCE_BUSY:
        raise Rejected(
            f"operator {current.operator_id} is on interaction "
            f"{current.current_interaction_id}; presence changes after it ends"
        )
    if current.presence == request.presence:
        raise Rejected(f"operator {current.operator_id} is already {_name(request.presence)}")
    ends_wrap_up = current.presence == pb.PRESENCE_WRAP_UP
    if ends_wrap_up:
        _leave_interaction(current)
    _change_presence(current, request.presence)
    if request.presence == pb.PRESENCE_BREAK:
        current.break_reason = request.reason
    return Emit("WrapUpEnded" if ends_wrap_up else "PresenceChanged", current)


@operator.command(pb.ReserveOperatorRequest, emits=("OperatorReserved", "OfferRefused"))
def reserve(
    current: pb.Operator | None, request: pb.ReserveOperatorRequest, _context: CommandContext
) -> Emit:
    current = _existing(current, request.operator_id)
    if current.presence != pb.PRESENCE_AVAILABLE:
        # Routing chose from a view that was behind: it offers the call elsewhere.
        current.last_refused_interaction_id = request.interaction_id
        return Emit("OfferRefused", current)
    _change_presence(current, pb.PRESENCE_BUSY)
    current.current_interaction_id = request.interaction_id
    return Emit("OperatorReserved", current)


# Wrap-up and release follow a call: not urgent, they may wait a moment to share a
# transaction with the next reservation.
@operator.command(pb.StartWrapUpRequest, emits="WrapUpStarted", urgent=False)
def start_wrap_up(
    current: pb.Operator | None, request: pb.StartWrapUpRequest, _context: CommandContext
) -> pb.Operator | Unchanged:
    current = _existing(current, request.operator_id)
    if not _on(current, request.interaction_id):
        return UNCHANGED  # released from that call before it ended
    now = datetime.now(UTC)
    _change_presence(current, pb.PRESENCE_WRAP_UP, now)
    current.wrap_up_until.CopyFrom(_stamp(now + POLICY.wrap_up))
    return current


def wrap_up_over(current: pb.Operator, now: datetime) -> bool:
    return current.presence == pb.PRESENCE_WRAP_UP and current.wrap_up_until.ToDatetime(UTC) <= now


@operator.command(pb.EndWrapUpRequest, emits="WrapUpEnded", urgent=False)
def end_wrap_up(
    current: pb.Operator | None, request: pb.EndWrapUpRequest, _context: CommandContext
) -> pb.Operator | Unchanged:
    current = _existing(current, request.operator_id)
    if not wrap_up_over(current, datetime.now(UTC)):
        return UNCHANGED  # ended already (early, or by an earlier tick), or a new one runs
    _leave_interaction(current)
    _change_presence(current, pb.PRESENCE_AVAILABLE)
    return current


@operator.command(pb.ReleaseOperatorRequest, emits="OperatorReleased")
def release(
    current: pb.Operator | None, request: pb.ReleaseOperatorRequest, _context: CommandContext
) -> pb.Operator | Unchanged:
    current = _existing(current, request.operator_id)
    if not _on(current, request.interaction_id) or current.presence != pb.PRESENCE_BUSY:
        return UNCHANGED  # no longer reserved for that call
    _leave_interaction(current)
    if request.missed:
        _change_presence(current, pb.PRESENCE_BREAK)
        current.break_reason = "missed call"
    else:
        _change_presence(current, pb.PRESENCE_AVAILABLE)
    return current


def _on(current: pb.Operator, interaction_id: str) -> bool:
    return current.current_interaction_id == interaction_id


def _leave_interaction(current: pb.Operator) -> None:
    current.last_interaction_id = current.current_interaction_id
    current.current_interaction_id = ""


# -- reactions: presence follows the cascade --------------------------------


@operator.on(
    "routing.events",
    "OperatorOffered",
    state=routing.Assignment,
    sends=(pb.ReserveOperatorRequest,),
)
def on_offered(assignment: routing.Assignment, _context: EventContext) -> Command:
    return Command(
        assignment.operator_id,
        pb.ReserveOperatorRequest(
            operator_id=assignment.operator_id, interaction_id=assignment.interaction_id
        ),
    )


@operator.on(
    "routing.events",
    "OfferExpired",
    "RoutingCancelled",
    "RoutingCompleted",
    state=routing.Assignment,
    sends=(pb.ReleaseOperatorRequest,),
    urgent=False,
)
def on_offer_withdrawn(assignment: routing.Assignment, context: EventContext) -> Command | None:
    if not assignment.released_operator_id:
        return None
    return Command(
        assignment.released_operator_id,
        pb.ReleaseOperatorRequest(
            operator_id=assignment.released_operator_id,
            interaction_id=assignment.interaction_id,
            missed=context.event_type == "OfferExpired",
        ),
    )


@operator.on(
    "interaction.events",
    "InteractionEnded",
    state=interaction.Interaction,
    sends=(pb.StartWrapUpRequest,),
    urgent=False,
)
def on_interaction_ended(call: interaction.Interaction, _context: EventContext) -> Command | None:
    if not call.operator_id:
        return None
    return Command(
        call.operator_id,
        pb.StartWrapUpRequest(operator_id=call.operator_id, interaction_id=call.interaction_id),
    )


TICK = uuid.UUID("9a4e1c27-6b3d-4f80-a5c2-7e1d0b8f3a96")

IN_WRAP_UP = "in-wrap-up"


@operator.lookup("wrap_up", order=lambda current: current.wrap_up_until.ToMilliseconds())
def in_wrap_up(current: pb.Operator) -> list[str]:
    """The operators in wrap-up, ranked by when it ends: the tick reads those, not
    every operator twice a second."""
    return [IN_WRAP_UP] if current.presence == pb.PRESENCE_WRAP_UP else []


@operator.every(0.5, sends=(pb.EndWrapUpRequest,))
def end_wrap_ups(context: TickContext) -> Iterator[Command]:
    """Operators whose wrap-up time is over become available again. The tick sees
    the store, which may not show its last command yet: the command for one
    version of the operator has one id, so it takes effect once."""
    for entity in context.owned("wrap_up", IN_WRAP_UP):  # soonest end first
        current: pb.Operator = entity.state
        if not wrap_up_over(current, context.now):
            break  # the others' wrap-ups end later still
        yield Command(
            current.operator_id,
            pb.EndWrapUpRequest(operator_id=current.operator_id),
            command_id=str(uuid.uuid5(TICK, f"{current.operator_id}/{entity.version}/end-wrap-up")),
        )


@operator.lookup("site")
def site(current: pb.Operator) -> list[str]:
    return [current.site]
