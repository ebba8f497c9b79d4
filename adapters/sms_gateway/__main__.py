"""Runs the SMS adapter: ``python -m adapters.sms_gateway``.

It delivers through the gateway at ``TROUPE_SMS_GATEWAY_URL`` and serves its
health on ``TROUPE_HTTP_PORT``. In the local run (``TROUPE_DEMO=1``, no gateway
given) it brings the simulated gateway on that port (``GET /v1/messages`` lists
what the customers received) and logs every message.
"""

import os
import threading
import time

from fastapi import FastAPI

from adapters.delivery import DeliveryWorker, run_delivery_adapter
from adapters.serving import demo, http_port, start_process
from adapters.sms_gateway.app import SmsGateway
from adapters.sms_gateway.simulator import Outbox, create_gateway
from troupe.settings import settings


def show(outbox: Outbox) -> None:
    seen = 0
    while True:
        time.sleep(1)
        for message in outbox.sent[seen:]:
            print(f"SMS to {message.to}: {message.text}", flush=True)
        seen = len(outbox.sent)


def main() -> None:
    start_process("sms_gateway")
    port = http_port(8093)
    url = os.environ.get("TROUPE_SMS_GATEWAY_URL", "")
    if url or not demo():
        app = FastAPI(title="SMS adapter")
        url = url or "http://127.0.0.1:8083"
    else:
        app, outbox = create_gateway()
        url = f"http://127.0.0.1:{port}"
        print(f"simulated SMS gateway at {url}/v1/messages", flush=True)
        threading.Thread(target=show, args=(outbox,), daemon=True).start()
    worker = DeliveryWorker(settings().kafka, SmsGateway(url))
    run_delivery_adapter(worker, app, port)


if __name__ == "__main__":
    main()
