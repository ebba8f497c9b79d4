"""Topic names of the layer, and creating them."""

from __future__ import annotations

import time

from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from troupe.settings import KafkaSettings

# Header of every event record: the event's type, as in its envelope. Lets a
# consumer pass over the types it does not handle without decoding them.
EVENT_TYPE_HEADER = "event-type"


def events_topic(service: str) -> str:
    return f"{service}.events"


def commands_topic(service: str) -> str:
    return f"{service}.commands"


def dlq_topic(service: str) -> str:
    return f"{service}.dlq"


AUDIT_TOPIC = "audit.events"


def ensure_topics(kafka: KafkaSettings, names: list[str], timeout: float = 30.0) -> None:
    """Creates the topics that do not exist yet (all with the same partition count,
    so that a service's commands and events topics are co-partitioned)."""
    admin = AdminClient(kafka.client_config())
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = list(dict.fromkeys(names))
    missing = [name for name in wanted if name not in existing]
    new_topics = [NewTopic(name, kafka.partitions, kafka.replication_factor) for name in missing]
    futures = admin.create_topics(new_topics, operation_timeout=timeout) if missing else {}
    for name, future in futures.items():
        try:
            future.result(timeout)
        except Exception as error:
            # Another instance may have created it in between; that is fine.
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise RuntimeError(f"cannot create topic {name}: {error}") from error
    # Creation is acknowledged before the metadata shows the topic with leaders.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=timeout).topics
        if all(
            name in topics and topics[name].partitions and all(p.leader >= 0 for p in topics[name].partitions.values())
            for name in wanted
        ):
            return
        time.sleep(0.1)
    raise RuntimeError(f"topics {wanted} have no leaders after {timeout}s")
