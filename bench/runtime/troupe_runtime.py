"""One process of the Troupe runtime running the customer service, as
``python -m services.customer`` runs it (store, replica, exactly-once processor,
gRPC server, JSON logs at INFO), driven by the benchmark.

Questions on stdin: ``store`` (wait until the store has read the events topic to
its end, then report what it holds) and ``stop``. With ``--profile FILE`` the
processor thread runs under pyinstrument and the session is saved to FILE.
"""

from __future__ import annotations

import argparse
import importlib
import queue
import threading
import time
from pathlib import Path
from typing import Any

from contracts.customer.v1 import customer_pb2 as pb
from troupe.observability import logs
from troupe.service.runtime import Runtime, RuntimeOptions
from troupe.settings import KafkaSettings

from .child import emit, listen


def profiled(run: Any, target: Path, interval: float) -> Any:
    """``run`` under pyinstrument, on the thread that calls it (the processor's)."""
    pyinstrument = importlib.import_module("pyinstrument")

    def wrapper() -> None:
        profiler = pyinstrument.Profiler(interval=interval)
        profiler.start()
        try:
            run()
        finally:
            profiler.stop()
            profiler.last_session.save(str(target))

    return wrapper


def store_report(runtime: Runtime[Any], timeout: float) -> dict[str, object]:
    started = time.monotonic()
    caught_up = runtime.replica.caught_up(runtime.replica.end_offsets(), timeout)
    waited = time.monotonic() - started
    entities = versions = points = 0
    for entity in runtime.scan():
        entities += 1
        versions += entity.version
        points += entity.state.loyalty_points
    return {
        "event": "store",
        "caught_up": caught_up,
        "waited_s": round(waited, 3),
        "entities": entities,
        "versions": versions,
        "points": points,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--profile-interval", type=float, default=0.001)
    args = parser.parse_args()

    logs.configure("INFO")
    # Imported here so that the service registers after logging is configured.
    from services.customer.app import customer

    assert customer.entity is pb.Customer
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap, partitions=args.partitions)
    runtime = Runtime(customer, kafka, RuntimeOptions(state_dir=args.state_dir))
    if args.profile:
        processor = runtime.processor
        setattr(  # noqa: B010  (wraps the bound method for this instance only)
            processor, "run", profiled(processor.run, args.profile, args.profile_interval)
        )
    questions: queue.Queue[str] = queue.Queue()

    def on_line(line: str) -> bool:
        questions.put(line)
        return line != "stop"

    runtime.start()
    emit(event="started", threads={t.native_id: t.name for t in threading.enumerate()})
    listen(on_line)
    while True:
        try:
            question = questions.get(timeout=0.5)
        except queue.Empty:
            if runtime.failed is not None:
                emit(event="failed", error=repr(runtime.failed))
                break
            continue
        if question == "store":
            emit(**store_report(runtime, 120))
        elif question == "stop":
            break
    stopper = threading.Thread(target=runtime.stop)
    stopper.start()
    stopper.join(90)
    emit(event="stopped", failed=repr(runtime.failed) if runtime.failed else None)


if __name__ == "__main__":
    main()
