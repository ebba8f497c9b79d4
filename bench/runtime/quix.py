"""The same work with Quix Streams in exactly-once mode.

Runs in its own virtualenv (see quix-requirements.txt: Quix pins confluent-kafka
and pydantic below the project's pins). The entity state is kept in Quix's state
store (RocksDB, backed by a changelog topic written in the same transaction); it
holds the entity version and state bytes as they are (identity dumps/loads).
Incoming headers, the trace context among them, go on to the output as Quix does
by default.

Run by the benchmark: ``<quix venv>/bin/python -m bench.runtime.quix ...``.
"""

from __future__ import annotations

import importlib
import struct
import threading
from pathlib import Path
from typing import Any

from . import work
from .child import arguments, emit, listen_for_stop

VERSION = struct.Struct(">Q")
STATE_KEY = "customer"


def dumps(value: Any) -> bytes:
    # State keys are str; the values are the bytes decide() stores, kept as they are.
    return value if isinstance(value, bytes) else str(value).encode()


def loads(value: bytes) -> bytes:
    return value


def decide(value: bytes, state: Any) -> bytes:
    command = work.decode(value)
    stored: bytes | None = state.get(STATE_KEY)
    version, current = (VERSION.unpack_from(stored)[0], stored[8:]) if stored else (0, b"")
    event, new_state = work.decide(command, version, current)
    state.set(STATE_KEY, VERSION.pack(version + 1) + new_state)
    return event


def main() -> None:
    args = arguments(
        ("--state-dir", {"type": Path, "required": True}),
        ("--commit-interval", {"type": float, "default": 5.0, "help": "Quix default: 5 s per transaction"}),
    ).parse_args()

    quixstreams = importlib.import_module("quixstreams")
    rocksdb = importlib.import_module("quixstreams.state.rocksdb")
    app = quixstreams.Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        commit_interval=args.commit_interval,
        state_dir=args.state_dir,
        rocksdb_options=rocksdb.RocksDBOptions(dumps=dumps, loads=loads),
        loglevel="WARNING",
    )
    source = app.topic(args.input, value_deserializer="bytes", key_deserializer="bytes")
    sink = app.topic(args.output, value_serializer="bytes", key_serializer="bytes")
    frame = app.dataframe(source)
    frame = frame.apply(decide, stateful=True)
    frame.to_topic(sink)

    listen_for_stop(app.stop)
    emit(
        event="started",
        quixstreams=quixstreams.__version__,
        threads={threading.get_native_id(): "loop"},
    )
    app.run()
    emit(event="stopped")


if __name__ == "__main__":
    main()
