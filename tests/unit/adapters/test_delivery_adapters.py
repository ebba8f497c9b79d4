"""The SMS and e-mail adapters against their simulated systems, and the retry rule."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.delivery import DeliveryError, Retry, deliver_with_retries
from adapters.email_smtp.app import SmtpMailer
from adapters.email_smtp.simulator import Mailbox, start_mailbox
from adapters.serving import BackgroundServer
from adapters.sms_gateway.app import SmsGateway
from adapters.sms_gateway.simulator import Outbox, create_gateway
from contracts.notification.v1 import notification_pb2 as pb

NO_WAIT = Retry(attempts=3, first_backoff=0.0)


def sms(address: str = "+79161234567") -> pb.Notification:
    return pb.Notification(
        notification_id="n-1", channel=pb.CHANNEL_SMS, address=address, text="Resolved"
    )


@pytest.fixture
def gateway() -> Iterator[tuple[SmsGateway, Outbox]]:
    app, outbox = create_gateway()
    server = BackgroundServer(app).start()
    yield SmsGateway(server.url), outbox
    server.stop()


@pytest.fixture
def mailbox() -> Iterator[tuple[SmtpMailer, Mailbox]]:
    controller, box = start_mailbox()
    yield SmtpMailer(controller.hostname, controller.port), box
    controller.stop()


def test_an_sms_is_delivered_once_even_if_sent_twice(gateway: tuple[SmsGateway, Outbox]) -> None:
    channel, outbox = gateway
    first = channel.deliver(sms())
    again = channel.deliver(sms())
    assert first == again
    assert [m.to for m in outbox.sent] == ["+79161234567"]


def test_a_gateway_outage_is_retried_until_it_works(gateway: tuple[SmsGateway, Outbox]) -> None:
    channel, outbox = gateway
    outbox.fail_next = 2
    attempts, outcome = deliver_with_retries(channel, sms(), NO_WAIT)
    assert attempts == 3
    assert isinstance(outcome, str)
    assert len(outbox.sent) == 1


def test_a_gateway_that_stays_down_fails_after_the_retries(
    gateway: tuple[SmsGateway, Outbox],
) -> None:
    channel, outbox = gateway
    outbox.fail_next = 10
    attempts, outcome = deliver_with_retries(channel, sms(), NO_WAIT)
    assert attempts == 3
    assert isinstance(outcome, DeliveryError)
    assert "503" in str(outcome)


def test_a_number_the_gateway_refuses_is_not_retried(gateway: tuple[SmsGateway, Outbox]) -> None:
    channel, _ = gateway
    attempts, outcome = deliver_with_retries(channel, sms("12345"), NO_WAIT)
    assert attempts == 1
    assert isinstance(outcome, DeliveryError)
    assert outcome.permanent


def test_an_unreachable_gateway_is_retried() -> None:
    attempts, outcome = deliver_with_retries(SmsGateway("http://127.0.0.1:9"), sms(), NO_WAIT)
    assert attempts == 3
    assert isinstance(outcome, DeliveryError)
    assert not outcome.permanent


def test_an_email_reaches_the_smtp_server(mailbox: tuple[SmtpMailer, Mailbox]) -> None:
    channel, box = mailbox
    notification = pb.Notification(
        notification_id="n-2",
        channel=pb.CHANNEL_EMAIL,
        address="anna@example.com",
        subject="Your request is resolved",
        text="Delivered today",
    )
    message_id = channel.deliver(notification)
    (mail,) = box.wait_for(1)
    assert mail["To"] == "anna@example.com"
    assert mail["Subject"] == "Your request is resolved"
    assert mail["Message-ID"] == message_id == "<n-2@troupe>"
    assert "Delivered today" in mail.get_content()


def test_a_refused_mailbox_is_final(mailbox: tuple[SmtpMailer, Mailbox]) -> None:
    channel, _ = mailbox
    notification = pb.Notification(notification_id="n-3", address="gone@bounce.example", text="x")
    attempts, outcome = deliver_with_retries(channel, notification, NO_WAIT)
    assert attempts == 1
    assert isinstance(outcome, DeliveryError)
    assert outcome.permanent


def test_a_closed_smtp_port_is_retried() -> None:
    attempts, outcome = deliver_with_retries(
        SmtpMailer("127.0.0.1", 9), pb.Notification(notification_id="n", address="a@b.c"), NO_WAIT
    )
    assert attempts == 3
    assert isinstance(outcome, DeliveryError)
