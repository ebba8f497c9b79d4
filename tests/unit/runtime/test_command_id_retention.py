"""The replica forgets applied command ids older than the retention, and no others."""

from __future__ import annotations

import time
from pathlib import Path

from troupe.service.replica import Replica
from troupe.settings import KafkaSettings
from troupe.state.store import EntityChange, Store

TOPIC = "customer.events"


def store_with_commands_applied(path: Path, seconds_ago: dict[str, float]) -> Store:
    store = Store(path)
    now_ms = time.time() * 1000
    store.apply(
        [
            EntityChange(TOPIC, entity_id, 1, "T", b"", 0, f"cmd-{entity_id}", applied_at=int(now_ms - age * 1000))
            for entity_id, age in seconds_ago.items()
        ],
        {},
    )
    return store


def test_ids_older_than_the_retention_are_forgotten(tmp_path: Path) -> None:
    # given one command applied 2 hours ago and one a minute ago, kept for an hour
    store = store_with_commands_applied(tmp_path / "s.sqlite", {"old": 7200, "new": 60})
    replica = Replica(KafkaSettings(), store, [TOPIC], command_id_retention=3600)
    # when the replica's periodic clean-up runs
    replica._forget_old_command_ids()
    # then only the recent id is remembered
    assert store.applied(TOPIC, "cmd-old") is None
    assert store.applied(TOPIC, "cmd-new") == 1


def test_without_a_retention_every_id_is_kept(tmp_path: Path) -> None:
    store = store_with_commands_applied(tmp_path / "s.sqlite", {"old": 10 * 365 * 86400})
    Replica(KafkaSettings(), store, [TOPIC], command_id_retention=None)._forget_old_command_ids()
    assert store.applied(TOPIC, "cmd-old") == 1
