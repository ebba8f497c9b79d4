"""Broker settings changed while the layer runs, so that one run can compare them span by span.

The host's speed moves from hour to hour (docs/benchmarks.md), so a setting is best
judged against the broker's own in spans that take turns on one warmed-up layer.
Only settings Kafka can change without a restart (dynamic, per broker) qualify.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

# Documented under confluent_kafka.admin but missing from its typed exports.
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    ResourceType,
)


def parse(items: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` items as a mapping; a clear error for anything else."""
    settings: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"a broker setting is KEY=VALUE, not {item!r}")
        settings[key.strip()] = value.strip()
    return settings


def in_span(number: int) -> bool:
    """Whether span ``number`` (0, 1, ...) runs with the settings: the broker's own, then
    the settings twice, then the broker's own twice, and so on (A B B A A B B A...). A
    drift over the run (the layer still settling, the host speeding up) then favours
    neither side, as it would favour the later of each pair in A B A B."""
    return number % 4 in (1, 2)


def describe(settings: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in settings.items())


def apply(bootstrap_servers: str, settings: Mapping[str, str | None], timeout: float = 30) -> None:
    """Sets each setting (a value) or gives it back to the broker's own (``None``) on
    every broker, and returns once every broker reports it."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    brokers = [str(node.id) for node in admin.describe_cluster().result(timeout).nodes]
    entries = [
        ConfigEntry(
            key, value or "", incremental_operation=AlterConfigOpType.DELETE if value is None else AlterConfigOpType.SET
        )
        for key, value in settings.items()
    ]
    resources = [ConfigResource(ResourceType.BROKER, broker, incremental_configs=entries) for broker in brokers]
    for future in admin.incremental_alter_configs(resources).values():
        future.result(timeout)
    # Each broker takes the change from the cluster's metadata a moment later.
    deadline = time.monotonic() + timeout
    while not all(_holds(admin, broker, settings, timeout) for broker in brokers):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the brokers did not take {dict(settings)} within {timeout} s")
        time.sleep(0.1)


def _holds(admin: AdminClient, broker: str, settings: Mapping[str, str | None], timeout: float) -> bool:
    resource = ConfigResource(ResourceType.BROKER, broker)
    current = admin.describe_configs([resource])[resource].result(timeout)
    for key, value in settings.items():
        entry = current[key]
        dynamic = entry.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
        if (value is None and dynamic) or (value is not None and (not dynamic or entry.value != value)):
            return False
    return True
