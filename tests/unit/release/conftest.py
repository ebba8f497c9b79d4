"""Fixtures of the release tool's tests: scripted git histories in tmp directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from .release_history import CUSTOMER_EVENTS, TICKET_EVENTS, TICKET_PROTO, Scripted, customer_proto


@pytest.fixture
def scripted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Scripted:
    return Scripted(tmp_path / "repo", capsys)


@pytest.fixture
def base(scripted: Scripted) -> Scripted:
    """Contracts, two services (customer produces, ticket consumes), sidecar, composer."""
    scripted.write("contracts/customer/v1/customer.proto", customer_proto())
    scripted.write("contracts/ticket/v1/ticket.proto", TICKET_PROTO)
    scripted.commit("Contracts: customer and ticket")
    scripted.write("services/customer/__init__.py", "")
    scripted.write("services/customer/events.yaml", CUSTOMER_EVENTS)
    scripted.commit("Customer service")
    scripted.write("services/ticket/__init__.py", "")
    scripted.write("services/ticket/events.yaml", TICKET_EVENTS)
    scripted.commit("Ticket service")
    scripted.write("sidecar/__init__.py", "")
    scripted.write("composer/__init__.py", "")
    scripted.commit("Sidecar and composer")
    return scripted


