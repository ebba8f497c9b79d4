"""The SMS gateway, simulated: the HTTP API the adapter calls, keeping what it
would have sent. It can be told to fail (``fail_next``) to show retries, drops
repeats by ``Idempotency-Key`` like real gateways, and refuses non-E.164 numbers.
Run it alone with ``python -m adapters.sms_gateway.simulator``."""

from __future__ import annotations

import os
import re
import threading
import uuid
from dataclasses import dataclass, field

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class Message(BaseModel):
    to: str
    text: str
    sender: str = ""


@dataclass
class Outbox:
    sent: list[Message] = field(default_factory=list)
    by_key: dict[str, str] = field(default_factory=dict)
    fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def create_gateway(outbox: Outbox | None = None) -> tuple[FastAPI, Outbox]:
    box = outbox or Outbox()
    app = FastAPI(title="SMS gateway (simulated)")

    @app.post("/v1/messages", status_code=201)
    def send(message: Message, idempotency_key: str = Header("")) -> JSONResponse:
        with box.lock:
            if box.fail_next > 0:
                box.fail_next -= 1
                return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
            if not E164.match(message.to):
                return JSONResponse({"error": f"{message.to!r} is not E.164"}, status_code=400)
            if idempotency_key and idempotency_key in box.by_key:
                return JSONResponse({"message_id": box.by_key[idempotency_key]}, status_code=200)
            message_id = f"sms-{uuid.uuid4().hex[:10]}"
            box.sent.append(message)
            if idempotency_key:
                box.by_key[idempotency_key] = message_id
        return JSONResponse({"message_id": message_id}, status_code=201)

    @app.get("/v1/messages")
    def sent() -> list[Message]:
        return list(box.sent)

    return app, box


def main() -> None:
    import uvicorn

    app, _ = create_gateway()
    port = int(os.environ.get("TROUPE_SMS_GATEWAY_PORT", "8083"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
