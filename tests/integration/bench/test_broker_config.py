"""The cascade benchmark changes a broker setting between spans, on the real broker."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, ResourceType  # type: ignore[attr-defined]

from bench.cascade import broker_config
from troupe.settings import KafkaSettings

# A setting Kafka changes while running and that no test depends on.
SETTING = "log.cleaner.backoff.ms"


def current(kafka: KafkaSettings) -> tuple[str, int]:
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    resource = ConfigResource(ResourceType.BROKER, "0")
    entry = admin.describe_configs([resource])[resource].result(30)[SETTING]
    return entry.value, entry.source


def test_a_setting_is_in_force_when_apply_returns_and_goes_back_to_the_brokers_own(kafka: KafkaSettings) -> None:
    # given the broker's own value
    own, _ = current(kafka)
    try:
        # when the benchmark sets another value
        broker_config.apply(kafka.bootstrap_servers, {SETTING: "12345"})
        # then the broker reports it at once
        assert current(kafka) == ("12345", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    finally:
        # when it gives the setting back
        broker_config.apply(kafka.bootstrap_servers, {SETTING: None})
    # then the broker's own value is in force again
    value, source = current(kafka)
    assert value == own
    assert source != ConfigSource.DYNAMIC_BROKER_CONFIG.value


def test_a_setting_kafka_cannot_change_while_running_is_refused(kafka: KafkaSettings) -> None:
    # when the benchmark asks for a setting that needs a restart, then Kafka's refusal reaches it
    with pytest.raises(KafkaException, match=r"log\.dirs"):
        broker_config.apply(kafka.bootstrap_servers, {"log.dirs": "/elsewhere"}, timeout=10)
