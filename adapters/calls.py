"""What every telephony adapter sends, whatever its platform speaks: the
interaction service's commands for a call that starts, is answered, and ends.

Ids are derived from the platform's own ids, so a delivery the platform repeats
becomes the same command (one effect), and every command of one call carries
the call's interaction id as correlation id (one cascade per call).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol

from fastapi import FastAPI
from google.protobuf.timestamp_pb2 import Timestamp

from adapters.serving import http_port, start_process
from contracts.events.v1 import envelope_pb2
from contracts.interaction.v1 import interaction_pb2 as interaction
from troupe.service import records
from troupe.service.declaration import Command

NAMESPACE = uuid.UUID("5b0d8f7e-3c1a-4d59-9a43-7b6f2f0c9e11")


class CallStep(Enum):
    STARTED = "started"
    ANSWERED = "answered"
    ENDED = "ended"


@dataclass(frozen=True)
class CallEvent:
    """One thing a telephony platform reported about one call."""

    platform: str
    # The platform's id of this report: the same when it delivers it again.
    event_id: str
    call_id: str
    step: CallStep
    at: datetime
    site: str
    caller: str = ""
    skill: str = ""


class Sender(Protocol):
    def send_nowait(
        self,
        command: Command,
        *,
        actor: envelope_pb2.Actor,
        command_id: str | None = None,
        correlation_id: str | None = None,
    ) -> Future[str]: ...


def interaction_id(platform: str, call_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{platform}/call/{call_id}"))


def command_id(event: CallEvent) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{event.platform}/event/{event.event_id}"))


def _stamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def command_for(event: CallEvent) -> Command:
    entity_id = interaction_id(event.platform, event.call_id)
    if event.step is CallStep.STARTED:
        return Command(
            entity_id,
            interaction.ReceiveInteractionRequest(
                interaction_id=entity_id,
                kind=interaction.KIND_CALL,
                platform=event.platform,
                external_id=event.call_id,
                site=event.site,
                skill=event.skill,
                caller=event.caller,
                received_at=_stamp(event.at),
            ),
        )
    if event.step is CallStep.ANSWERED:
        return Command(
            entity_id,
            interaction.AnswerInteractionRequest(interaction_id=entity_id, answered_at=_stamp(event.at)),
        )
    return Command(
        entity_id,
        interaction.EndInteractionRequest(interaction_id=entity_id, ended_at=_stamp(event.at)),
    )


async def publish(sender: Sender, events: list[CallEvent], timeout: float = 10.0) -> list[str]:
    """Sends the commands of already validated events, in order; returns their ids
    once Kafka has them all. The request waits on the event loop, not in a worker
    thread; the producer keeps the commands of one call in order (same key)."""
    sent = []
    for event in events:
        command = command_for(event)
        delivered = sender.send_nowait(
            command,
            actor=records.system(event.platform),
            command_id=command_id(event),
            correlation_id=command.entity_id,
        )
        sent.append(delivered)
    return [await asyncio.wait_for(asyncio.wrap_future(delivered), timeout) for delivered in sent]


def run_telephony_adapter(name: str, create_app: Callable[[Sender], FastAPI], default_port: int) -> None:
    """A telephony adapter as a process: its HTTP API on ``TROUPE_HTTP_PORT``,
    sending the interaction service's commands, until SIGTERM."""
    import uvicorn

    from troupe.bus.topics import commands_topic, ensure_topics
    from troupe.service.sender import CommandSender
    from troupe.settings import settings

    start_process(name)
    kafka = settings().kafka
    # The broker does not create topics on its own: the adapter may start first.
    ensure_topics(kafka, [commands_topic("interaction")])
    sender = CommandSender(kafka, name)
    port = http_port(default_port)
    print(f"{name} adapter listening on http://127.0.0.1:{port}", flush=True)
    try:
        uvicorn.run(create_app(sender), host="127.0.0.1", port=port, log_level="warning")
    finally:
        sender.close()
