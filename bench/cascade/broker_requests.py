"""The broker's requests per call, read from its request log (``LocalCluster(log_requests=True)``).

A call's cost on this machine is mostly the number of Kafka requests and wake-ups of
its exactly-once chain, not the work in any one of them (docs/benchmarks.md), so the
benchmark can count them: by kind (the request's API) and by client (the client id
each Kafka client of the layer gives, docs/architecture.md, "Observability").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

# "<epoch ms> Completed request:{...,"requestHeader":{...,"clientId":"c","requestApiKeyName":"FETCH"},...}"
_LINE = re.compile(rb'^(\d+) Completed request:.*?"clientId":"([^"]*)","requestApiKeyName":"(\w+)"')


class RequestLog:
    """Reads a node's request log from where the last reading stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def skip_to_end(self) -> None:
        self._offset = self.path.stat().st_size if self.path.exists() else 0

    def read(self, start_ms: int, end_ms: int) -> Counter[tuple[str, str]]:
        """Requests completed from ``start_ms`` to ``end_ms`` and logged since the last
        reading, by (client id, API)."""
        with self.path.open("rb") as log:
            log.seek(self._offset)
            counted = count(log, start_ms, end_ms)
            self._offset = log.tell()
        return counted


def count(lines: Iterable[bytes], start_ms: int, end_ms: int) -> Counter[tuple[str, str]]:
    """Requests among ``lines`` (bytes, one per request) completed in [start_ms, end_ms]."""
    counted: Counter[tuple[str, str]] = Counter()
    for line in lines:
        match = _LINE.match(line)
        if match and start_ms <= int(match[1]) <= end_ms:
            counted[match[2].decode(), match[3].decode()] += 1
    return counted


def per_call(counted: Counter[tuple[str, str]], calls: int) -> dict[str, dict[str, float]]:
    """Requests per call by API and by client, most first."""
    by_api: Counter[str] = Counter()
    by_client: Counter[str] = Counter()
    for (client, api), n in counted.items():
        by_api[api] += n
        by_client[client] += n
    return {
        "by_api": {api: round(n / calls, 2) for api, n in by_api.most_common()},
        "by_client": {client: round(n / calls, 2) for client, n in by_client.most_common()},
    }


def describe(figures: dict[str, dict[str, float]]) -> list[str]:
    total = sum(figures["by_api"].values())
    return [
        f"broker requests per call: {total:.1f}",
        "  by kind:   " + ", ".join(f"{api} {n:.2f}" for api, n in figures["by_api"].items()),
        "  by client: " + ", ".join(f"{client} {n:.2f}" for client, n in figures["by_client"].items()),
    ]
