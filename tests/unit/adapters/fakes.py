"""A command sender that keeps what adapters send instead of producing to Kafka."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field

from contracts.events.v1 import envelope_pb2
from troupe.service.declaration import Command


@dataclass
class Sent:
    command: Command
    actor: envelope_pb2.Actor
    command_id: str
    correlation_id: str | None


@dataclass
class RecordingSender:
    sent: list[Sent] = field(default_factory=list)

    def send_nowait(
        self,
        command: Command,
        *,
        actor: envelope_pb2.Actor,
        command_id: str | None = None,
        correlation_id: str | None = None,
    ) -> Future[str]:
        assert command_id, "adapters derive command ids from the platform's ids"
        self.sent.append(Sent(command, actor, command_id, correlation_id))
        delivered: Future[str] = Future()
        delivered.set_result(command_id)
        return delivered

    @property
    def types(self) -> list[str]:
        return [s.command.type for s in self.sent]
