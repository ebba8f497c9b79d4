"""SMS notifications through the gateway's HTTP API.

``POST {gateway}/v1/messages`` with ``{"to": "+79161234567", "text": "...",
"sender": "Shop"}`` and the notification id as ``Idempotency-Key``; the gateway
answers ``201 {"message_id": "..."}``. A 4xx is final (e.g. a number it cannot
reach); a 5xx, a timeout or a refused connection is retried.
"""

from __future__ import annotations

import httpx

from adapters.delivery import DeliveryError
from contracts.notification.v1 import notification_pb2 as pb


class SmsGateway:
    name = "sms_gateway"
    channel = pb.CHANNEL_SMS

    def __init__(self, base_url: str, sender_name: str = "Shop", timeout: float = 5.0) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=timeout)
        self.sender_name = sender_name

    def deliver(self, notification: pb.Notification) -> str:
        try:
            response = self.client.post(
                "/v1/messages",
                json={
                    "to": notification.address,
                    "text": notification.text,
                    "sender": self.sender_name,
                },
                headers={"Idempotency-Key": notification.notification_id},
            )
        except httpx.HTTPError as error:
            raise DeliveryError(f"SMS gateway unreachable: {error}") from error
        if response.status_code >= 500:
            raise DeliveryError(f"SMS gateway error {response.status_code}: {response.text}")
        if response.status_code >= 400:
            raise DeliveryError(
                f"SMS gateway refused the message ({response.status_code}): {response.text}",
                permanent=True,
            )
        return str(response.json()["message_id"])
