"""The 'no framework' baseline: what Python does with confluent-kafka alone.

consume a batch → decode each CommandEnvelope → the same decision as the customer
service → produce the event Envelope (trace header passed through) →
send_offsets_to_transaction → commit_transaction. Entity states live in a dict,
changed only once their transaction committed (copy on write), so an aborted
batch can be processed again. With ``--store`` the loop also keeps them where a
service must, in an SQLite file (WAL, one upsert per changed entity and
transaction, after the commit), which is the work the issue measures ("store
updated"). Client settings are the ones the Troupe runtime uses
(troupe/bus/clients.py), so the two differ only in the loop.

Run by the benchmark: ``python -m bench.runtime.plain --bootstrap ... --input ... [--store FILE]``.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from . import work
from .child import arguments, emit, listen_for_stop

MAX_BATCH = 5_000
IDLE_WAIT = 0.1


def loop_consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 500,
            "queued.min.messages": 20_000,
            "partition.assignment.strategy": "cooperative-sticky",
        }
    )


def loop_producer(bootstrap: str, transactional_id: str) -> Producer:
    """A transactional producer with the runtime's settings, its transactions initialized."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": transactional_id,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "compression.type": "lz4",
            "transaction.timeout.ms": 10_000,
            "retry.backoff.ms": 5,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 500_000,
        }
    )
    producer.init_transactions(30)
    return producer


def poll(consumer: Consumer) -> list[Any]:
    # What is already fetched; if nothing, wait for the first record only.
    batch: list[Any] = consumer.consume(MAX_BATCH, 0)
    if not batch:
        batch = consumer.consume(1, IDLE_WAIT)
        if batch:
            batch += consumer.consume(MAX_BATCH - 1, 0)
    return batch


class SqliteStates:
    """The latest state of each entity in an SQLite file, written after each commit."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS states (entity_id TEXT PRIMARY KEY, version INTEGER, state BLOB) WITHOUT ROWID"
        )

    def write(self, changed: dict[str, tuple[int, bytes]]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT INTO states VALUES (?, ?, ?) ON CONFLICT (entity_id) DO UPDATE"
            " SET version = excluded.version, state = excluded.state",
            [(entity_id, version, state) for entity_id, (version, state) in changed.items()],
        )
        self.db.execute("COMMIT")


def run(
    bootstrap: str,
    input_topic: str,
    output_topic: str,
    group: str,
    stop: threading.Event,
    store: SqliteStates | None = None,
) -> None:
    consumer, producer = loop_consumer(bootstrap, group), loop_producer(bootstrap, f"{group}-0")
    consumer.subscribe([input_topic])
    states: dict[str, tuple[int, bytes]] = {}
    try:
        while not stop.is_set():
            batch = [m for m in poll(consumer) if m.error() is None]
            if not batch:
                continue
            pending: dict[str, tuple[int, bytes]] = {}
            last: dict[tuple[str, int], int] = {}
            producer.begin_transaction()
            try:
                for message in batch:
                    command = work.decode(message.value())
                    entity_id = command.entity_id
                    version, state = pending.get(entity_id) or states.get(entity_id) or (0, b"")
                    event, new_state = work.decide(command, version, state)
                    headers = [(k, v) for k, v in message.headers() or () if k == work.TRACEPARENT]
                    producer.produce(output_topic, event, message.key(), headers=headers)
                    pending[entity_id] = (version + 1, new_state)
                    last[(message.topic(), message.partition())] = message.offset()
                offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
                producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
                producer.commit_transaction(30)
            except KafkaException:
                # Nothing of the batch happened: process it again from its first records.
                producer.abort_transaction(30)
                firsts: dict[tuple[str, int], int] = {}
                for message in batch:
                    firsts.setdefault((message.topic(), message.partition()), message.offset())
                for (topic, partition), offset in firsts.items():
                    consumer.seek(TopicPartition(topic, partition, offset))
                continue
            states.update(pending)
            if store is not None:
                store.write(pending)
    finally:
        consumer.close()
        producer.flush(5)


def main() -> None:
    args = arguments(("--store", {"default": None, "help": "SQLite file to keep the states in"})).parse_args()
    stop = threading.Event()
    listen_for_stop(stop.set)
    store = SqliteStates(args.store) if args.store else None
    emit(event="started", threads={threading.get_native_id(): "loop"})
    run(args.bootstrap, args.input, args.output, args.group, stop, store)
    emit(event="stopped")


if __name__ == "__main__":
    main()
