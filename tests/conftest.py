"""Fixtures shared by the whole suite.

Integration tests run against one real Apache Kafka broker that the suite
starts itself (KRaft, jars from Maven Central, cached in .cache/). If the broker
cannot start, those tests fail; they never skip.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from troupe.kafka.local import LocalCluster
from troupe.settings import KafkaSettings

ROOT = Path(__file__).resolve().parent.parent
# Below the ephemeral port range, so no outgoing connection can hold it.
SUITE_BROKER_PORT = int(os.environ.get("TROUPE_TEST_BROKER_PORT", "21092"))


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(
        data_dir=tmp_path_factory.mktemp("kafka"),
        brokers=1,
        base_port=SUITE_BROKER_PORT,
        cache_dir=ROOT / ".cache",
    )
    cluster.start(timeout=120)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def kafka(kafka_cluster: LocalCluster) -> KafkaSettings:
    """Settings pointing at the suite's broker (small partition counts keep tests quick)."""
    return KafkaSettings(bootstrap_servers=kafka_cluster.bootstrap_servers, partitions=3)


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Names of services and topics that no other test uses."""

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def chromium() -> Iterator[Browser]:
    """Debian's chromium, headless, for the web pages (bin/setup installs it). One per
    test: Playwright's synchronous API runs an event loop in this thread while it is
    open, and asyncio.run() in later tests would refuse to start beside it."""
    executable = shutil.which("chromium")
    assert executable, "chromium is missing: bin/setup installs it (apt-get install chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()
