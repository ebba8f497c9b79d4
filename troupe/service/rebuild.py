"""Rebuilding a store: drop it and replay the topics it materializes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from troupe.bus.topics import dlq_topic
from troupe.service.declaration import Service
from troupe.service.replica import Replica
from troupe.settings import KafkaSettings
from troupe.state.store import Store


def rebuild(service: Service[Any], kafka: KafkaSettings, path: Path, timeout: float = 600.0) -> int:
    """Replays the service's own topic (and projections) into a new store at
    ``path``, up to the end offsets at the start; returns the entity count.
    The service instance using that store must be stopped."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = Store(path)
    topics = [service.events_topic, *service.projections]
    replica = Replica(
        kafka,
        store,
        topics,
        outcomes_topic=dlq_topic(service.name),
        name=f"{service.name}-rebuild",
        lookup_keys=service.lookup_keys_by_topic(),
    )
    replica.start()
    try:
        if not replica.caught_up(replica.end_offsets(), timeout):
            raise RuntimeError(f"replay of {topics} did not finish in {timeout}s")
    finally:
        replica.stop()
    count = sum(1 for _ in store.scan(service.events_topic))
    store.close()
    return count
