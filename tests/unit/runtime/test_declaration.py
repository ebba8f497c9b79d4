"""Service declarations: wrong ones fail when declared, and the topology is data."""

from __future__ import annotations

import pytest

from contracts.customer.v1 import customer_pb2 as pb
from contracts.events.v1 import envelope_pb2
from troupe import Command, CommandContext, Service
from troupe.service.declaration import command_type, service_of


def new_service() -> Service[pb.Customer]:
    return Service("customer", entity=pb.Customer, id_field="customer_id")


def test_a_command_of_another_service_is_refused_at_declaration() -> None:
    service = new_service()
    with pytest.raises(ValueError, match="not a command of customer"):
        service.command(envelope_pb2.ChangeResult, emits="X")


def test_a_command_without_the_entity_id_field_is_refused() -> None:
    service = Service("customer", entity=pb.Customer, id_field="loyalty_card")
    with pytest.raises(ValueError, match="has no field 'loyalty_card'"):
        service.command(pb.AwardLoyaltyPointsRequest, emits="LoyaltyPointsChanged")


def test_a_command_declared_twice_is_refused() -> None:
    service = new_service()

    @service.command(pb.AwardLoyaltyPointsRequest, emits="LoyaltyPointsChanged")
    def first(current: pb.Customer | None, request: pb.AwardLoyaltyPointsRequest, ctx: CommandContext) -> pb.Customer:
        return pb.Customer()

    with pytest.raises(ValueError, match="already has a handler"):
        service.command(pb.AwardLoyaltyPointsRequest, emits="LoyaltyPointsChanged")


def test_an_entity_outside_the_service_contracts_is_refused() -> None:
    with pytest.raises(ValueError, match=r"is not in contracts\.ticket"):
        Service("ticket", entity=pb.Customer, id_field="customer_id")


def test_a_bad_service_name_is_refused() -> None:
    with pytest.raises(ValueError, match="must match"):
        Service("Customer Service", entity=pb.Customer, id_field="customer_id")


def test_a_reaction_to_its_own_commands_topic_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot react to its own commands topic"):
        new_service().on("customer.commands", "CustomerRegistered", state=pb.Customer)


def test_a_reaction_without_event_types_is_refused() -> None:
    with pytest.raises(ValueError, match="must name the event types"):
        new_service().on("ticket.events", state=pb.Customer)


def test_a_tick_needs_a_positive_period() -> None:
    with pytest.raises(ValueError, match="positive period"):
        new_service().every(0, sends=())


def test_the_owning_service_comes_from_the_contract_package() -> None:
    assert service_of("contracts.customer.v1.Customer") == "customer"
    assert command_type(pb.AwardLoyaltyPointsRequest) == "AwardLoyaltyPoints"
    assert Command("c1", pb.AwardLoyaltyPointsRequest()).service == "customer"
    with pytest.raises(ValueError, match="not in a service contract package"):
        service_of("google.protobuf.Any")


def test_the_topology_is_derived_from_the_declarations() -> None:
    service = new_service()

    @service.command(pb.RegisterCustomerRequest, emits="CustomerRegistered")
    def register(current: pb.Customer | None, request: pb.RegisterCustomerRequest, ctx: CommandContext) -> pb.Customer:
        return pb.Customer()

    @service.on(
        "ticket.events",
        "TicketOpened",
        "TicketResolved",
        state=pb.Customer,
        sends=(pb.AwardLoyaltyPointsRequest,),
    )
    def reward(state: pb.Customer, ctx: object) -> None:
        return None

    service.project("operator.events", pb.Customer)
    topology = service.topology()

    assert topology.consumes == {
        "customer.commands": ("RegisterCustomer",),
        "ticket.events": ("TicketOpened", "TicketResolved"),
    }
    assert topology.produces == {
        "customer.events": ("CustomerRegistered",),
        "customer.commands": ("AwardLoyaltyPoints",),
    }
    assert str(topology).splitlines() == [
        "service customer",
        "  consumes customer.commands: RegisterCustomer",
        "  consumes ticket.events: TicketOpened, TicketResolved",
        "  produces customer.commands: AwardLoyaltyPoints",
        "  produces customer.events: CustomerRegistered",
        "  projects operator.events",
    ]


def sends_nothing(_state: pb.Customer, _context: object) -> None:
    return None


def test_a_service_reacts_to_an_event_type_once() -> None:
    service = new_service()
    service.on("ticket.events", "TicketOpened", "TicketResolved", state=pb.Customer)(sends_nothing)
    with pytest.raises(ValueError, match=r"already reacts to TicketResolved of ticket\.events"):
        service.on("ticket.events", "TicketResolved", state=pb.Customer, urgent=False)(sends_nothing)


def test_what_may_wait_is_marked_in_the_topology() -> None:
    # Given a service with an urgent and a not urgent command, and a not urgent reaction
    service = new_service()

    @service.command(pb.RegisterCustomerRequest, emits="CustomerRegistered")
    def register(current: pb.Customer | None, request: pb.RegisterCustomerRequest, ctx: CommandContext) -> pb.Customer:
        return pb.Customer()

    @service.command(pb.AwardLoyaltyPointsRequest, emits="LoyaltyPointsChanged", urgent=False)
    def award(current: pb.Customer | None, request: pb.AwardLoyaltyPointsRequest, ctx: CommandContext) -> pb.Customer:
        return pb.Customer()

    service.on("ticket.events", "TicketOpened", state=pb.Customer)(sends_nothing)
    service.on("ticket.events", "TicketResolved", state=pb.Customer, urgent=False)(sends_nothing)

    # When its topology is derived
    topology = service.topology()

    # Then the declarations say which records may wait, and the map shows them
    assert [d.urgent for d in service.commands.values()] == [True, False]
    assert topology.not_urgent == {"customer.commands": ("AwardLoyaltyPoints",), "ticket.events": ("TicketResolved",)}
    assert "  not urgent from customer.commands: AwardLoyaltyPoints" in str(topology).splitlines()
    assert "  not urgent from ticket.events: TicketResolved" in str(topology).splitlines()
    assert topology.consumes["ticket.events"] == ("TicketOpened", "TicketResolved")
