"""A JSON-webhook telephony platform, simulated: it posts call events to the
adapter the way the real platform does, can deliver an event twice, and can run
live traffic for the local run (``python -m adapters.telephony_webhook.simulator``).
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx


class Client(Protocol):
    """Where the platform posts (an ``httpx.Client`` with the adapter's base URL, or
    anything posting the same way); a broken connection raises ``httpx.TransportError``."""

    def post(self, url: str, *, json: Any) -> httpx.Response: ...


class WebhookPlatform:
    def __init__(self, client: Client, site: str) -> None:
        self.client = client
        self.site = site
        self.delivered: list[dict[str, Any]] = []

    def post(self, event: dict[str, Any], attempts: int = 3) -> httpx.Response:
        """Delivers an event; when the connection breaks, delivers it again, as
        platforms do (the adapter recognizes the repeat and gives it one effect)."""
        self.delivered.append(event)
        for attempt in range(attempts):
            try:
                return self.client.post(f"/sites/{self.site}/events", json=event)
            except httpx.TransportError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def event(self, kind: str, call: dict[str, str]) -> dict[str, Any]:
        return {
            "id": f"evt-{uuid.uuid4().hex[:12]}",
            "type": f"call.{kind}",
            "occurred_at": datetime.now(UTC).isoformat(),
            "call": call,
        }

    def start(self, call_id: str, caller: str, line: str = "orders") -> httpx.Response:
        return self.post(self.event("started", {"id": call_id, "from": caller, "line": line}))

    def answer(self, call_id: str) -> httpx.Response:
        return self.post(self.event("answered", {"id": call_id}))

    def end(self, call_id: str) -> httpx.Response:
        return self.post(self.event("ended", {"id": call_id}))

    def redeliver_last(self) -> httpx.Response:
        """What platforms do when they missed the acknowledgement: send it again."""
        return self.post(self.delivered[-1])


def random_caller() -> str:
    digits = [random.randint(10, 99), random.randint(100, 999), random.randint(10, 99)]
    return f"8 (9{digits[0]}) {digits[1]}-{digits[2]}-{random.randint(10, 99)}"


def main() -> None:
    parser = argparse.ArgumentParser(description="simulated webhook telephony traffic")
    parser.add_argument("--url", default="http://127.0.0.1:8081")
    parser.add_argument("--sites", default="msk,spb")
    parser.add_argument("--calls-per-minute", type=float, default=20)
    parser.add_argument("--call-seconds", type=float, default=20)
    args = parser.parse_args()
    sites = args.sites.split(",")
    with httpx.Client(base_url=args.url, timeout=10) as client:
        platforms = {site: WebhookPlatform(client, site) for site in sites}
        active: list[tuple[float, WebhookPlatform, str]] = []
        while True:
            site = random.choice(sites)
            call_id = uuid.uuid4().hex[:10]
            platforms[site].start(call_id, random_caller(), random.choice(["orders", "returns"]))
            active.append((time.monotonic() + args.call_seconds, platforms[site], call_id))
            now = time.monotonic()
            for ends_at, platform, ending in [a for a in active if a[0] <= now]:
                platform.end(ending)
                active.remove((ends_at, platform, ending))
            time.sleep(60 / args.calls_per_minute)


if __name__ == "__main__":
    main()
