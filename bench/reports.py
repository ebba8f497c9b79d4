"""Where the benchmarks keep a run's figures: ``bench/results/<kind>-<time>.json``
(not committed; docs/benchmarks.md quotes them)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    return (
        f"{platform.node()}: {os.cpu_count()} cores, {platform.processor() or 'x86_64'}, "
        f"Python {platform.python_version()}"
    )


def save(kind: str, report: dict[str, Any]) -> Path:
    """Writes ``report`` as JSON and returns where."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    return path
