"""Which partition a key goes to, computed here as the producers compute it.

The runtime needs it to know whether this instance owns an entity's commands
partition without producing anything. It must agree with librdkafka's default
partitioner (``consistent_random``: CRC-32 of the key modulo the partition count,
for a non-empty key); ``tests/integration/runtime/test_partitioning.py`` checks
that against real deliveries."""

from __future__ import annotations

import zlib


def partition_for(key: str, partitions: int) -> int:
    if not key:
        raise ValueError("an empty key has no fixed partition")
    return zlib.crc32(key.encode()) % partitions
