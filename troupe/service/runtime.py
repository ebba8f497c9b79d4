"""One running instance of a service: its topics, store, replica, exactly-once
processor, gRPC server and metrics, and the calls its gRPC servicers use to
change entities (``submit``) and read them (``read``)."""

from __future__ import annotations

import logging
import signal
import threading
import uuid
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from contracts.events.v1 import envelope_pb2
from troupe.bus.topics import dlq_topic, ensure_topics
from troupe.grpc.server import GrpcServer
from troupe.observability import logs, metrics
from troupe.service import records
from troupe.service.declaration import Command, Service
from troupe.service.processor import Processor, RetryPolicy
from troupe.service.replica import Replica
from troupe.service.sender import CommandSender
from troupe.settings import KafkaSettings
from troupe.state.store import Store
from troupe.state.views import Versioned, Views

log = logging.getLogger(__name__)
EntityT = TypeVar("EntityT", bound=Message)


class CommandRefused(Exception):
    """The command produced no event: refused by a rule, or failed after retries."""

    def __init__(self, outcome: records.Outcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome

    @property
    def rejected(self) -> bool:
        return self.outcome.reason == envelope_pb2.DEAD_LETTER_REASON_REJECTED


class CommandTimeout(Exception):
    """No outcome in time; the command may still be applied later."""


@dataclass
class RuntimeOptions:
    state_dir: Path = Path(".troupe")
    instance: str = "0"
    grpc_address: str | None = "127.0.0.1:0"
    metrics_port: int = 0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_batch: int = 5_000
    # How long records declared not urgent wait for an urgent one to share a transaction.
    non_urgent_wait: float = 0.03
    # How long an applied command's id is remembered: a duplicate of the command
    # sent within this time has no second effect. None: forever.
    command_id_retention: timedelta | None = timedelta(days=7)


class Runtime(Generic[EntityT]):
    def __init__(self, service: Service[EntityT], kafka: KafkaSettings, options: RuntimeOptions | None = None) -> None:
        self.service = service
        self.kafka = kafka
        self.options = options or RuntimeOptions()
        self.store = Store(self.store_path(service.name, self.options))
        self.replica = Replica(
            kafka,
            self.store,
            [service.events_topic, *service.projections],
            outcomes_topic=dlq_topic(service.name),
            name=f"{service.name}-replica",
            lookup_keys=service.lookup_keys_by_topic(),
            command_id_retention=(
                None if self.options.command_id_retention is None else self.options.command_id_retention.total_seconds()
            ),
        )
        self.processor = Processor(
            service,
            kafka,
            self.replica,
            self.options.instance,
            self.options.retry,
            self.options.max_batch,
            non_urgent_wait=self.options.non_urgent_wait,
        )
        self._sender = CommandSender(kafka, service.name)
        self._processor_thread = threading.Thread(
            target=self._run_processor, name=f"{service.name}-processor", daemon=True
        )
        self.views = Views(self.store, service.view_types())
        self.grpc: GrpcServer | None = None
        self.failed: BaseException | None = None
        self.stopped = threading.Event()

    @staticmethod
    def store_path(service: str, options: RuntimeOptions) -> Path:
        return options.state_dir / "stores" / f"{service}-{options.instance}.sqlite"

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> Runtime[EntityT]:
        service = self.service
        topics = [service.events_topic, service.commands_topic, dlq_topic(service.name)]
        topics += [r.topic for r in service.reactions] + list(service.projections)
        ensure_topics(self.kafka, topics)
        metrics.serve(self.options.metrics_port)
        self.replica.start()
        self._processor_thread.start()
        if service.apis and self.options.grpc_address:
            self.grpc = GrpcServer(self.options.grpc_address)
            for api in service.apis:
                self.grpc.add(api.descriptor.full_name, api.add_to_server, api.servicer(self))
            self.grpc.start()
        log.info(
            "service started",
            extra=logs.fields(
                service=service.name,
                instance=self.options.instance,
                grpc_port=self.grpc.port if self.grpc else None,
            ),
        )
        return self

    def _run_processor(self) -> None:
        try:
            self.processor.run()
        except BaseException as error:
            self.failed = error
            log.exception("processor stopped", extra=logs.fields(service=self.service.name))
            self.stopped.set()

    def stop(self) -> None:
        if self.grpc:
            self.grpc.stop()
        self.processor.stop()
        self._processor_thread.join(60)
        self.replica.stop()
        self._sender.close()
        self.store.close()
        self.stopped.set()

    def run_forever(self) -> None:
        """Runs until SIGTERM/SIGINT, then shuts down cleanly."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopped.set())
        self.start()
        self.stopped.wait()
        self.stop()
        if self.failed:
            raise SystemExit(f"{self.service.name} failed: {self.failed}")

    # -- what servicers use -------------------------------------------------

    def submit(
        self,
        payload: Message,
        *,
        actor: envelope_pb2.Actor,
        correlation_id: str = "",
        expected_version: int | None = None,
        timeout: float = 10.0,
    ) -> records.Outcome:
        """Sends a command to this service and waits for its event: returns the new
        version, or raises ``CommandRefused`` with the reason it was refused. A
        command that changes nothing returns the current version (no event id) when
        this instance decided it; decided by another instance, it leaves the caller
        waiting until ``timeout`` (no record tells of it)."""
        entity_id = getattr(payload, self.service.id_field)
        if not entity_id:
            raise ValueError(f"{self.service.id_field} is required")
        command_id = str(uuid.uuid4())
        future = self.replica.expect(command_id)
        try:
            self._sender.send(
                Command(entity_id, payload, expected_version),
                actor=actor,
                command_id=command_id,
                correlation_id=correlation_id,
                timeout=timeout,
            )
        except Exception as error:
            self.replica.forget(command_id)
            raise CommandTimeout(str(error)) from error
        try:
            outcome = future.result(timeout)
        except FutureTimeout as error:
            self.replica.forget(command_id)
            raise CommandTimeout(f"no outcome for command {command_id} within {timeout}s") from error
        if not outcome.accepted:
            raise CommandRefused(outcome)
        return outcome

    def read(self, entity_id: str, min_version: int = 0, timeout: float = 5.0) -> Versioned[EntityT] | None:
        """The entity from the local store; with ``min_version``, waits (bounded) for it."""
        stored = self.replica.wait_for_version(self.service.events_topic, entity_id, min_version, timeout)
        if stored is None:
            return None
        return Versioned(self.service.entity.FromString(stored.state), stored.version)

    def find(self, lookup: str, value: str) -> list[Versioned[EntityT]]:
        """Entities whose declared lookup ``lookup`` has ``value``."""
        return self.views.find(self.service.events_topic, lookup, value)

    def scan(self, topic: str | None = None) -> list[Versioned[Any]]:
        """Every entity of the service (or of a projected topic)."""
        return self.views.scan(topic or self.service.events_topic)
