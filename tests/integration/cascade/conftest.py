"""One cascade (six services, delivery adapters and simulated gateways) per module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from aiosmtpd.controller import Controller

from adapters.delivery import DeliveryWorker, Retry
from adapters.email_smtp.app import SmtpMailer
from adapters.email_smtp.simulator import Mailbox, start_mailbox
from adapters.serving import BackgroundServer
from adapters.sms_gateway.app import SmsGateway
from adapters.sms_gateway.simulator import Outbox, create_gateway
from troupe.settings import KafkaSettings

from .harness import Cascade


@pytest.fixture(scope="module")
def cascade(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cascade]:
    running = Cascade(kafka).start(tmp_path_factory.mktemp("cascade"))
    yield running
    running.stop()


@dataclass
class Gateways:
    outbox: Outbox
    mailbox: Mailbox


@pytest.fixture(scope="module")
def gateways(kafka: KafkaSettings) -> Iterator[Gateways]:
    app, outbox = create_gateway()
    sms_server = BackgroundServer(app).start()
    controller: Controller
    controller, mailbox = start_mailbox()
    retry = Retry(attempts=3, first_backoff=0.05)
    workers = [
        DeliveryWorker(kafka, SmsGateway(sms_server.url), retry).start(),
        DeliveryWorker(kafka, SmtpMailer(controller.hostname, controller.port), retry).start(),
    ]
    yield Gateways(outbox, mailbox)
    for worker in workers:
        worker.stop()
    controller.stop()
    sms_server.stop()


@pytest.fixture
def site() -> str:
    """A site of its own, so that no other test's operators take its calls."""
    return f"site-{uuid.uuid4().hex[:6]}"
