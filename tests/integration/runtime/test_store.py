"""The local store: read-your-writes across instances, and rebuilding it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from contracts.customer.v1 import customer_pb2 as pb
from services.customer.app import customer
from troupe.service import records
from troupe.service.rebuild import rebuild
from troupe.service.runtime import Runtime, RuntimeOptions
from troupe.settings import KafkaSettings
from troupe.state.store import Store

from .helpers import ROOT, unique_ids

USER = records.user("u-1", "Operator One")


def test_a_change_is_readable_at_its_version_on_another_instance(kafka: KafkaSettings, tmp_path: Path) -> None:
    first = Runtime(customer, kafka, RuntimeOptions(state_dir=tmp_path, instance="a")).start()
    second = Runtime(customer, kafka, RuntimeOptions(state_dir=tmp_path, instance="b")).start()
    try:
        (customer_id,) = unique_ids("ryw", 1)
        first.submit(pb.RegisterCustomerRequest(customer_id=customer_id, name="Anna"), actor=USER)
        changed = first.submit(pb.AwardLoyaltyPointsRequest(customer_id=customer_id, points=5), actor=USER)

        seen = second.read(customer_id, min_version=changed.version, timeout=10)

        assert seen is not None
        assert seen.version == changed.version == 2
        assert seen.state.loyalty_points == 5
    finally:
        second.stop()
        first.stop()


def test_rebuild_gives_a_byte_identical_store(kafka: KafkaSettings, tmp_path: Path) -> None:
    runtime = Runtime(customer, kafka, RuntimeOptions(state_dir=tmp_path)).start()
    for customer_id in unique_ids("rebuild", 20):
        runtime.submit(
            pb.RegisterCustomerRequest(customer_id=customer_id, name="N", phone="+79160000000"),
            actor=USER,
        )
        runtime.submit(pb.AwardLoyaltyPointsRequest(customer_id=customer_id, points=3), actor=USER)
    runtime.stop()
    live = Store(Runtime.store_path("customer", runtime.options))
    live.snapshot(tmp_path / "live.snapshot")

    # troupe rebuild, as an operator runs it
    result = subprocess.run(
        [sys.executable, "-m", "troupe.cli", "rebuild", "customer"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "TROUPE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "TROUPE_STATE_DIR": str(tmp_path / "rebuilt"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "rebuilt customer store" in result.stdout
    rebuilt = Store(tmp_path / "rebuilt" / "stores" / "customer-0.sqlite")
    rebuilt.snapshot(tmp_path / "rebuilt.snapshot")

    assert list(rebuilt.dump()) == list(live.dump())
    assert (tmp_path / "rebuilt.snapshot").read_bytes() == (tmp_path / "live.snapshot").read_bytes()


def test_rebuild_function_matches_live_store(kafka: KafkaSettings, tmp_path: Path) -> None:
    runtime = Runtime(customer, kafka, RuntimeOptions(state_dir=tmp_path)).start()
    (customer_id,) = unique_ids("rebuild-fn", 1)
    runtime.submit(pb.RegisterCustomerRequest(customer_id=customer_id, name="N"), actor=USER)
    runtime.stop()
    count = rebuild(customer, kafka, tmp_path / "again.sqlite")
    assert count >= 1
    assert list(Store(tmp_path / "again.sqlite").dump()) == list(
        Store(Runtime.store_path("customer", runtime.options)).dump()
    )
