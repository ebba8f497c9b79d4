"""The customers' mail server, played by a real SMTP server (aiosmtpd) that
keeps every message it receives. ``python -m adapters.email_smtp.simulator``
runs it for the local run; tests start it with ``start_mailbox``."""

from __future__ import annotations

import os
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class Mailbox:
    """aiosmtpd handler: keeps the messages, refuses addresses at ``bounce.example``."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.received = threading.Condition()

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        if address.endswith("@bounce.example"):
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.received:
            self.messages.append(message)
            self.received.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        with self.received:
            self.received.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)


def start_mailbox(port: int = 0, host: str = "127.0.0.1") -> tuple[Controller, Mailbox]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname=host, port=port or free_port())
    controller.start()
    return controller, mailbox


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    controller, mailbox = start_mailbox(int(os.environ.get("TROUPE_SMTP_PORT", "8025")))
    print(f"SMTP mailbox on {controller.hostname}:{controller.port}")
    seen = 0
    while True:
        time.sleep(1)
        for message in mailbox.messages[seen:]:
            print(f"mail to {message['To']}: {message['Subject']}")
        seen = len(mailbox.messages)


if __name__ == "__main__":
    main()
