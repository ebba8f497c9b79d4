"""The operator service's rules: presence, offers, wrap-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.interaction.v1 import interaction_pb2 as interaction
from contracts.operator.v1 import operator_pb2 as pb
from contracts.routing.v1 import routing_pb2 as routing
from services.operator import service as rules
from troupe import UNCHANGED, Command, Emit, Rejected
from troupe.state.views import Versioned

from .world import World, command_context, event_context, sent, tick_context


def olga(presence: pb.Presence = pb.PRESENCE_AVAILABLE, on: str = "") -> pb.Operator:
    return pb.Operator(
        operator_id="olga",
        name="Olga",
        site="msk",
        skills=["orders"],
        presence=presence,
        current_interaction_id=on,
    )


def test_a_new_operator_starts_offline_with_the_operator_role() -> None:
    registered = rules.register(
        None,
        pb.RegisterOperatorRequest(
            operator_id="olga", name=" Olga ", site="msk", skills=["b", "a"]
        ),
        command_context(),
    )
    assert registered.presence == pb.PRESENCE_OFFLINE
    assert list(registered.skills) == ["a", "b"]
    assert list(registered.roles) == ["operator"]
    assert registered.name == "Olga"


def test_an_operator_needs_a_site() -> None:
    with pytest.raises(Rejected, match="site"):
        rules.register(
            None, pb.RegisterOperatorRequest(operator_id="o", name="O"), command_context()
        )


def test_an_available_operator_is_reserved_for_an_offered_call() -> None:
    # given an available operator
    # when routing offers them a call
    decision = rules.reserve(
        olga(),
        pb.ReserveOperatorRequest(operator_id="olga", interaction_id="call-1"),
        command_context(),
    )
    # then they are busy with it
    assert decision.type == "OperatorReserved"
    assert isinstance(decision.state, pb.Operator)
    assert decision.state.presence == pb.PRESENCE_BUSY
    assert decision.state.current_interaction_id == "call-1"


@pytest.mark.parametrize("presence", [pb.PRESENCE_BUSY, pb.PRESENCE_BREAK, pb.PRESENCE_WRAP_UP])
def test_an_operator_who_is_not_available_refuses_an_offer(presence: pb.Presence) -> None:
    # given an operator who is not available (e.g. already on another call)
    current = olga(presence, on="call-0" if presence == pb.PRESENCE_BUSY else "")
    # when a second call is offered
    decision = rules.reserve(
        current,
        pb.ReserveOperatorRequest(operator_id="olga", interaction_id="call-2"),
        command_context(),
    )
    # then it is refused and the operator keeps what they were doing
    assert decision.type == "OfferRefused"
    assert isinstance(decision.state, pb.Operator)
    assert decision.state.presence == presence
    assert decision.state.last_refused_interaction_id == "call-2"
    assert decision.state.current_interaction_id == current.current_interaction_id


def test_an_operator_on_a_call_cannot_change_presence() -> None:
    with pytest.raises(Rejected, match="on interaction call-1"):
        rules.set_presence(
            olga(pb.PRESENCE_BUSY, on="call-1"),
            pb.SetPresenceRequest(operator_id="olga", presence=pb.PRESENCE_BREAK),
            command_context(),
        )


def test_an_operator_cannot_declare_themselves_busy() -> None:
    with pytest.raises(Rejected, match="only available, break or offline"):
        rules.set_presence(
            olga(pb.PRESENCE_OFFLINE),
            pb.SetPresenceRequest(operator_id="olga", presence=pb.PRESENCE_BUSY),
            command_context(),
        )


def test_a_call_ending_starts_the_wrap_up_for_the_configured_time() -> None:
    # given an operator on a call and a wrap-up time of 30 s
    rules.POLICY.wrap_up = timedelta(seconds=30)
    # when the call ends
    ended = interaction.Interaction(interaction_id="call-1", operator_id="olga")
    command = rules.on_interaction_ended(ended, event_context("InteractionEnded"))
    assert command is not None
    assert isinstance(command.payload, pb.StartWrapUpRequest)
    wrapping = rules.start_wrap_up(
        olga(pb.PRESENCE_BUSY, on="call-1"), command.payload, command_context()
    )
    assert isinstance(wrapping, pb.Operator)
    # then they are in wrap-up until 30 s from now
    assert wrapping.presence == pb.PRESENCE_WRAP_UP
    until = wrapping.wrap_up_until.ToDatetime(UTC)
    assert timedelta(seconds=29) < until - datetime.now(UTC) <= timedelta(seconds=30)


def wrap_up_tick(owned: list[Versioned[pb.Operator]], now: datetime | None = None) -> list[Command]:
    """What the wrap-up tick sends when this instance owns ``owned``."""
    return sent(rules.end_wrap_ups(tick_context(World.of(rules.operator), owned, now, topic="operator.events")))


def test_the_tick_ends_wrap_ups_that_are_over_and_only_those_soonest_first() -> None:
    # given two wrap-ups over (one 5 s ago, one 1 s ago), one still running, and an available operator
    now = datetime.now(UTC)
    late, early, running = (olga(pb.PRESENCE_WRAP_UP, on=call) for call in ("c1", "c2", "c3"))
    late.operator_id, early.operator_id, running.operator_id = "late", "early", "running"
    late.wrap_up_until.FromDatetime(now - timedelta(seconds=1))
    early.wrap_up_until.FromDatetime(now - timedelta(seconds=5))
    running.wrap_up_until.FromDatetime(now + timedelta(seconds=10))
    free = olga(pb.PRESENCE_AVAILABLE)
    free.operator_id = "free"
    # when the tick runs
    commands = wrap_up_tick([Versioned(state, 4) for state in (running, late, free, early)], now)
    # then the wrap-ups that are over end, the one that ended first first
    assert [c.entity_id for c in commands] == ["early", "late"]


def test_ending_the_wrap_up_makes_the_operator_available_again() -> None:
    available = rules.end_wrap_up(
        olga(pb.PRESENCE_WRAP_UP, on="call-1"),
        pb.EndWrapUpRequest(operator_id="olga"),
        command_context(),
    )
    assert isinstance(available, pb.Operator)
    assert available.presence == pb.PRESENCE_AVAILABLE
    assert available.current_interaction_id == ""
    assert available.last_interaction_id == "call-1"


def test_ending_a_wrap_up_early_says_the_wrap_up_ended() -> None:
    decision = rules.set_presence(
        olga(pb.PRESENCE_WRAP_UP, on="call-1"),
        pb.SetPresenceRequest(operator_id="olga", presence=pb.PRESENCE_AVAILABLE),
        command_context(),
    )
    assert isinstance(decision, Emit)
    assert decision.type == "WrapUpEnded"


def test_a_missed_offer_puts_the_operator_on_a_break() -> None:
    # given routing withdrew an offer that was not accepted in time
    expired = routing.Assignment(interaction_id="call-1", released_operator_id="olga")
    command = rules.on_offer_withdrawn(expired, event_context("OfferExpired"))
    assert command is not None
    assert isinstance(command.payload, pb.ReleaseOperatorRequest)
    # when the operator is released
    released = rules.release(
        olga(pb.PRESENCE_BUSY, on="call-1"), command.payload, command_context()
    )
    assert isinstance(released, pb.Operator)
    # then they are on a break for a missed call
    assert released.presence == pb.PRESENCE_BREAK
    assert released.break_reason == "missed call"


def test_a_cancelled_offer_makes_the_operator_available() -> None:
    cancelled = routing.Assignment(interaction_id="call-1", released_operator_id="olga")
    command = rules.on_offer_withdrawn(cancelled, event_context("RoutingCancelled"))
    assert command is not None
    assert isinstance(command.payload, pb.ReleaseOperatorRequest)
    released = rules.release(
        olga(pb.PRESENCE_BUSY, on="call-1"), command.payload, command_context()
    )
    assert isinstance(released, pb.Operator)
    assert released.presence == pb.PRESENCE_AVAILABLE


def test_a_call_answered_by_someone_else_makes_the_operator_it_was_offered_available() -> None:
    # given routing completed a call answered by ivan while it was offered to olga
    completed = routing.Assignment(interaction_id="call-1", operator_id="ivan", released_operator_id="olga")
    command = rules.on_offer_withdrawn(completed, event_context("RoutingCompleted"))
    assert command is not None
    assert isinstance(command.payload, pb.ReleaseOperatorRequest)
    # when olga is released
    released = rules.release(olga(pb.PRESENCE_BUSY, on="call-1"), command.payload, command_context())
    # then she is available again, not on a break
    assert isinstance(released, pb.Operator)
    assert released.presence == pb.PRESENCE_AVAILABLE


def test_a_call_answered_by_the_operator_offered_releases_nobody() -> None:
    completed = routing.Assignment(interaction_id="call-1", operator_id="olga")
    assert rules.on_offer_withdrawn(completed, event_context("RoutingCompleted")) is None


def test_releasing_an_operator_from_a_call_they_are_no_longer_on_changes_nothing() -> None:
    decision = rules.release(
        olga(pb.PRESENCE_BUSY, on="call-2"),
        pb.ReleaseOperatorRequest(operator_id="olga", interaction_id="call-1"),
        command_context(),
    )
    assert decision is UNCHANGED


def test_ending_a_wrap_up_that_is_already_over_changes_nothing() -> None:
    # e.g. the tick sent it twice, or the operator became available early
    decision = rules.end_wrap_up(
        olga(pb.PRESENCE_AVAILABLE), pb.EndWrapUpRequest(operator_id="olga"), command_context()
    )
    assert decision is UNCHANGED


def test_the_tick_sends_the_same_command_for_the_same_version_of_an_operator() -> None:
    done = olga(pb.PRESENCE_WRAP_UP, on="c1")
    done.wrap_up_until.FromDatetime(datetime.now(UTC) - timedelta(seconds=1))
    first = wrap_up_tick([Versioned(done, 4)])
    again = wrap_up_tick([Versioned(done, 4)])
    later = wrap_up_tick([Versioned(done, 6)])
    assert first[0].command_id is not None
    assert first[0].command_id == again[0].command_id != later[0].command_id
