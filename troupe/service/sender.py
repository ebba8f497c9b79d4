"""Sending commands from outside a service: adapters turning an external
system's events into commands of the services that own the entities."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

from contracts.events.v1 import envelope_pb2
from troupe.bus import clients
from troupe.bus.topics import commands_topic
from troupe.observability import tracing
from troupe.service import records
from troupe.service.declaration import Cause, Command
from troupe.settings import KafkaSettings


class CommandSender:
    """Produces commands (idempotent producer, acks=all) and reports each one
    only once Kafka has it, so an adapter answers its caller after that."""

    def __init__(self, kafka: KafkaSettings, source: str) -> None:
        self.source = source
        self._producer = clients.producer(kafka, **{"linger.ms": 1, "client.id": source})
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._serve_deliveries, daemon=True)
        self._poller.start()

    def _serve_deliveries(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    def send(
        self,
        command: Command,
        *,
        actor: envelope_pb2.Actor,
        command_id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        timeout: float = 10.0,
    ) -> str:
        """Sends ``command`` and returns its id once Kafka acknowledged it. The same
        ``command_id`` sent twice changes the entity once."""
        return self.send_nowait(
            command,
            actor=actor,
            command_id=command_id,
            correlation_id=correlation_id,
            causation_id=causation_id,
        ).result(timeout)

    def send_nowait(
        self,
        command: Command,
        *,
        actor: envelope_pb2.Actor,
        command_id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> Future[str]:
        """Like ``send``, without waiting: the future holds the id once Kafka has it.
        ``causation_id`` names the event the command answers, if any."""
        command_id = command_id or command.command_id or records.new_id()
        cause = Cause(causation_id or command_id, correlation_id or command_id, actor, command.entity_id)
        envelope = records.command(command, cause, command_id)
        delivered: Future[str] = Future()

        def on_delivery(error: Any, _: Any) -> None:
            if error is None:
                delivered.set_result(command_id)
            else:
                delivered.set_exception(RuntimeError(f"Kafka did not take the command: {error}"))

        while True:
            try:
                self._producer.produce(
                    commands_topic(command.service),
                    envelope.SerializeToString(),
                    command.entity_id,
                    headers=tracing.new_trace_headers(),
                    on_delivery=on_delivery,
                )
                return delivered
            except BufferError:
                # The local queue is full: let deliveries drain, then try again.
                self._producer.poll(0.05)

    def close(self) -> None:
        self._producer.flush(10)
        self._stop.set()
        self._poller.join(5)
