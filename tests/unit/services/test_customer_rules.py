"""The customer service's rules: identifying callers, merging profiles."""

from __future__ import annotations

import pytest

from contracts.customer.v1 import customer_pb2 as pb
from contracts.interaction.v1 import interaction_pb2 as interaction
from services.customer import service as rules
from troupe import Emit, Rejected
from troupe.service.declaration import Command

from .world import World, command_context, event_context

TOPIC = "customer.events"


def world(*profiles: pb.Customer) -> World:
    w = World.of(rules.customer)
    for profile in profiles:
        w.given(TOPIC, profile.customer_id, profile)
    return w


def call(caller: str) -> interaction.Interaction:
    return interaction.Interaction(interaction_id="call-1", caller=caller, site="msk")


def test_a_known_caller_is_identified_by_any_spelling_of_their_number() -> None:
    # given a customer with a phone number
    anna = pb.Customer(customer_id="anna", name="Anna", phones=["+79161234567"])
    # when a call comes from the same number spelled the Russian way
    sent = rules.on_interaction_received(
        call("8 (916) 123-45-67"), event_context("InteractionReceived", world(anna))
    )
    # then the caller is identified as that customer
    assert isinstance(sent, Command)
    assert sent.entity_id == "anna"
    assert sent.payload == pb.IdentifyCallerRequest(
        customer_id="anna", phone="+79161234567", interaction_id="call-1"
    )


def test_an_unknown_caller_gets_the_id_of_their_number() -> None:
    # given nobody with this number
    # when two calls come from it
    first = rules.on_interaction_received(call("+7 916 000 00 01"), event_context("X", world()))
    second = rules.on_interaction_received(call("89160000001"), event_context("X", world()))
    # then both identify the same (new) profile
    assert isinstance(first, Command)
    assert isinstance(second, Command)
    assert first.entity_id == second.entity_id == rules.caller_id("+79160000001")


def test_a_hidden_number_is_left_for_the_operator() -> None:
    assert rules.on_interaction_received(call("anonymous"), event_context("X", world())) is None


def test_identifying_an_unknown_caller_creates_a_profile() -> None:
    # when an unknown caller is identified
    decision = rules.identify_caller(
        None,
        pb.IdentifyCallerRequest(customer_id="c-1", phone="+79160000001", interaction_id="call-1"),
        command_context(),
    )
    # then a profile is registered with the number and the call
    assert isinstance(decision, Emit)
    assert decision.type == "CallerRegistered"
    assert isinstance(decision.state, pb.Customer)
    assert list(decision.state.phones) == ["+79160000001"]
    assert decision.state.last_interaction_id == "call-1"
    assert decision.state.name == "Caller +79160000001"


def test_identifying_a_known_caller_records_the_contact() -> None:
    anna = pb.Customer(customer_id="anna", name="Anna", phones=["+79161234567"])
    decision = rules.identify_caller(
        anna,
        pb.IdentifyCallerRequest(customer_id="anna", phone="+79161234567", interaction_id="c-9"),
        command_context(version=3),
    )
    assert decision.type == "CallerIdentified"
    assert isinstance(decision.state, pb.Customer)
    assert decision.state.name == "Anna"
    assert decision.state.last_interaction_id == "c-9"
    assert decision.state.HasField("last_contact_at")


def test_merging_takes_the_duplicates_phones_points_and_missing_details() -> None:
    # given two profiles of the same person
    anna = pb.Customer(customer_id="anna", name="Anna", phones=["+79161234567"], loyalty_points=10)
    duplicate = pb.Customer(
        customer_id="dup",
        name="Caller +79160000001",
        phones=["+79160000001", "+79161234567"],
        email="anna@example.com",
        loyalty_points=5,
    )
    # when they are merged
    merged = rules.merge(
        anna,
        pb.MergeCustomersRequest(customer_id="anna", duplicate_id="dup"),
        command_context(world(anna, duplicate)),
    )
    # then the survivor has everything
    assert list(merged.phones) == ["+79161234567", "+79160000001"]
    assert merged.email == "anna@example.com"
    assert merged.loyalty_points == 15
    # and the duplicate is retired by the cascade that follows
    assert list(merged.merged_from) == ["dup"]
    command = rules.on_merged(merged, event_context("CustomersMerged"))
    assert command.entity_id == "dup"
    assert command.payload == pb.MarkMergedRequest(customer_id="dup", merged_into="anna")


def test_merging_with_an_unknown_or_retired_profile_is_refused() -> None:
    anna = pb.Customer(customer_id="anna", name="Anna")
    retired = pb.Customer(customer_id="old", name="Old", merged_into="someone")
    with pytest.raises(Rejected, match="does not exist"):
        rules.merge(
            anna,
            pb.MergeCustomersRequest(customer_id="anna", duplicate_id="nobody"),
            command_context(world(anna)),
        )
    with pytest.raises(Rejected, match="already merged"):
        rules.merge(
            anna,
            pb.MergeCustomersRequest(customer_id="anna", duplicate_id="old"),
            command_context(world(anna, retired)),
        )
    with pytest.raises(Rejected, match="themselves"):
        rules.merge(
            anna,
            pb.MergeCustomersRequest(customer_id="anna", duplicate_id="anna"),
            command_context(world(anna)),
        )


def test_a_retired_profile_is_no_longer_found_by_phone() -> None:
    # given a duplicate
    duplicate = pb.Customer(customer_id="dup", name="X", phones=["+79160000001"], loyalty_points=5)
    # when it is marked merged
    retired = rules.mark_merged(
        duplicate, pb.MarkMergedRequest(customer_id="dup", merged_into="anna"), command_context()
    )
    # then its phones no longer find it and its points moved on
    assert retired.merged_into == "anna"
    assert rules.phones(retired) == []
    assert retired.loyalty_points == 0
