"""The replica: keeps the local store equal to the service's own topic (and the
projections of other topics), on every instance, for reads.

It reads every partition (no consumer group), read_committed, from the offsets
the store last applied, and applies each batch in one SQLite transaction. It also
tells waiting callers what became of their commands (the event that a command
caused, or its DLQ record) and wakes reads that wait for a version.

The processor of this instance hands over what it commits on the partitions it
owns (``written``), and a writer thread puts it into the store while the
processor goes on; the replica stops reading those partitions (reading its own
writes back cost as much as making them) and reads them again from where it
stopped when they are taken back. Both writers only ever move the store forward,
so a record applied twice changes nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, NamedTuple

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, TopicPartition
from google.protobuf.message import DecodeError

from contracts.events.v1 import envelope_pb2
from troupe.bus import clients
from troupe.observability import logs
from troupe.service import records
from troupe.service.declaration import LookupKeys
from troupe.service.records import Outcome
from troupe.settings import KafkaSettings
from troupe.state.store import AppliedCommand, EntityChange, Store, StoredEntity

log = logging.getLogger(__name__)


class AppliedEvent(NamedTuple):
    """What the store needs of one event (read from a topic or just committed);
    built for every event, so a named tuple (cheaper to build than a dataclass)."""

    topic: str
    partition: int
    entity_id: str
    version: int
    event_type: str
    state: bytes
    causation_id: str
    event_id: str
    occurred_at_ms: int


@dataclass(frozen=True, slots=True)
class Written:
    """A committed transaction's events and, per partition, the offset after its last."""

    events: list[AppliedEvent]
    offsets: dict[tuple[str, int], int]


