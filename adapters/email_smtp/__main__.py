"""Runs the e-mail adapter: ``python -m adapters.email_smtp``.

It delivers through the SMTP server at ``TROUPE_SMTP_HOST``:``TROUPE_SMTP_PORT``
and serves its health on ``TROUPE_HTTP_PORT``. In the local run
(``TROUPE_DEMO=1``) it starts that SMTP server itself: a real aiosmtpd server
playing the customers' mail provider (default port 2525), whose messages
``GET /messages`` lists and the log shows.
"""

import os
import threading
import time

from fastapi import FastAPI

from adapters.delivery import DeliveryWorker, run_delivery_adapter
from adapters.email_smtp.app import SmtpMailer
from adapters.email_smtp.simulator import Mailbox, start_mailbox
from adapters.serving import demo, http_port, start_process
from troupe.settings import settings

DEFAULT_SMTP_PORT = 2525


def show(mailbox: Mailbox) -> None:
    seen = 0
    while True:
        time.sleep(1)
        for message in mailbox.messages[seen:]:
            print(f"mail to {message['To']}: {message['Subject']}", flush=True)
        seen = len(mailbox.messages)


def main() -> None:
    start_process("email_smtp")
    host = os.environ.get("TROUPE_SMTP_HOST", "127.0.0.1")
    smtp_port = int(os.environ.get("TROUPE_SMTP_PORT", str(DEFAULT_SMTP_PORT)))
    app = FastAPI(title="E-mail adapter")
    controller = None
    if demo():
        controller, mailbox = start_mailbox(smtp_port, host)
        print(f"SMTP server (the customers' mail, simulated) on {host}:{smtp_port}", flush=True)
        threading.Thread(target=show, args=(mailbox,), daemon=True).start()

        @app.get("/messages")
        def messages() -> list[dict[str, str]]:
            return [
                {"to": str(m["To"]), "subject": str(m["Subject"]), "message_id": str(m["Message-ID"])}
                for m in mailbox.messages
            ]

    worker = DeliveryWorker(settings().kafka, SmtpMailer(host, smtp_port))
    try:
        run_delivery_adapter(worker, app, http_port(8094))
    finally:
        if controller is not None:
            controller.stop()


if __name__ == "__main__":
    main()
