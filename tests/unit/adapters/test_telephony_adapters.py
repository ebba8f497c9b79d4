"""Both telephony adapters: their platforms' formats become the same interaction
commands; repeated deliveries become the same command; bad input is refused
with a clear 4xx and nothing is sent."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from adapters.calls import interaction_id
from adapters.telephony_ami.app import create_app as ami_app
from adapters.telephony_ami.simulator import ManagerPbx
from adapters.telephony_webhook.app import create_app as webhook_app
from adapters.telephony_webhook.simulator import WebhookPlatform
from contracts.interaction.v1 import interaction_pb2 as interaction

from .fakes import RecordingSender


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
def webhook(sender: RecordingSender) -> WebhookPlatform:
    return WebhookPlatform(TestClient(webhook_app(sender)), "msk")


@pytest.fixture
def pbx(sender: RecordingSender) -> ManagerPbx:
    return ManagerPbx(TestClient(ami_app(sender)), "ekb")


def test_a_webhook_call_becomes_the_interaction_commands(
    webhook: WebhookPlatform, sender: RecordingSender
) -> None:
    # when the platform reports a call's start, answer and end
    started = webhook.start("c-17", "8 (916) 123-45-67", "orders")
    webhook.answer("c-17")
    webhook.end("c-17")
    # then the adapter accepts them and sends the interaction's commands
    assert started.status_code == 202
    assert started.json()["interaction_id"] == interaction_id("webhook", "c-17")
    assert sender.types == ["ReceiveInteraction", "AnswerInteraction", "EndInteraction"]
    receive = sender.sent[0].command.payload
    assert isinstance(receive, interaction.ReceiveInteractionRequest)
    assert (receive.site, receive.caller, receive.skill, receive.external_id) == (
        "msk",
        "8 (916) 123-45-67",
        "orders",
        "c-17",
    )
    # and every command of the call carries the call as correlation id
    assert {s.correlation_id for s in sender.sent} == {interaction_id("webhook", "c-17")}


def test_a_webhook_event_delivered_twice_is_the_same_command(
    webhook: WebhookPlatform, sender: RecordingSender
) -> None:
    webhook.start("c-1", "+79161234567")
    again = webhook.redeliver_last()
    assert again.status_code == 202
    assert sender.sent[0].command_id == sender.sent[1].command_id


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "id": "e",
                "type": "call.started",
                "occurred_at": "2025-03-01T10:00:00Z",
                "call": {"id": "c"},
            },
            "call.from is required",
        ),
        (
            {
                "id": "e",
                "type": "call.transferred",
                "occurred_at": "2025-03-01T10:00:00Z",
                "call": {"id": "c"},
            },
            "type: Input should be",
        ),
        (
            {
                "id": "e",
                "type": "call.ended",
                "occurred_at": "2025-03-01T10:00:00",
                "call": {"id": "c"},
            },
            "occurred_at: Input should have timezone info",
        ),
        (
            {"type": "call.ended", "occurred_at": "2025-03-01T10:00:00Z", "call": {"id": "c"}},
            "id: Field required",
        ),
    ],
)
def test_a_bad_webhook_gets_a_4xx_naming_the_problem_and_sends_nothing(
    sender: RecordingSender, body: dict[str, object], message: str
) -> None:
    response = TestClient(webhook_app(sender)).post("/sites/msk/events", json=body)
    assert response.status_code == 422
    assert message in response.json()["error"]
    assert sender.sent == []


def test_a_webhook_that_is_not_json_gets_a_4xx(sender: RecordingSender) -> None:
    response = TestClient(webhook_app(sender)).post(
        "/sites/msk/events", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON" in response.json()["error"]
    assert sender.sent == []


def test_a_manager_interface_call_becomes_the_same_interaction_commands(
    pbx: ManagerPbx, sender: RecordingSender
) -> None:
    # when the PBX streams a call's events (with the noise it always sends)
    started = pbx.start("1709283600.117", "89161234567", "returns")
    pbx.answer("1709283600.117")
    pbx.end("1709283600.117")
    # then the same commands as from the webhook platform are sent
    assert started.status_code == 202
    assert started.json() == {
        "accepted": 1,
        "interaction_ids": [interaction_id("ami", "1709283600.117")],
    }
    assert sender.types == ["ReceiveInteraction", "AnswerInteraction", "EndInteraction"]
    receive = sender.sent[0].command.payload
    assert isinstance(receive, interaction.ReceiveInteractionRequest)
    assert (receive.site, receive.caller, receive.skill) == ("ekb", "89161234567", "returns")


def test_a_replayed_stream_is_the_same_commands(pbx: ManagerPbx, sender: RecordingSender) -> None:
    pbx.start("1.1", "89161234567")
    pbx.replay()
    assert len(sender.sent) == 2
    assert sender.sent[0].command_id == sender.sent[1].command_id


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (
            "Event: Newchannel\nUniqueid: 1.1\nthis is not a pair\n\n",
            "line 3: 'this is not a pair'",
        ),
        ("Event: Newchannel\nUniqueid: 1.1\n\n", "event 1 (Newchannel): CallerIDNum is missing"),
        ("Event: Hangup\nCause: 16\n\n", "event 1 (Hangup): Uniqueid is missing"),
        ("Uniqueid: 1.1\n\n", "event 1 (?): Event is missing"),
        ("Event: Hangup\nUniqueid: 1.1\nTimestamp: yesterday\n\n", "Timestamp 'yesterday'"),
    ],
)
def test_a_bad_stream_gets_a_400_naming_the_line_and_publishes_nothing(
    sender: RecordingSender, stream: str, message: str
) -> None:
    # given a batch with a good event before the bad one
    good = "Event: Newchannel\nUniqueid: 9.9\nCallerIDNum: 89160000000\n\n"
    body = stream if "line 3" in message else good + stream
    response = TestClient(ami_app(sender)).post("/sites/ekb/ami", content=body)
    assert response.status_code == 400
    assert (
        message.replace("event 1", "event 2" if body != stream else "event 1")
        in response.json()["error"]
    )
    assert sender.sent == []


def test_both_platforms_speak_the_same_contract(sender: RecordingSender) -> None:
    WebhookPlatform(TestClient(webhook_app(sender)), "msk").start("a", "+79160000001")
    ManagerPbx(TestClient(ami_app(sender)), "spb").start("b", "+79160000002")
    assert [type(s.command.payload) for s in sender.sent] == [
        interaction.ReceiveInteractionRequest
    ] * 2


def test_the_simulators_talk_http(sender: RecordingSender) -> None:
    # the simulators take any httpx client: here the adapters in-process
    client: httpx.Client = TestClient(webhook_app(sender))
    assert WebhookPlatform(client, "msk").end("x").status_code == 202
