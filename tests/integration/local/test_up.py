"""``troupe up`` as a user runs it: a broker of its own, every service and
adapter as a process, the demo traffic, and live cascades in its output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
# Below the ephemeral range and away from the suite's broker (and from 19092, the
# default of a `troupe up` a developer may have running): components use +1000..+1200.
UP_PORT = int(os.environ.get("TROUPE_TEST_UP_PORT", "26092"))
EVENT_LINE = re.compile(r"^  (?P<cascade>\S{8}) \S+ (?P<source>\S+)\s+(?P<type>\S+)\s")


def troupe(state_dir: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TROUPE_STATE_DIR": str(state_dir),
        "TROUPE_CACHE_DIR": str(ROOT / ".cache"),
        "TROUPE_DEMO_CALLS_PER_SECOND": "3",
    }
    return subprocess.run(
        [sys.executable, "-m", "troupe.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_troupe_up_runs_everything_and_shows_calls_cascading_to_operators(tmp_path: Path) -> None:
    try:
        result = troupe(tmp_path, "up", "--seconds", "45", "--port", str(UP_PORT), timeout=170)
    finally:
        troupe(tmp_path, "kafka", "down", timeout=60)
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted((tmp_path / "logs").glob("*.log")))
    explain = f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-2000:]}\n{logs}"
    # Every component ran to the end (none exited early).
    assert result.returncode == 0, explain
    for name in ("customer", "operator", "interaction", "routing", "telephony_webhook", "telephony_ami", "demo",
                 "idp", "audit-view", "audit-sidecar"):
        assert re.search(rf"^  \w+\s+{name}\s", result.stdout, re.MULTILINE), f"{name} not started\n{explain}"
    # The tail shows cascades: one call's events grouped under its correlation id,
    # from the platform's report to the operator who got it.
    cascades: dict[str, set[str]] = defaultdict(set)
    for line in result.stdout.splitlines():
        if match := EVENT_LINE.match(line):
            cascades[match["cascade"]].add(match["type"])
    calls = [types for types in cascades.values() if "InteractionReceived" in types]
    assert calls, explain
    assigned = [
        types
        for types in calls
        if {"OperatorOffered", "OperatorReserved", "InteractionAssigned"} <= types
        and types & {"CallerIdentified", "CallerRegistered"}
    ]
    assert assigned, explain
    assert "OperatorRegistered" in result.stdout, explain
