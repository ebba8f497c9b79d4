"""Contract compatibility inside a release (check) and against the last release (gate)."""

from __future__ import annotations

from .release_history import CUSTOMER_EVENTS, Scripted, customer_proto

CUSTOMER = "contracts/customer/v1/customer.proto"


def released(base: Scripted) -> Scripted:
    base.release("bump")
    assert base.release("cut", "--notes", "First").code == 0
    return base


def customer_moves_to(repo: Scripted, proto: str, events: str = CUSTOMER_EVENTS) -> None:
    """New contracts, and the customer service (only) rebuilt against them."""
    repo.write(CUSTOMER, proto)
    repo.commit("Contracts: change Customer")
    repo.write("services/customer/events.yaml", events)
    repo.write("services/customer/rebuilt.py", f"# built against {repo.last_change('contracts')}\n")
    repo.commit("Customer: rebuild")
    assert repo.release("bump", "customer").code == 0


def test_a_compatible_change_passes_the_check(base: Scripted) -> None:
    customer_moves_to(released(base), customer_proto("string email = 5;\n"))

    result = base.release("check")

    assert result.code == 0, result.err


def test_a_breaking_change_is_refused_naming_rule_and_consumer(base: Scripted) -> None:
    breaking = customer_proto().replace("string name = 2;", "int64 name = 2;")
    customer_moves_to(released(base), breaking)
    old, new = base.git("log", "--format=%h", "-2", "--", "contracts").split()[::-1]

    result = base.release("cut", "--notes", "Numeric names")

    assert result.code == 1
    assert "release 2 refused:" in result.err
    assert f"[contracts-breaking] contracts {old} (composer, services/ticket, sidecar) → {new} " \
           "(services/customer): FIELD_WIRE_JSON_COMPATIBLE_TYPE at " \
           "contracts/customer/v1/customer.proto:13" in result.err
    assert 'changed type from "string" to "int64". —' in result.err  # buf's links dropped
    assert "contracts.customer.v1.Customer is read by services/ticket@" in result.err
    # The consumer-driven rule says the same from the consumer's side.
    assert "[consumer-unserved] services/ticket@" in result.err
    assert "reads contracts.customer.v1.Customer.name as `string = 2`, but services/customer@" \
           in result.err
    assert "sends `int64 = 2`" in result.err
    assert base.tags() == ["release-1"]


def test_removing_a_field_a_consumer_reads_is_refused(base: Scripted) -> None:
    without_address = customer_proto().replace(
        "Address address = 4;", "reserved 4;\n  reserved \"address\";"
    )
    customer_moves_to(released(base), without_address)

    result = base.release("check")

    assert result.code == 1
    assert "[contracts-breaking]" not in result.err  # reserved: wire-compatible for buf
    assert "[consumer-unserved] services/ticket@" in result.err
    assert "reads contracts.customer.v1.Customer.address, which services/customer@" in result.err
    assert "no longer sends" in result.err


def test_removing_a_field_nobody_reads_passes(base: Scripted) -> None:
    without_phones = customer_proto().replace(
        "repeated string phones = 3;", "reserved 3;\n  reserved \"phones\";"
    )
    customer_moves_to(released(base), without_phones)

    assert base.release("check").code == 0


def test_an_event_type_no_longer_produced_is_refused(base: Scripted) -> None:
    customer_moves_to(
        released(base), customer_proto("string email = 5;\n"),
        CUSTOMER_EVENTS.replace(", ContactChanged", ""),
    )

    result = base.release("check")

    assert result.code == 1
    assert "[consumer-unserved] services/ticket@" in result.err
    assert "reads ContactChanged events from customer.events, which no component" in result.err


def test_the_gate_passes_when_there_is_no_release_yet(base: Scripted) -> None:
    result = base.release("gate")

    assert result.code == 0
    assert "no release tag yet" in result.out
    assert "the gate passes" in result.out


def test_the_gate_passes_a_compatible_working_tree(base: Scripted) -> None:
    released(base).write(CUSTOMER, customer_proto("string email = 5;\n"))

    result = base.release("gate")

    assert result.code == 0, result.err
    assert "contracts/ checked against release-1: compatible" in result.out


def test_the_gate_fails_on_a_breaking_change_naming_rule_and_consumers(base: Scripted) -> None:
    released(base).write(CUSTOMER, customer_proto().replace("string name = 2;", "bool name = 2;"))

    result = base.release("gate")

    assert result.code == 1
    assert "contracts/ checked against release-1: 2 problem(s)" in result.err
    assert "[contracts-breaking] contracts/ against release-1: FIELD_WIRE_JSON_COMPATIBLE_TYPE" \
           in result.err
    assert "is read by services/ticket (working tree), services/ticket@" in result.err
    # The released ticket service reads what the next customer service would send.
    assert "[consumer-unserved] services/ticket@" in result.err
    assert "reads contracts.customer.v1.Customer.name as `string = 2`, but " \
           "services/customer (working tree) sends `bool = 2`" in result.err


def test_the_gate_fails_on_a_deleted_message_and_rpc(base: Scripted) -> None:
    released(base).write(
        "contracts/ticket/v1/ticket.proto",
        'syntax = "proto3";\npackage contracts.ticket.v1;\nmessage Note { string text = 1; }\n',
    )
    base.write(CUSTOMER, customer_proto().replace(
        "  rpc GetCustomer(Customer) returns (Customer);\n", ""
    ))

    result = base.release("gate")

    assert result.code == 1
    assert "PACKAGE_MESSAGE_NO_DELETE" in result.err
    assert "no declared consumer reads contracts.ticket.v1.Ticket" in result.err
    assert "RPC_NO_DELETE" in result.err
    assert "[undeclared-message] services/ticket (working tree)" in result.err


def test_the_gate_fails_when_a_field_a_consumer_reads_is_removed(base: Scripted) -> None:
    released(base).write(CUSTOMER, customer_proto().replace(
        "Address address = 4;", "reserved 4;\n  reserved \"address\";"
    ))

    result = base.release("gate")

    assert result.code == 1
    assert "[contracts-breaking]" not in result.err
    assert "[consumer-unserved] services/ticket (working tree): on customer.events: reads " \
           "contracts.customer.v1.Customer.address, which its own contracts do not have" \
           in result.err
    assert "[consumer-unserved] services/ticket@" in result.err
    assert "reads contracts.customer.v1.Customer.address, which services/customer " \
           "(working tree) no longer sends" in result.err
