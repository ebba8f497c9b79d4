"""The routing service's rules: who takes which call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from contracts.operator.v1 import operator_pb2 as operator
from contracts.routing.v1 import routing_pb2 as pb
from services.routing import service as rules
from troupe import UNCHANGED, Emit, Rejected
from troupe.state.views import Versioned

from .world import World, command_context, event_context, sent, tick_context

OPERATORS = "operator.events"
ROUTING = "routing.events"


def at(seconds_ago: float) -> Timestamp:
    """A moment relative to the wall clock the rules read (not to import time:
    the suite may run this module minutes after importing it)."""
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC) - timedelta(seconds=seconds_ago))
    return stamp


def person(
    operator_id: str,
    site: str = "msk",
    idle_for: float = 10,
    skills: tuple[str, ...] = ("orders",),
    presence: int = operator.PRESENCE_AVAILABLE,
) -> operator.Operator:
    return operator.Operator(
        operator_id=operator_id,
        site=site,
        skills=skills,
        presence=presence,  # type: ignore[arg-type]
        presence_since=at(idle_for),
    )


def world(*people: operator.Operator, calls: tuple[pb.Assignment, ...] = ()) -> World:
    w = World.of(rules.routing)
    for p in people:
        w.given(OPERATORS, p.operator_id, p)
    for c in calls:
        w.given(ROUTING, c.interaction_id, c)
    return w


def route(w: World, site: str = "msk", waited: float = 0, skill: str = "orders") -> Emit:
    decision: Emit = rules.route(
        None,
        pb.RouteInteractionRequest(interaction_id="call-1", site=site, skill=skill, queued_at=at(waited)),
        command_context(w),
    )
    return decision


@pytest.fixture(autouse=True)
def policy() -> None:
    rules.POLICY.widen_after = timedelta(seconds=60)
    rules.POLICY.accept_timeout = timedelta(seconds=20)


def test_a_call_goes_to_the_longest_idle_operator_with_the_skill_at_its_site() -> None:
    # given operators at two sites, one without the skill, one idle for longest elsewhere
    w = world(
        person("short-idle", idle_for=5),
        person("long-idle", idle_for=50),
        person("no-skill", idle_for=500, skills=("returns",)),
        person("other-site", site="spb", idle_for=900),
        person("on-break", idle_for=999, presence=operator.PRESENCE_BREAK),
    )
    # when a call arrives at msk for "orders"
    decision = route(w)
    # then the msk operator idle the longest with the skill is offered it
    assert decision.type == "OperatorOffered"
    assert isinstance(decision.state, pb.Assignment)
    assert decision.state.operator_id == "long-idle"
    assert decision.state.state == pb.STATE_OFFERED
    assert decision.state.offers == 1


def test_with_nobody_available_the_call_waits() -> None:
    decision = route(world(person("spb-only", site="spb")))
    assert decision.type == "CallWaiting"
    assert isinstance(decision.state, pb.Assignment)
    assert decision.state.state == pb.STATE_WAITING
    assert decision.state.announced_waiting


def test_after_waiting_long_enough_any_site_may_take_the_call() -> None:
    w = world(person("spb-op", site="spb"))
    decision = route(w, waited=61)
    assert decision.type == "OperatorOffered"
    assert isinstance(decision.state, pb.Assignment)
    assert decision.state.operator_id == "spb-op"


def test_an_operator_with_a_pending_offer_is_not_offered_a_second_call() -> None:
    pending = pb.Assignment(interaction_id="call-0", state=pb.STATE_OFFERED, operator_id="olga")
    decision = route(world(person("olga"), calls=(pending,)))
    assert decision.type == "CallWaiting"


def test_calls_decided_before_the_views_catch_up_go_to_different_operators() -> None:
    # given two idle operators, and views that do not show any offer yet
    w = world(person("olga", idle_for=50), person("ivan", idle_for=20))
    # when two calls are routed one after the other (one batch)
    first, second = route(w), route(w)
    # then the second goes to the next operator, not to the one just offered the first
    assert isinstance(first.state, pb.Assignment)
    assert isinstance(second.state, pb.Assignment)
    assert (first.state.operator_id, second.state.operator_id) == ("olga", "ivan")
    # and once olga's own events move her version on, the note about her lapses
    w.given(OPERATORS, "olga", person("olga", idle_for=1), version=2)
    third = route(w)
    assert isinstance(third.state, pb.Assignment)
    assert third.state.operator_id == "olga"


def test_a_refused_offer_goes_to_the_next_operator_at_once() -> None:
    # given a call offered to olga, and ivan also available
    offered = pb.Assignment(
        interaction_id="call-1",
        site="msk",
        skill="orders",
        queued_at=at(1),
        state=pb.STATE_OFFERED,
        operator_id="olga",
        offers=1,
    )
    w = world(person("olga", idle_for=50), person("ivan", idle_for=5))
    # when olga refuses (she took another call meanwhile)
    decision = rules.record_refusal(
        offered,
        pb.RecordRefusalRequest(interaction_id="call-1", operator_id="olga"),
        command_context(w),
    )
    # then ivan is offered it
    assert decision.type == "OperatorOffered"
    assert isinstance(decision.state, pb.Assignment)
    assert decision.state.operator_id == "ivan"
    assert list(decision.state.passed_over) == ["olga"]


def test_a_refusal_of_an_offer_already_withdrawn_changes_nothing() -> None:
    offered = pb.Assignment(interaction_id="call-1", state=pb.STATE_OFFERED, operator_id="ivan")
    decision = rules.record_refusal(
        offered,
        pb.RecordRefusalRequest(interaction_id="call-1", operator_id="olga"),
        command_context(),
    )
    assert decision is UNCHANGED


def test_an_operator_who_becomes_available_gets_the_longest_waiting_call() -> None:
    # given two waiting calls at msk and an older one at spb not yet widened
    newer = pb.Assignment(interaction_id="new", site="msk", skill="orders", queued_at=at(5), state=pb.STATE_WAITING)
    older = pb.Assignment(interaction_id="old", site="msk", skill="orders", queued_at=at(30), state=pb.STATE_WAITING)
    spb = pb.Assignment(interaction_id="spb", site="spb", skill="orders", queued_at=at(40), state=pb.STATE_WAITING)
    w = world(calls=(newer, older, spb))
    # when olga at msk becomes available
    command = rules.on_operator_available(person("olga"), event_context("WrapUpEnded", w))
    # then she is offered the older msk call
    assert command is not None
    assert command.payload == pb.OfferOperatorRequest(interaction_id="old", operator_id="olga")


def test_an_operator_with_an_empty_queue_at_their_site_takes_a_call_that_waited_long_elsewhere() -> None:
    # given nothing waits at msk; at spb one call waited past the widening, one not
    fresh = pb.Assignment(interaction_id="fresh", site="spb", skill="orders", queued_at=at(5), state=pb.STATE_WAITING)
    widened = pb.Assignment(
        interaction_id="widened", site="spb", skill="orders", queued_at=at(61), state=pb.STATE_WAITING
    )
    w = world(calls=(fresh, widened))
    # when olga at msk becomes available, she is offered the one that waited long enough
    command = rules.on_operator_available(person("olga"), event_context("PresenceChanged", w))
    assert command is not None
    assert command.payload == pb.OfferOperatorRequest(interaction_id="widened", operator_id="olga")


def test_an_operator_becoming_unavailable_triggers_nothing() -> None:
    w = world(calls=(pb.Assignment(interaction_id="x", site="msk", state=pb.STATE_WAITING),))
    gone = person("olga", presence=operator.PRESENCE_BREAK)
    assert rules.on_operator_available(gone, event_context("PresenceChanged", w)) is None


def test_an_offer_for_a_call_someone_else_already_got_changes_nothing() -> None:
    offered = pb.Assignment(interaction_id="call-1", state=pb.STATE_OFFERED, operator_id="ivan")
    decision = rules.offer_operator(
        offered,
        pb.OfferOperatorRequest(interaction_id="call-1", operator_id="olga"),
        command_context(),
    )
    assert decision is UNCHANGED


def test_an_expiry_of_an_offer_already_answered_changes_nothing() -> None:
    answered = pb.Assignment(interaction_id="call-1", state=pb.STATE_ANSWERED, operator_id="ivan")
    decision = rules.expire_offer(
        answered,
        pb.ExpireOfferRequest(interaction_id="call-1", operator_id="ivan"),
        command_context(),
    )
    assert decision is UNCHANGED


def answer(current: pb.Assignment, by: str) -> pb.Assignment:
    decision = rules.mark_answered(
        current, pb.MarkAnsweredRequest(interaction_id=current.interaction_id, operator_id=by), command_context()
    )
    assert isinstance(decision, pb.Assignment)
    return decision


def test_a_call_answered_by_the_operator_offered_completes_routing_and_releases_nobody() -> None:
    offered = pb.Assignment(interaction_id="call-1", state=pb.STATE_OFFERED, operator_id="ivan")
    done = answer(offered, by="ivan")
    assert (done.state, done.operator_id, done.released_operator_id) == (pb.STATE_ANSWERED, "ivan", "")


def test_an_answer_that_crossed_an_expired_offer_still_completes_routing() -> None:
    # given ivan's offer expired and the call waits again, but ivan answered meanwhile
    waiting = pb.Assignment(interaction_id="call-1", state=pb.STATE_WAITING, released_operator_id="ivan")
    # when his answer arrives
    done = answer(waiting, by="ivan")
    # then routing is over, with ivan on the call and nobody else to release
    assert (done.state, done.operator_id, done.released_operator_id) == (pb.STATE_ANSWERED, "ivan", "")


def test_an_answer_that_crossed_a_new_offer_releases_the_new_operator() -> None:
    # given the call was offered to olga after ivan's offer expired, and ivan answered
    reoffered = pb.Assignment(interaction_id="call-1", state=pb.STATE_OFFERED, operator_id="olga")
    done = answer(reoffered, by="ivan")
    # then olga is released and ivan has the call
    assert (done.state, done.operator_id, done.released_operator_id) == (pb.STATE_ANSWERED, "ivan", "olga")


def test_an_answer_delivered_twice_changes_nothing_the_second_time() -> None:
    answered = pb.Assignment(interaction_id="call-1", state=pb.STATE_ANSWERED, operator_id="ivan")
    request = pb.MarkAnsweredRequest(interaction_id="call-1", operator_id="ivan")
    assert rules.mark_answered(answered, request, command_context()) is UNCHANGED


def test_a_new_offer_forgets_the_operator_released_before() -> None:
    waiting = pb.Assignment(
        interaction_id="call-1",
        state=pb.STATE_WAITING,
        site="msk",
        skill="orders",
        queued_at=at(1),
        released_operator_id="ivan",
    )
    decision = rules.offer_operator(
        waiting,
        pb.OfferOperatorRequest(interaction_id="call-1", operator_id="olga"),
        command_context(world(person("olga"))),
    )
    assert isinstance(decision, Emit)
    assert isinstance(decision.state, pb.Assignment)
    assert decision.state.released_operator_id == ""


def test_a_call_is_not_routed_twice() -> None:
    routed = pb.Assignment(interaction_id="call-1", state=pb.STATE_WAITING)
    with pytest.raises(Rejected, match="already being routed"):
        rules.route(routed, pb.RouteInteractionRequest(interaction_id="call-1"), command_context())


def test_the_sweep_expires_offers_not_accepted_in_time() -> None:
    stale = pb.Assignment(
        interaction_id="stale",
        state=pb.STATE_OFFERED,
        operator_id="olga",
        offered_at=at(21),
        queued_at=at(30),
    )
    fresh = pb.Assignment(
        interaction_id="fresh",
        state=pb.STATE_OFFERED,
        operator_id="ivan",
        offered_at=at(2),
        queued_at=at(3),
    )
    commands = sent(
        rules.sweep(tick_context(world(), [Versioned(stale, 2), Versioned(fresh, 2)], datetime.now(UTC), ROUTING))
    )
    assert [c.payload for c in commands] == [pb.ExpireOfferRequest(interaction_id="stale", operator_id="olga")]


def test_an_expired_offer_waits_again_and_passes_its_operator_over() -> None:
    offered = pb.Assignment(interaction_id="call-1", state=pb.STATE_OFFERED, operator_id="olga", offered_at=at(21))
    expired = rules.expire_offer(
        offered,
        pb.ExpireOfferRequest(interaction_id="call-1", operator_id="olga"),
        command_context(),
    )
    assert expired.state == pb.STATE_WAITING
    assert expired.released_operator_id == "olga"
    assert list(expired.passed_over) == ["olga"]


def test_the_sweep_matches_waiting_calls_with_idle_operators_one_each() -> None:
    # given three waiting calls and two idle operators
    calls = [
        pb.Assignment(
            interaction_id=f"c{i}",
            site="msk",
            skill="orders",
            queued_at=at(10 - i),
            state=pb.STATE_WAITING,
        )
        for i in range(3)
    ]
    w = world(person("olga", idle_for=50), person("ivan", idle_for=5))
    # when the sweep runs
    commands = sent(rules.sweep(tick_context(w, [Versioned(c, 1) for c in calls], datetime.now(UTC), ROUTING)))
    # then the two oldest calls are offered, to different operators, longest idle first
    assert [c.payload for c in commands] == [
        pb.OfferOperatorRequest(interaction_id="c0", operator_id="olga"),
        pb.OfferOperatorRequest(interaction_id="c1", operator_id="ivan"),
    ]


def test_the_sweep_offers_nothing_to_an_operator_with_an_open_offer() -> None:
    # given olga, the longest idle, has a call offered to her, and two calls wait
    on_offer = pb.Assignment(interaction_id="call-x", state=pb.STATE_OFFERED, operator_id="olga")
    calls = [
        pb.Assignment(interaction_id=f"c{i}", site="msk", skill="orders", queued_at=at(10 - i), state=pb.STATE_WAITING)
        for i in range(2)
    ]
    w = world(person("olga", idle_for=50), person("ivan", idle_for=5), calls=(on_offer,))
    # when the sweep runs
    commands = sent(rules.sweep(tick_context(w, [Versioned(c, 1) for c in calls], datetime.now(UTC), ROUTING)))
    # then only ivan is offered a call, the one that waited longest; the other waits
    assert [c.payload for c in commands] == [pb.OfferOperatorRequest(interaction_id="c0", operator_id="ivan")]


def test_an_abandoned_call_releases_the_operator_it_was_offered_to() -> None:
    offered = pb.Assignment(interaction_id="call-1", state=pb.STATE_OFFERED, operator_id="olga")
    cancelled = rules.cancel(offered, pb.CancelRoutingRequest(interaction_id="call-1"), command_context())
    assert cancelled.state == pb.STATE_CANCELLED
    assert cancelled.released_operator_id == "olga"
