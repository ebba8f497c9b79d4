"""Rules are tested one decision at a time: nothing one test decided is remembered in the next."""

from __future__ import annotations

import pytest

from services.routing import service as routing_rules


@pytest.fixture(autouse=True)
def no_offers_in_flight() -> None:
    routing_rules.IN_FLIGHT.clear()
