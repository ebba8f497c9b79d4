"""gRPC channels that balance over every instance of a service.

Round-robin over all resolved addresses (not one sticky HTTP/2 connection), and
servers close connections after a maximum age, so new instances get traffic.
"""

from __future__ import annotations

import json

import grpc

_SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)


def channel(addresses: str | list[str]) -> grpc.Channel:
    """A channel to ``host:port`` addresses (a list, or comma-separated), or any
    gRPC target such as ``dns:///customer:50051``."""
    if isinstance(addresses, str):
        addresses = [a.strip() for a in addresses.split(",") if a.strip()]
    target = addresses[0] if len(addresses) == 1 and "://" in addresses[0] else "ipv4:" + ",".join(addresses)
    return grpc.insecure_channel(
        target,
        options=[("grpc.service_config", _SERVICE_CONFIG), ("grpc.enable_retries", 1)],
    )
