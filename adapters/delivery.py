"""Delivering notifications: what the SMS and e-mail adapters do the same way.

A worker reads ``notification.events`` (read_committed, its own consumer group),
takes the ``NotificationRequested`` events of its channel, delivers each with
retries and backoff, and reports the outcome to the notification service
(``MarkSent`` / ``MarkFailed``). A delivery that still fails after its retries
is written to ``notification.dlq`` with the original record, ready to be retried.
The offset is committed only after that, so a crash delivers again rather than
never: gateways get an idempotency key (the notification id) to drop repeats.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI
from google.protobuf.message import DecodeError

from adapters.serving import BackgroundServer, run_until_stopped
from contracts.events.v1 import envelope_pb2
from contracts.notification.v1 import notification_pb2 as pb
from troupe.bus import clients
from troupe.bus.topics import dlq_topic, ensure_topics, events_topic
from troupe.service import records
from troupe.service.declaration import Command
from troupe.service.sender import CommandSender
from troupe.settings import KafkaSettings

log = logging.getLogger(__name__)
NOTIFICATIONS = events_topic("notification")
NAMESPACE = uuid.UUID("0f6f1f0e-8d0b-4f7d-9a3e-3c9e5d2b6a41")


class DeliveryError(Exception):
    """The channel did not take the message. ``permanent``: retrying cannot help
    (e.g. the gateway says the number does not exist)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel(Protocol):
    # Who delivers, e.g. "sms_gateway"; names the consumer group.
    name: str
    channel: pb.Channel

    def deliver(self, notification: pb.Notification) -> str:
        """Sends the message; returns the provider's message id."""
        ...


@dataclass(frozen=True)
class Retry:
    attempts: int = 4
    first_backoff: float = 0.2
    max_backoff: float = 5.0

    def backoff(self, attempt: int) -> float:
        return float(min(self.max_backoff, self.first_backoff * 2 ** (attempt - 1)))


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


def deliver_with_retries(
    channel: Channel,
    notification: pb.Notification,
    retry: Retry,
    pause: Callable[[float], bool] = _sleep,
) -> tuple[int, str | DeliveryError]:
    """Tries up to ``retry.attempts`` times, pausing between tries (``pause``
    returns True to give up early, on shutdown): (attempts made, the provider's
    message id or the last error)."""
    error = DeliveryError("not attempted")
    for attempt in range(1, retry.attempts + 1):
        try:
            return attempt, channel.deliver(notification)
        except DeliveryError as failed:
            error = failed
            log.warning(
                "delivery failed",
                extra={"notification": notification.notification_id, "attempt": attempt},
            )
            if failed.permanent or attempt == retry.attempts or pause(retry.backoff(attempt)):
                return attempt, error
    return retry.attempts, error


class DeliveryWorker:
    def __init__(self, kafka: KafkaSettings, channel: Channel, retry: Retry = Retry(), group: str = "") -> None:
        self.kafka = kafka
        self.channel = channel
        self.retry = retry
        self.group = group or f"{channel.name}-delivery"
        self.sender = CommandSender(kafka, channel.name)
        self.dead_letters = clients.producer(kafka)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name=self.group, daemon=True)

    def start(self) -> DeliveryWorker:
        ensure_topics(self.kafka, [NOTIFICATIONS, dlq_topic("notification")])
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(15)
        self.sender.close()
        self.dead_letters.flush(5)

    def run(self) -> None:
        consumer = clients.consumer(self.kafka, group_id=self.group)
        consumer.subscribe([NOTIFICATIONS])
        try:
            while not self.stopping.is_set():
                message = consumer.poll(0.1)
                if message is None or message.error() is not None:
                    continue
                self.handle(message)
                consumer.commit(message=message, asynchronous=False)
        finally:
            consumer.close()

    def handle(self, message: Any) -> None:
        try:
            event = envelope_pb2.Envelope.FromString(message.value() or b"")
        except DecodeError:
            log.error("undecodable record in %s at %s", NOTIFICATIONS, message.offset())
            return
        if event.type != "NotificationRequested":
            return
        notification = pb.Notification.FromString(event.state.value)
        if notification.channel != self.channel.channel:
            return
        attempts, outcome = deliver_with_retries(self.channel, notification, self.retry, self.stopping.wait)
        command: pb.MarkSentRequest | pb.MarkFailedRequest
        if isinstance(outcome, str):
            command = pb.MarkSentRequest(
                notification_id=notification.notification_id,
                provider_message_id=outcome,
                attempts=attempts,
            )
        else:
            self.dead_letter(message, event, outcome, attempts)
            command = pb.MarkFailedRequest(
                notification_id=notification.notification_id, error=str(outcome), attempts=attempts
            )
        self.sender.send(
            Command(notification.notification_id, command),
            actor=records.system(self.channel.name),
            command_id=str(uuid.uuid5(NAMESPACE, f"{event.event_id}/outcome")),
            correlation_id=event.correlation_id,
            # The outcome answers the request to deliver.
            causation_id=event.event_id,
        )

    def dead_letter(self, message: Any, event: envelope_pb2.Envelope, error: DeliveryError, attempts: int) -> None:
        letter = envelope_pb2.DeadLetter(
            service=f"notification/{self.channel.name}",
            reason=envelope_pb2.DEAD_LETTER_REASON_FAILED,
            error=str(error),
            attempts=attempts,
            failed_at=records.now(),
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            key=message.key() or b"",
            value=message.value() or b"",
            record_id=event.event_id,
            correlation_id=event.correlation_id,
            entity_id=event.entity_id,
        )
        delivered: list[Any] = []
        self.dead_letters.produce(
            dlq_topic("notification"),
            letter.SerializeToString(),
            message.key(),
            on_delivery=lambda err, _: delivered.append(err),
        )
        self.dead_letters.flush(10)
        if not delivered or delivered[0] is not None:
            raise RuntimeError(f"cannot write the dead letter: {delivered}")


def run_delivery_adapter(worker: DeliveryWorker, app: FastAPI, port: int) -> None:
    """A delivery adapter as a process: the worker, and an HTTP app on ``port``
    (its health, and in the local run the simulated gateway), until SIGTERM."""

    @app.get("/health")
    def health() -> dict[str, bool]:
        return {"delivering": worker.thread.is_alive()}

    server = BackgroundServer(app, port).start()
    print(f"{worker.channel.name} adapter: http {server.url}", flush=True)
    worker.start()
    try:
        run_until_stopped(worker.thread.is_alive)
    finally:
        worker.stop()
        server.stop()
