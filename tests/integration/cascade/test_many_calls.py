"""200 simultaneous calls over 20 operators at 3 sites: every call is assigned
exactly once, no operator ever has two calls at once, none is lost."""

from __future__ import annotations

import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest

from adapters.serving import BackgroundServer
from adapters.telephony_webhook.app import create_app as webhook_app
from adapters.telephony_webhook.simulator import WebhookPlatform
from contracts.interaction.v1 import interaction_pb2 as interaction_pb
from services.routing import service as routing_rules
from troupe.service import records
from troupe.service.runtime import CommandRefused

from ..waiting import wait_until
from .harness import Cascade, history

pytestmark = pytest.mark.integration

CALLS = 200
OPERATORS_PER_SITE = (7, 7, 6)


class Operators:
    """The operators at their desks: they answer what is offered to them and hang
    up at once (the wrap-up time then makes them available again)."""

    def __init__(self, cascade: Cascade, interaction_ids: list[str]) -> None:
        self.cascade = cascade
        self.pending = set(interaction_ids)
        self.answered: set[str] = set()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.work, daemon=True)

    def work(self) -> None:
        with ThreadPoolExecutor(20) as pool:
            while not self.stopping.is_set() and self.pending:
                list(pool.map(self.look_at, sorted(self.pending)))
                self.stopping.wait(0.02)

    def look_at(self, interaction_id: str) -> None:
        runtime = self.cascade["interaction"]
        found = runtime.read(interaction_id)
        if found is None:
            return
        call = found.state
        try:
            if call.state == interaction_pb.STATE_ASSIGNED and interaction_id not in self.answered:
                self.answered.add(interaction_id)
                runtime.submit(
                    interaction_pb.AnswerInteractionRequest(
                        interaction_id=interaction_id, operator_id=call.operator_id
                    ),
                    actor=records.user(call.operator_id),
                )
                runtime.submit(
                    interaction_pb.EndInteractionRequest(interaction_id=interaction_id),
                    actor=records.system("webhook"),
                )
            elif call.state in (interaction_pb.STATE_CLOSED, interaction_pb.STATE_ABANDONED):
                self.pending.discard(interaction_id)
        except CommandRefused:
            pass


@pytest.fixture
def calls_stay_at_their_site() -> Iterator[None]:
    """This test checks site routing: calls waiting for a long time would
    (rightly) be widened to any site."""
    before = routing_rules.POLICY.widen_after
    routing_rules.POLICY.widen_after = timedelta(minutes=30)
    yield
    routing_rules.POLICY.widen_after = before


@pytest.mark.usefixtures("calls_stay_at_their_site")
def test_200_simultaneous_calls_over_20_operators_at_3_sites(cascade: Cascade) -> None:
    # given 20 operators on duty at 3 sites
    sites = [f"load-{uuid.uuid4().hex[:6]}" for _ in OPERATORS_PER_SITE]
    operators = {
        cascade.operator_on_duty(site): site
        for site, count in zip(sites, OPERATORS_PER_SITE, strict=True)
        for _ in range(count)
    }
    assert cascade.sender is not None
    server = BackgroundServer(webhook_app(cascade.sender)).start()
    try:
        # when 200 calls arrive at once, spread over the sites
        def call(number: int) -> str:
            platform = WebhookPlatform(client, sites[number % len(sites)])
            response = platform.start(uuid.uuid4().hex, f"+7916{number:07d}")
            assert response.status_code == 202, response.text
            return str(response.json()["interaction_id"])

        with (
            httpx.Client(base_url=server.url, timeout=30) as client,
            ThreadPoolExecutor(50) as pool,
        ):
            interaction_ids = list(pool.map(call, range(CALLS)))
    finally:
        server.stop()
    desks = Operators(cascade, interaction_ids)
    desks.thread.start()
    try:
        # then every call is taken and closed
        wait_until(lambda: not desks.pending, timeout=180, what="every call closed")
    finally:
        desks.stopping.set()
        desks.thread.join(5)

    ours = set(interaction_ids)
    calls = [cascade["interaction"].read(i) for i in interaction_ids]
    assert all(c is not None and c.state.state == interaction_pb.STATE_CLOSED for c in calls)
    # each was assigned exactly once, to an operator of its own site
    assignments = [
        e
        for e in history(cascade.kafka, "interaction.events", lambda e: e.entity_id in ours)
        if e.type == "InteractionAssigned"
    ]
    assert Counter(e.entity_id for e in assignments) == Counter(dict.fromkeys(ours, 1))
    for found in calls:
        assert found is not None
        assert operators[found.state.operator_id] == found.state.site
    # and no operator ever held two calls
    holding: dict[str, str] = defaultdict(str)
    for event in history(cascade.kafka, "operator.events", lambda e: e.entity_id in operators):
        if event.type == "OperatorReserved":
            assert not holding[event.entity_id], f"{event.entity_id} got a second call"
            holding[event.entity_id] = "call"
        elif event.type in ("WrapUpEnded", "OperatorReleased"):
            holding[event.entity_id] = ""
