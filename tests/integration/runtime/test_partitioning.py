"""The runtime's own computation of a key's partition agrees with where the
producers really put it, so an instance knows which entities it owns."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from troupe.bus import clients
from troupe.bus.partitioning import partition_for
from troupe.bus.topics import ensure_topics
from troupe.settings import KafkaSettings

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("partitions", [3, 6, 7])
def test_partition_for_matches_the_producers_partitioner(
    kafka: KafkaSettings, unique_name: Callable[[str], str], partitions: int
) -> None:
    # given a topic and a producer configured as the runtime configures them
    topic = unique_name("partitioning")
    ensure_topics(kafka.model_copy(update={"partitions": partitions}), [topic])
    producer = clients.producer(kafka)
    delivered: dict[str, int] = {}
    keys = [f"entity-{n}" for n in range(200)] + ["+79161234567", "msk-op01", "ключ"]

    def on_delivery(error: object, message: object) -> None:
        assert error is None, error
        delivered[message.key().decode()] = message.partition()  # type: ignore[attr-defined]

    # when every key is produced
    for key in keys:
        producer.produce(topic, b"x", key, on_delivery=on_delivery)
    assert producer.flush(30) == 0

    # then each landed where partition_for says, and the keys spread over every partition
    assert {key: partition_for(key, partitions) for key in keys} == delivered
    assert set(delivered.values()) == set(range(partitions))


def test_an_empty_key_has_no_fixed_partition() -> None:
    with pytest.raises(ValueError, match="empty key"):
        partition_for("", 6)