class Replica:
    def __init__(
        self,
        kafka: KafkaSettings,
        store: Store,
        topics: list[str],
        outcomes_topic: str | None = None,
        name: str = "replica",
        lookup_keys: dict[str, LookupKeys] | None = None,
        command_id_retention: float | None = None,
    ) -> None:
        self.lookup_keys = lookup_keys or {}
        # Seconds an applied command's id is kept (a duplicate sent within it has
        # no second effect); None keeps them all.
        self.command_id_retention = command_id_retention
        self._next_forget = 0.0
        # Commands are only applied to the service's own topic (the first one).
        self.own_topic = topics[0]
        self.kafka = kafka
        self.store = store
        self.topics = topics
        self.outcomes_topic = outcomes_topic
        self.name = name
        self._positions: dict[tuple[str, int], int] = {}
        # Own-topic partitions the processor writes into the store itself.
        self._handed_over: set[int] = set()
        self._paused: set[int] = set()
        self._hand_over_lock = threading.Lock()
        self._expected: dict[str, Future[Outcome]] = {}
        self._expected_lock = threading.Lock()
        self._applied = threading.Condition()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._writes: queue.SimpleQueue[Written | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, name=f"{name}-writer", daemon=True)
        self.error: BaseException | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        self._writer.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"{self.name} did not start: {self.error}")
        if self.error:
            raise RuntimeError(f"{self.name} failed to start") from self.error

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._writes.put(None)
        self._writer.join(10)

    def _run(self) -> None:
        consumer = clients.consumer(self.kafka, group_id=None, **{"client.id": self.name})
        try:
            consumer.assign(self._assignment(consumer))
            self._ready.set()
            while not self._stop.is_set():
                self._follow_hand_overs(consumer)
                batch = clients.poll_batch(consumer, 10_000, 0.05)
                if batch:
                    self._apply(batch)
                self._record_positions(consumer)
                self._forget_old_command_ids()
        except BaseException as error:  # the owner sees it through .error and health
            self.error = error
            log.exception("replica stopped")
            self._ready.set()
        finally:
            consumer.close()

    def _assignment(self, consumer: Any) -> list[TopicPartition]:
        for topic, keys in self.lookup_keys.items():
            if self.store.index_lookups(topic, keys.names, keys):
                log.info("look-ups indexed", extra=logs.fields(topic=topic, names=keys.names))
        stored = self.store.offsets()
        metadata = consumer.list_topics(timeout=10).topics
        assignment = []
        for topic in self.topics:
            for partition in metadata[topic].partitions:
                offset = stored.get((topic, partition), OFFSET_BEGINNING)
                assignment.append(TopicPartition(topic, partition, offset))
        if self.outcomes_topic:
            # Only outcomes of commands sent from now on matter.
            for partition in metadata[self.outcomes_topic].partitions:
                assignment.append(TopicPartition(self.outcomes_topic, partition, OFFSET_END))
        return assignment

    # -- applying ----------------------------------------------------------

    def _apply(self, batch: list[Any]) -> None:
        events: list[AppliedEvent] = []
        offsets: dict[tuple[str, int], int] = {}
        outcomes: list[Outcome] = []
        for message in batch:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("replica consumer error", extra=logs.fields(error=str(error)))
                continue
            topic = message.topic()
            if topic == self.outcomes_topic:
                outcomes.extend(self._dead_letter_outcome(message))
                continue
            offsets[(topic, message.partition())] = message.offset() + 1
            try:
                event = envelope_pb2.Envelope.FromString(message.value() or b"")
            except DecodeError:
                # Only the runtime writes these topics; keep going, but say so loudly.
                log.error(
                    "undecodable record in an events topic",
                    extra=logs.fields(topic=topic, partition=message.partition(), offset=message.offset()),
                )
                continue
            events.append(
                AppliedEvent(
                    topic,
                    message.partition(),
                    event.entity_id,
                    event.entity_version,
                    event.type,
                    event.state.value,
                    event.causation_id,
                    event.event_id,
                    records.unix_ms(event.occurred_at),
                )
            )
        self._store(events, offsets, outcomes)

    def written(self, events: list[AppliedEvent], offsets: dict[tuple[str, int], int]) -> None:
        """The processor's committed events, each partition's up to the given offset:
        into the store as if they had been read, by the writer thread."""
        if self.error is not None:
            raise RuntimeError(f"{self.name} stopped; the store is behind its topics") from self.error
        self._writes.put(Written(events, offsets))

    def _write(self) -> None:
        while (written := self._writes.get()) is not None:
            try:
                # A committed transaction ends with its commit marker right after its
                # last record in each partition (nobody else writes a partition this
                # instance owns): reading would stand past the marker.
                positions = {key: offset + 1 for key, offset in written.offsets.items()}
                self._store(written.events, written.offsets, [], positions)
            except BaseException as error:  # the owner sees it through .error and health
                self.error = error
                log.exception("store writer stopped")
                return

    def _store(
        self,
        events: list[AppliedEvent],
        offsets: dict[tuple[str, int], int],
        outcomes: list[Outcome],
        positions: dict[tuple[str, int], int] | None = None,
    ) -> None:
        # Only the latest version of each entity is written (and has its look-ups
        # computed); every event still records the command it applied.
        latest: dict[tuple[str, str], AppliedEvent] = {}
        applied: list[AppliedCommand] = []
        for event in events:
            key = (event.topic, event.entity_id)
            known = latest.get(key)
            if known is None or event.version > known.version:
                latest[key] = event
            if event.causation_id:
                if event.topic == self.own_topic:
                    applied.append(
                        (event.topic, event.causation_id, event.entity_id, event.version, event.occurred_at_ms)
                    )
                if self._expected:
                    outcomes.append(Outcome(event.causation_id, event.entity_id, event.version, event.event_id))
        changes = [self._change(event) for event in latest.values()]
        if changes or offsets:
            self.store.apply(changes, offsets, applied)
        with self._applied:
            for partition, offset in (positions or offsets).items():
                if offset > self._positions.get(partition, -1):
                    self._positions[partition] = offset
            self._applied.notify_all()
        self._resolve(outcomes)

    def _change(self, event: AppliedEvent) -> EntityChange:
        keys = self.lookup_keys.get(event.topic)
        return EntityChange(
            event.topic,
            event.entity_id,
            event.version,
            event.event_type,
            event.state,
            event.partition,
            lookups=keys(event.state) if keys is not None else None,
        )

    # -- partitions the processor writes itself -----------------------------

    def hand_over(self, partitions: set[int]) -> None:
        """The processor owns these own-topic partitions now and writes their events."""
        with self._hand_over_lock:
            self._handed_over |= partitions

    def take_back(self, partitions: set[int]) -> None:
        """The processor no longer owns these: read them again from where reading stopped."""
        with self._hand_over_lock:
            self._handed_over -= partitions

    def _follow_hand_overs(self, consumer: Any) -> None:
        with self._hand_over_lock:
            handed_over = set(self._handed_over)
        if handed_over == self._paused:
            return
        if pause := handed_over - self._paused:
            consumer.pause([TopicPartition(self.own_topic, p) for p in pause])
        if resume := self._paused - handed_over:
            consumer.resume([TopicPartition(self.own_topic, p) for p in resume])
        self._paused = handed_over

    def _forget_old_command_ids(self, every: float = 60.0) -> None:
        if self.command_id_retention is None or time.monotonic() < self._next_forget:
            return
        self._next_forget = time.monotonic() + every
        before = int((time.time() - self.command_id_retention) * 1000)
        forgotten = self.store.forget_commands_applied_before(before)
        if forgotten:
            log.info("old command ids forgotten", extra=logs.fields(count=forgotten))

    def _dead_letter_outcome(self, message: Any) -> list[Outcome]:
        try:
            letter = envelope_pb2.DeadLetter.FromString(message.value() or b"")
        except DecodeError:
            return []
        if not letter.record_id:
            return []
        reason = envelope_pb2.DeadLetterReason.Name(letter.reason)
        return [
            Outcome(
                letter.record_id,
                letter.entity_id,
                error=f"{reason}: {letter.error}",
                reason=letter.reason,
            )
        ]

    def _record_positions(self, consumer: Any) -> None:
        # The position moves past transaction markers too, which the last applied
        # record's offset does not show; readers compare it with end offsets. A
        # partition with nothing to read has no position yet: it is at its end.
        positions = {}
        for tp in consumer.position(consumer.assignment()):
            if tp.topic == self.outcomes_topic:
                continue
            offset = tp.offset
            if offset < 0:
                low, high = consumer.get_watermark_offsets(tp, cached=True)
                offset = high if 0 <= low == high else -1
            positions[(tp.topic, tp.partition)] = offset
        with self._applied:
            for key, offset in positions.items():
                if offset > self._positions.get(key, -1):
                    self._positions[key] = offset
            self._applied.notify_all()

    def resolve(self, outcomes: list[Outcome]) -> None:
        """Tells callers waiting on this instance what became of commands that
        produced no record to read (a command that changed nothing)."""
        self._resolve(outcomes)

    def _resolve(self, outcomes: list[Outcome]) -> None:
        if not outcomes or not self._expected:
            return
        with self._expected_lock:
            for outcome in outcomes:
                future = self._expected.pop(outcome.command_id, None)
                if future is not None:
                    future.set_result(outcome)

    # -- what callers use ---------------------------------------------------

    def expect(self, command_id: str) -> Future[Outcome]:
        """A future resolved when the command's event or DLQ record is read."""
        future: Future[Outcome] = Future()
        with self._expected_lock:
            self._expected[command_id] = future
        return future

    def forget(self, command_id: str) -> None:
        with self._expected_lock:
            self._expected.pop(command_id, None)

    def position(self, topic: str, partition: int) -> int:
        with self._applied:
            return self._positions.get((topic, partition), -1)

    def wait_for_version(self, topic: str, entity_id: str, min_version: int, timeout: float) -> StoredEntity | None:
        """The entity at ``min_version`` or later, waiting at most ``timeout`` for it."""
        deadline = time.monotonic() + timeout
        with self._applied:
            while True:
                entity = self.store.get(topic, entity_id)
                if min_version <= 0 or (entity and entity.version >= min_version):
                    return entity
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return entity
                self._applied.wait(remaining)

    def end_offsets(self) -> dict[tuple[str, int], int]:
        """The current end (last stable offset) of every materialized partition."""
        consumer = clients.consumer(self.kafka, group_id=None)
        try:
            metadata = consumer.list_topics(timeout=10).topics
            ends = {}
            for topic in self.topics:
                for partition in metadata[topic].partitions:
                    tp = TopicPartition(topic, partition)
                    ends[(topic, partition)] = consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1]
            return ends
        finally:
            consumer.close()

    def caught_up(self, ends: dict[tuple[str, int], int], timeout: float) -> bool:
        """Waits until the store has read every partition up to the given end offsets."""
        with self._applied:
            return self._applied.wait_for(
                lambda: all(self._positions.get(k, -1) >= end for k, end in ends.items()), timeout
            )
