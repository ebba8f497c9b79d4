"""E-mail notifications through an SMTP server.

Each notification is one message with ``Message-ID: <notification id@troupe>``
(so a repeated delivery can be recognized by the receiving side). A refused
recipient is final; a refused or dropped connection is retried.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from adapters.delivery import DeliveryError
from contracts.notification.v1 import notification_pb2 as pb


class SmtpMailer:
    name = "email_smtp"
    channel = pb.CHANNEL_EMAIL

    def __init__(
        self, host: str, port: int, sender: str = "care@shop.example", timeout: float = 10.0
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.timeout = timeout

    def message(self, notification: pb.Notification) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = notification.address
        mail["Subject"] = notification.subject
        mail["Message-ID"] = f"<{notification.notification_id}@troupe>"
        mail.set_content(notification.text)
        return mail

    def deliver(self, notification: pb.Notification) -> str:
        mail = self.message(notification)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as error:
            raise DeliveryError(f"recipient refused: {error.recipients}", permanent=True) from error
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(f"SMTP server {self.host}:{self.port}: {error}") from error
        return str(mail["Message-ID"])
