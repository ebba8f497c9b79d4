"""The loops the benchmark compares, and running one as a child process."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .environment import ROOT


@dataclass(frozen=True)
class Contestant:
    name: str
    label: str
    guarantee: str
    input: str
    output: str


TROUPE = Contestant(
    "troupe",
    "Troupe runtime (customer service)",
    "exactly-once (Kafka transactions)",
    "customer.commands",
    "customer.events",
)
PLAIN = Contestant(
    "plain",
    "plain confluent-kafka loop",
    "exactly-once (Kafka transactions)",
    "bench.plain.commands",
    "bench.plain.events",
)
PLAIN_STORE = Contestant(
    "plain-store",
    "plain confluent-kafka loop + SQLite store",
    "exactly-once (Kafka transactions)",
    "bench.plain-store.commands",
    "bench.plain-store.events",
)
QUIX = Contestant(
    "quix",
    "Quix Streams",
    "exactly-once (processing_guarantee='exactly-once')",
    "bench.quix.commands",
    "bench.quix.events",
)
FASTSTREAM = Contestant(
    "faststream",
    "FastStream (aiokafka)",
    "at-least-once (no Kafka transactions)",
    "bench.faststream.commands",
    "bench.faststream.events",
)
ALL = (TROUPE, PLAIN_STORE, PLAIN, QUIX, FASTSTREAM)
# Not measured: the plain loop on topics of its own, run first so that every
# contestant meets a broker whose JIT has compiled the transactional paths.
BROKER_WARM_UP = Contestant(
    "broker-warm-up",
    "broker warm-up (plain loop, not measured)",
    "exactly-once (Kafka transactions)",
    "bench.warm-up.commands",
    "bench.warm-up.events",
)


class Child:
    """A contestant process: JSON lines from its stdout, stderr to a log file."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self._log_file = log.open("ab")
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
        )
        self.started = time.monotonic()
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        # Native thread id → name, of the threads the contestant names when it starts.
        self.threads: dict[int, str] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                self._log_file.write(b"[stdout] " + line.encode())
                continue
            if event.get("event") == "started":
                self.threads = {int(tid): name for tid, name in event.get("threads", {}).items()}
            self._events.put(event)

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {event!r} from {self.process.args!r} (see {self.log})")
            try:
                got = self._events.get(timeout=min(left, 0.5))
            except queue.Empty:
                if not self.alive():
                    raise RuntimeError(
                        f"{self.process.args!r} exited with {self.process.returncode} (see {self.log})"
                    ) from None
                continue
            if got.get("event") == "failed":
                raise RuntimeError(f"contestant failed: {got} (see {self.log})")
            if got.get("event") == event:
                return got

    def ask(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def stop(self, timeout: float = 60) -> None:
        if self.alive():
            try:
                self.ask("stop")
                self.process.wait(timeout)
            except (OSError, subprocess.TimeoutExpired):
                self.process.terminate()
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        self._log_file.close()


def python() -> str:
    return sys.executable
