"""The exactly-once loop of a service: consume → decide → produce, one Kafka
transaction per batch (that produces anything) together with the consumed offsets.

Batches adapt to the load: when records are waiting the loop takes up to
``max_batch`` of them into one transaction; when idle it commits each arrival at
once, so latency stays low without giving up throughput.

Changes to one entity are serialized by partition ownership: commands are keyed
by entity id, only the group member owning a commands partition changes those
entities, and its transactions are fenced (KIP-447) if it loses the partition.

A command a handler sends to this service's own entities, on a partition this
instance owns, is also decided at once, in the transaction that sent it: a
reaction costs one transaction, not two (event → command, command → event). Its
event is then its only record, caused by what sent the command: a record in the
commands topic would cost a partition more in the transaction and a round trip
through the topic for every such command, only to be skipped when read back
(docs/benchmarks.md, eighteenth session).

A batch whose records are all declared not urgent (``urgent=False``) waits up to
``non_urgent_wait`` for more records, until an urgent one arrives, and takes them in:
a transaction costs the broker about as much whatever it carries, and the fewer
there are, the sooner the urgent ones commit (docs/benchmarks.md, seventeenth
session).

A batch that will most likely produce (it holds a command not applied yet, or an
event this service reacts to) begins its transaction before it is handled, and its
consumed offsets go to the transaction from another thread meanwhile: their two
round trips (AddOffsetsToTxn, then TxnOffsetCommit) overlap the handling instead of
following it (docs/benchmarks.md, sixteenth session). A batch cut short sends its
offsets again, those of what it handled. Any other batch begins its transaction with
its first record produced; one that produces nothing (events this service does not
react to, reactions that send nothing) commits no transaction: its offsets go with
the next transaction, or on their own when the loop is idle. Consuming such records
again after a crash changes nothing.

What a transaction committed on the partitions this instance owns goes straight
into the store (the replica stops reading those partitions back): the store is
current as soon as the commit returns.

Transactions take turns on two transactional producers. When a commit returns, the
broker still has to write that transaction's markers, and until it has, the same
producer's next transaction is refused (CONCURRENT_TRANSACTIONS) and retried: back
to back on one producer a cycle took 23-35 ms at p50 here, alternating 9-14 ms.
The next transaction only begins once the previous one's commit has returned, so
the order of events and of committed offsets is kept (the group coordinator keeps
the offset commit written last, whichever transaction's marker lands first).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_INVALID, KafkaError, KafkaException, TopicPartition
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from contracts.events.v1 import envelope_pb2
from troupe.bus import clients, partitioning
from troupe.bus.topics import EVENT_TYPE_HEADER, dlq_topic
from troupe.observability import logs, metrics, tracing
from troupe.service import records
from troupe.service.declaration import (
    Cause,
    Command,
    CommandContext,
    CommandDeclaration,
    Emit,
    EventContext,
    ReactionDeclaration,
    Rejected,
    Service,
    TickContext,
    TickDeclaration,
    Unchanged,
)
from troupe.service.offsets import DeferredOffsets, next_offsets
from troupe.service.replica import AppliedEvent, Replica
from troupe.settings import KafkaSettings
from troupe.state.views import Versioned, Views

log = logging.getLogger(__name__)
Reason = envelope_pb2.DeadLetterReason
Owned = tuple[int, bytes, int]
# A consumed confluent_kafka.Message: its stubs make every accessor Optional,
# though topic, partition and offset are always set on a record without error.
Message = Any


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    first_backoff: float = 0.05
    max_backoff: float = 1.0

    def backoff(self, attempt: int) -> float:
        return float(min(self.max_backoff, self.first_backoff * 2 ** (attempt - 1)))


class DeadLetter(Exception):
    """The record cannot be processed; it goes to the DLQ with this reason."""

    def __init__(
        self,
        reason: int,
        error: str,
        attempts: int = 0,
        record_id: str = "",
        correlation_id: str = "",
        entity_id: str = "",
    ) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error
        self.attempts = attempts
        self.record_id = record_id
        self.correlation_id = correlation_id
        self.entity_id = entity_id


class Stopping(Exception):
    """Shutdown was asked for while a batch was open: abort it, commit nothing."""


class Processor:
    def __init__(
        self,
        service: Service[Any],
        kafka: KafkaSettings,
        replica: Replica,
        instance: str,
        retry: RetryPolicy = RetryPolicy(),
        max_batch: int = 5_000,
        idle_wait: float = 0.1,
        max_transaction_seconds: float = 4.0,
        non_urgent_wait: float = 0.03,
    ) -> None:
        # Well inside the transaction timeout: a slow batch is cut short and
        # its rest processed in the next transaction.
        self.max_transaction_seconds = max_transaction_seconds
        self.service = service
        self.replica = replica
        self.retry = retry
        self.max_batch = max_batch
        self.idle_wait = idle_wait
        self.non_urgent_wait = non_urgent_wait
        self.stop_requested = threading.Event()
        self._reactions: dict[tuple[str, str], ReactionDeclaration] = {
            (r.topic, t): r for r in service.reactions for t in r.event_types
        }
        self._reaction_topics = {r.topic for r in service.reactions}
        self._low_priority = {r.topic: r.after for r in service.reactions if r.after}
        self.topics = ([service.commands_topic] if service.commands else []) + sorted(self._reaction_topics)
        self.consumer = clients.consumer(
            kafka,
            group_id=service.name,
            **{
                # Names the instance in the broker's request log and per-client metrics.
                "client.id": f"{service.name}-{instance}-consumer",
                "partition.assignment.strategy": "cooperative-sticky",
                # A crashed instance's partitions move on after this long. (No
                # static membership: a stopped instance must hand over at once.)
                "session.timeout.ms": 10_000,
                "statistics.interval.ms": 5_000,
                "stats_cb": lambda stats: metrics.record_lag(service.name, stats),
            },
        )
        # Two producers taking turns (see the module's doc). The first keeps the id an
        # instance always had: its open transaction is aborted on restart.
        self._producers = (
            clients.transactional_producer(kafka, f"{service.name}-{instance}"),
            clients.transactional_producer(kafka, f"{service.name}-{instance}-b"),
        )
        self._taking_turns = itertools.cycle(self._producers)
        self.producer = next(self._taking_turns)  # the open (or last) transaction's
        # Sends a batch's offsets to its transaction while the batch is handled.
        self._offsets_sender = ThreadPoolExecutor(1, thread_name_prefix=f"{service.name}-offsets")
        # Latest state of the entities this instance owns and has changed, as
        # (version, state bytes, partition); ahead of the store until the replica
        # catches up.
        self._owned: dict[str, Owned] = {}
        # Commands partitions assigned and restored (this instance changes their
        # entities), and those still restoring (partition -> events end offset).
        self._owned_command_partitions: set[int] = set()
        self._restoring: dict[int, int] = {}
        self._command_partitions = 0  # how many the commands topic has, once asked
        self._decided_at_once = 0  # in the open transaction
        self._in_transaction = False  # whether the batch has begun one (early, or with its first record)
        # Offsets of batches that produced nothing: committed with the next transaction,
        # or on their own after waiting at most a second.
        self._deferred = DeferredOffsets(max_wait=1.0)
        self._occurred_at = records.now()  # of the open transaction's events
        self._occurred_at_ms = 0
        self._paused_low: set[TopicPartition] = set()
        self._revocations = 0  # times partitions were given up (a batch gathering more checks it)
        self.views = Views(replica.store, service.view_types())
        # Ids of commands applied lately, to recognize a command delivered twice
        # before the store has seen its event.
        self._recent_commands: OrderedDict[str, None] = OrderedDict()
        self._batch_commands: set[str] = set()
        # The open transaction's events, and the last offset of each partition
        # they went to (from the delivery reports), for the store.
        self._written: list[AppliedEvent] = []
        self._written_offsets: dict[int, int] = {}
        # Commands of the open transaction that changed nothing: no event tells
        # their callers, so the processor does once the transaction commits.
        self._unchanged: list[records.Outcome] = []
        self._applied_before: set[str] = set()
        self._decoded: dict[int, envelope_pb2.CommandEnvelope] = {}
        self._latencies: dict[str, Any] = {}
        self._observed_at: dict[str, float] = {}
        self._type_headers: dict[str, bytes] = {}
        self._counters: dict[str, Any] = {}
        self._loop_seconds = {
            activity: metrics.LOOP_SECONDS.labels(service.name, activity) for activity in metrics.LOOP_ACTIVITIES
        }
        self._next_tick = {tick: time.monotonic() + tick.seconds for tick in service.ticks}

    # -- lifecycle ---------------------------------------------------------

    def run(self) -> None:
        if not self.topics:
            return
        for producer in self._producers:
            producer.init_transactions(30)
        self.consumer.subscribe(
            self.topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        try:
            while not self.stop_requested.is_set():
                self._resume_restored()
                self._apply_priorities()
                polled = time.perf_counter()
                batch = self._gathered(self._poll())
                self._loop_seconds["waiting"].inc(time.perf_counter() - polled)
                if batch:
                    self._process(batch)
                self._commit_deferred(idle=not batch)
                self._run_due_ticks()
        finally:
            # Every batch ends committed, aborted or with its offsets deferred (committed
            # here), so there is nothing half-done to finish; leaving the group hands the
            # partitions over at once.
            self._commit_deferred(idle=True)
            self._offsets_sender.shutdown()
            self.consumer.close()
            for producer in self._producers:
                producer.flush(5)

    def stop(self) -> None:
        self.stop_requested.set()

    @property
    def owned_partitions(self) -> frozenset[int]:
        """The commands partitions this instance owns and has restored: it changes their entities."""
        return frozenset(self._owned_command_partitions)

    # -- polling -----------------------------------------------------------

    def _poll(self, wait: float | None = None, up_to: int | None = None) -> list[Message]:
        """Up to ``up_to`` records (``max_batch``), waiting up to ``wait`` (``idle_wait``) for the first."""
        batch = clients.poll_batch(
            self.consumer,
            self.max_batch if up_to is None else up_to,
            self.idle_wait if wait is None else wait,
        )
        return [m for m in batch if not self._is_error(m)]

    def _gathered(self, batch: list[Message]) -> list[Message]:
        """The batch, prepared, with what arrived while it waited: a batch whose records
        are all not urgent waits up to ``non_urgent_wait`` for more, until an urgent
        record arrives (see the module's doc)."""
        self._prepare(batch)
        patience = self._patience(batch)
        if not patience:
            return batch
        deadline = time.perf_counter() + patience
        revocations = self._revocations
        while len(batch) < self.max_batch and not self.stop_requested.is_set():
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            arrived = self._poll(remaining, self.max_batch - len(batch))
            if self._revocations != revocations:
                # The records of partitions given up are their next owner's to handle.
                assigned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
                batch = [m for m in batch + arrived if (m.topic(), m.partition()) in assigned]
                self._prepare(batch)
                break
            start = len(batch)
            batch += arrived
            self._prepare(batch, start)
            if self._patience(batch, start) == 0:
                break
        return batch

    def _is_error(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer error", extra=logs.fields(error=str(error)))
        return True

    # -- rebalancing -------------------------------------------------------

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        commands = [tp for tp in partitions if tp.topic == self.service.commands_topic]
        if commands:
            # Changing an entity needs its latest state: hold these partitions until
            # the store has read the events partition up to its end.
            for tp in commands:
                events = TopicPartition(self.service.events_topic, tp.partition)
                self._restoring[tp.partition] = clients.watermarks(self.consumer, events)[1]
        consumer.incremental_assign(partitions)
        if commands:
            consumer.pause(commands)
        # Low-priority topics start paused; the loop resumes them once the topics
        # they yield to have no lag.
        low = [tp for tp in partitions if tp.topic in self._low_priority]
        if low:
            consumer.pause(low)
            self._paused_low.update(low)
        log.info("partitions assigned", extra=logs.fields(partitions=_names(partitions)))

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._revocations += 1
        revoked = {tp.partition for tp in partitions if tp.topic == self.service.commands_topic}
        if revoked:
            self._owned = {k: v for k, v in self._owned.items() if v[2] not in revoked}
            self._owned_command_partitions -= revoked
            self.replica.take_back(revoked)
            for partition in revoked:
                self._restoring.pop(partition, None)
        self._paused_low -= set(partitions)
        self._deferred.forget(partitions)
        consumer.incremental_unassign(partitions)
        log.info("partitions revoked", extra=logs.fields(partitions=_names(partitions)))

    def _resume_restored(self) -> None:
        if not self._restoring:
            return
        done = [p for p, end in self._restoring.items() if self.replica.position(self.service.events_topic, p) >= end]
        for partition in done:
            del self._restoring[partition]
        self._owned_command_partitions.update(done)
        if done:
            self.replica.hand_over(set(done))
            self.consumer.resume([TopicPartition(self.service.commands_topic, p) for p in done])

    def _apply_priorities(self) -> None:
        """Pauses low-priority topics while the topics they yield to have lag."""
        if not self._low_priority:
            return
        assignment = self.consumer.assignment()
        for topic, after in self._low_priority.items():
            busy = any(self._lag(tp) > 0 for tp in assignment if tp.topic in after)
            mine = [tp for tp in assignment if tp.topic == topic]
            if busy:
                to_pause = [tp for tp in mine if tp not in self._paused_low]
                if to_pause:
                    self.consumer.pause(to_pause)
                    self._paused_low.update(to_pause)
            else:
                to_resume = [tp for tp in mine if tp in self._paused_low]
                if to_resume:
                    self.consumer.resume(to_resume)
                    self._paused_low.difference_update(to_resume)

    def _lag(self, tp: TopicPartition) -> int:
        _, high = self.consumer.get_watermark_offsets(tp, cached=True)
        position = self.consumer.position([tp])[0].offset
        if high < 0 or position == OFFSET_INVALID:
            low, high = self.consumer.get_watermark_offsets(tp, timeout=1.0, cached=False)
            committed = self.consumer.committed([tp], timeout=1.0)[0].offset
            position = committed if committed >= 0 else low
        return max(0, high - position)

    # -- the transaction ---------------------------------------------------

    def _process(self, batch: list[Message]) -> None:
        pending: dict[str, Owned] = {}
        started = time.perf_counter()
        self._start_batch()
        offsets_sent: Future[None] | None = None
        try:
            try:
                if self._patience(batch) is not None:
                    offsets_sent = self._send_offsets_early(batch)
                done = 0
                for index, message in enumerate(batch):
                    self._handle(message, pending, self._decoded.get(index))
                    done += 1
                    if time.perf_counter() - started > self.max_transaction_seconds:
                        break
                if done < len(batch):
                    self._rewind(batch[done:])
                    batch = batch[:done]
                    if offsets_sent is not None:
                        offsets_sent.result()
                        offsets_sent = None  # they went past what was handled: sent again below
                handled = time.perf_counter()
                self._loop_seconds["handling"].inc(handled - started)
                if self._in_transaction:
                    # Offsets not sent early go now, while the records are still being
                    # written: waiting for them first (a flush) made no call faster at 2
                    # calls/s and the tail longer at 50 (docs/benchmarks.md, fourteenth session).
                    if offsets_sent is not None:
                        offsets_sent.result()
                    else:
                        self._sending_offsets(batch)()
                    self._commit()
                    self._deferred.clear()
                    self._loop_seconds["committing"].inc(time.perf_counter() - handled)
                else:
                    self._deferred.defer(next_offsets(batch))
            finally:
                # No abort while the transaction's offsets are still on their way.
                _settle(offsets_sent)
        except Stopping:
            self._abort(batch)
            return
        except KafkaException as error:
            if error.args[0].fatal():
                raise
            log.warning("transaction aborted", extra=logs.fields(error=str(error)))
            self._abort(batch)
            return
        self._committed(pending)
        service = self.service.name
        for topic, count in Counter(message.topic() for message in batch).items():
            self._records_counter(topic).inc(count)
        if self._in_transaction:
            metrics.TRANSACTIONS.labels(service, "committed").inc()
            metrics.BATCH_SIZE.labels(service).observe(len(batch))
        log.debug(
            "batch done",
            extra=logs.fields(
                records=len(batch),
                transaction=self._in_transaction,
                seconds=round(time.perf_counter() - started, 4),
            ),
        )

    def _start_batch(self) -> None:
        """Forgets the previous batch's state. The transaction begins with the first
        record produced (``_produce``): a batch that produces nothing needs none."""
        self._in_transaction = False
        self._written = []
        self._written_offsets = {}
        self._unchanged = []
        self._batch_commands = set()
        self._decided_at_once = 0
        # One clock reading for the batch's events: they commit together.
        self._occurred_at = records.now()
        self._occurred_at_ms = records.unix_ms(self._occurred_at)

    def _produce(self, topic: str, value: bytes, key: str | bytes | None, **options: Any) -> None:
        """Produces in the batch's transaction; the first record begins it, on the
        other producer, unless the batch began it early."""
        if not self._in_transaction:
            self._begin()
        self.producer.produce(topic, value, key, **options)

    def _begin(self) -> None:
        self.producer = next(self._taking_turns)
        # Delivery reports of an aborted transaction's events are served (and
        # forgotten) here, not counted as this one's.
        self.producer.poll(0)
        self.producer.begin_transaction()
        self._in_transaction = True

    def _patience(self, batch: list[Message], start: int = 0) -> float | None:
        """How long the records from ``start`` on may wait for more before they are
        handled: None if none of them will most likely produce (they need no
        transaction), 0 if one of those is urgent, else ``non_urgent_wait``.

        A guess, from what is known before handling: a command not applied yet, or an
        event this service reacts to, will produce. (A reaction may still send nothing,
        or a command change nothing: then the transaction carries offsets only.)"""
        patience = None
        for index in range(start, len(batch)):
            message = batch[index]
            decoded = self._decoded.get(index)
            if decoded is not None:
                if self._already_applied(decoded.command_id):
                    continue
                declaration = self.service.commands.get(decoded.payload.TypeName())
                urgent = declaration is None or declaration.urgent  # an unknown one goes to the DLQ
            else:
                reaction = self._reactions.get((message.topic(), _event_type(message) or ""))
                if reaction is None:
                    continue
                urgent = reaction.urgent
            if urgent:
                return 0.0
            patience = self.non_urgent_wait
        return patience

    def _send_offsets_early(self, batch: list[Message]) -> Future[None]:
        """Begins the batch's transaction and sends its offsets to it in the background."""
        self._begin()
        return self._offsets_sender.submit(self._sending_offsets(batch))

    def _sending_offsets(self, batch: list[Message]) -> Callable[[], None]:
        """The call that sends the offsets after ``batch`` (with the deferred ones) to
        the open transaction; its arguments taken now, on the loop's thread."""
        return functools.partial(
            self.producer.send_offsets_to_transaction,
            self._deferred.along_with(next_offsets(batch)),
            self.consumer.consumer_group_metadata(),
            30,
        )

    def _commit_deferred(self, idle: bool) -> None:
        """Commits the offsets of batches that produced nothing on their own, once
        due (offsets.py). Synchronously: a commit still in flight could land after
        the next transaction's and move the group back."""
        if not self._deferred.due(idle):
            return
        offsets = self._deferred.along_with([])
        self._deferred.clear()
        started = time.perf_counter()
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
            self._loop_seconds["committing"].inc(time.perf_counter() - started)
            metrics.OFFSET_COMMITS.labels(self.service.name).inc()
        except KafkaException as error:  # those records are consumed again, to no effect
            log.warning("offsets not committed", extra=logs.fields(error=str(error)))

    def _committed(self, pending: dict[str, Owned]) -> None:
        """What a committed transaction changed becomes this instance's knowledge."""
        if self._written:
            self.producer.poll(0)  # the delivery reports, with the events' offsets
            topic = self.service.events_topic
            offsets = {(topic, partition): offset + 1 for partition, offset in self._written_offsets.items()}
            self.replica.written(self._written, offsets)
        if self._unchanged:
            self.replica.resolve(self._unchanged)
        self._owned.update(pending)
        self._trim_owned()
        self._remember_commands(self._batch_commands)
        if self._decided_at_once:
            metrics.COMMANDS_AT_ONCE.labels(self.service.name).inc(self._decided_at_once)

    def _commit(self) -> None:
        while True:
            try:
                self.producer.commit_transaction(30)
                return
            except KafkaException as error:
                if not error.args[0].retriable():
                    raise

    def _abort(self, batch: list[Message]) -> None:
        """Aborts the open transaction, if any, and rewinds so the batch is processed again."""
        if self._in_transaction:
            self.producer.abort_transaction(30)
            metrics.TRANSACTIONS.labels(self.service.name, "aborted").inc()
        self._rewind(batch)

    def _rewind(self, batch: list[Message]) -> None:
        """Seeks back so these records are consumed again."""
        firsts: dict[tuple[str, int], int] = {}
        for message in batch:
            firsts.setdefault((message.topic(), message.partition()), message.offset())
        assigned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        for (topic, partition), offset in firsts.items():
            if (topic, partition) in assigned:
                self.consumer.seek(TopicPartition(topic, partition, offset))

    # -- one record ---------------------------------------------------------

    def _prepare(self, batch: list[Message], start: int = 0) -> None:
        """Decodes the batch's commands (from ``start`` on: the rest are) up front, to
        ask the store once which of them were applied already (not once per command)."""
        if start == 0:
            self._decoded = {}
            self._applied_before = set()
        ids = []
        for index in range(start, len(batch)):
            message = batch[index]
            if message.topic() == self.service.commands_topic:
                try:
                    envelope = self._decoded[index] = envelope_pb2.CommandEnvelope.FromString(message.value() or b"")
                except DecodeError:
                    continue  # sent to the DLQ when its turn comes
                if envelope.command_id:
                    ids.append(envelope.command_id)
        if ids:
            self._applied_before |= self.replica.store.applied_among(self.service.events_topic, ids)

    def _type_header(self, event_type: str) -> bytes:
        encoded = self._type_headers.get(event_type)
        if encoded is None:
            encoded = self._type_headers[event_type] = event_type.encode()
        return encoded

    def _records_counter(self, topic: str) -> Any:
        counter = self._counters.get(topic)
        if counter is None:
            counter = self._counters[topic] = metrics.RECORDS.labels(self.service.name, topic)
        return counter

    def _handle(
        self, message: Message, pending: dict[str, Owned], decoded: envelope_pb2.CommandEnvelope | None
    ) -> None:
        topic = message.topic()
        try:
            if topic == self.service.commands_topic:
                self._handle_command(message, pending, decoded)
            else:
                self._handle_event(message, pending)
        except DeadLetter as dead:
            self._dead_letter(message, dead)

    def _handle_command(
        self, message: Message, pending: dict[str, Owned], decoded: envelope_pb2.CommandEnvelope | None
    ) -> None:
        envelope, declaration, payload, cause = self._decode_command(message, decoded)
        if self._already_applied(envelope.command_id):
            log.debug("command applied already", extra=logs.fields(command_id=envelope.command_id))
            return
        logs.correlation_id.set(cause.correlation_id)
        version, state_bytes, _ = pending.get(envelope.entity_id) or self._current(
            envelope.entity_id, message.partition()
        )
        if envelope.HasField("expected_version") and envelope.expected_version != version:
            raise self._dead(
                Reason.DEAD_LETTER_REASON_REJECTED,
                f"expected {envelope.entity_id} at version {envelope.expected_version}, it is at {version}",
                cause,
            )
        context = CommandContext(cause, declaration.type, version, self.views)

        def decide() -> ProtoMessage | Emit | Unchanged:
            current = self.service.entity.FromString(state_bytes) if version else None
            return declaration.handler(current, payload, context)

        with tracing.Span(declaration.type, message.headers()) as trace_headers:
            decision = self._decide(declaration.type, decide, cause)
            if isinstance(decision, Unchanged):
                log.info("command changed nothing", extra=logs.fields(type=declaration.type))
                self._unchanged.append(records.Outcome(envelope.command_id, envelope.entity_id, version))
                return
            self._emit(
                cause, envelope.command_id, declaration, decision, version, message.partition(), pending, trace_headers
            )

    def _apply_now(
        self,
        envelope: envelope_pb2.CommandEnvelope,
        payload: ProtoMessage,
        pending: dict[str, Owned],
        trace_headers: tracing.Headers,
    ) -> bool:
        """Decides a command to this service's own entity in the open transaction,
        if this instance owns its partition and the decision is an event; True if
        it did. Anything else (another owner, an expected version, a rejection, a
        failure, no change) is left to the command's record, which takes the usual
        way."""
        partition = self._partition_if_owned(envelope.entity_id)
        declaration = self.service.commands.get(envelope.payload.TypeName())
        if partition is None or declaration is None or envelope.HasField("expected_version"):
            return False
        if self._already_applied(envelope.command_id):
            return True  # sent again (a tick's id is the same for the same decision): one effect
        version, state_bytes, _ = pending.get(envelope.entity_id) or self._current(envelope.entity_id, partition)
        # With no record of the command, its event is caused by what sent it.
        cause = Cause(envelope.causation_id, envelope.correlation_id, envelope.actor, envelope.entity_id)
        context = CommandContext(cause, declaration.type, version, self.views)
        try:
            current = self.service.entity.FromString(state_bytes) if version else None
            decision = declaration.handler(current, payload, context)
            if isinstance(decision, Unchanged):
                return False
            with tracing.Span(declaration.type, trace_headers) as headers:
                self._emit(cause, envelope.command_id, declaration, decision, version, partition, pending, headers)
        except Exception as error:  # the command's record will be decided, retried or dead-lettered
            log.debug("command left to its record", extra=logs.fields(type=declaration.type, error=repr(error)))
            return False
        self._decided_at_once += 1
        return True

    def _emit(
        self,
        cause: Cause,
        command_id: str,
        declaration: CommandDeclaration,
        decision: ProtoMessage | Emit,
        version: int,
        partition: int,
        pending: dict[str, Owned],
        trace_headers: tracing.Headers,
    ) -> None:
        """Produces the event of an applied command and records its new state; the
        command's id is remembered, so that a duplicate of it changes nothing."""
        event_type, state = _emitted(declaration, decision, self.service.entity)
        event = records.event(
            source=self.service.name,
            event_type=event_type,
            entity_id=cause.entity_id,
            version=version + 1,
            state=state,
            cause=cause,
            occurred_at=self._occurred_at,
        )
        self._produce(
            self.service.events_topic,
            event.SerializeToString(),
            cause.entity_id,
            headers=[*trace_headers, (EVENT_TYPE_HEADER, self._type_header(event_type))],
            on_delivery=self._event_delivered,
        )
        state_bytes = event.state.value
        pending[cause.entity_id] = (version + 1, state_bytes, partition)
        self._written.append(
            AppliedEvent(
                self.service.events_topic,
                partition,
                cause.entity_id,
                version + 1,
                event_type,
                state_bytes,
                cause.record_id,
                event.event_id,
                self._occurred_at_ms,
            )
        )
        self._batch_commands.add(command_id)

    def _event_delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is None and message.offset() > self._written_offsets.get(message.partition(), -1):
            self._written_offsets[message.partition()] = message.offset()

    def _handle_event(self, message: Message, pending: dict[str, Owned]) -> None:
        declared_type = _event_type(message)
        if declared_type is not None and (message.topic(), declared_type) not in self._reactions:
            return  # an event type this service does not react to: not even decoded
        try:
            envelope = envelope_pb2.Envelope.FromString(message.value() or b"")
        except DecodeError as error:
            raise DeadLetter(Reason.DEAD_LETTER_REASON_UNDECODABLE, f"not an event envelope: {error}") from error
        reaction = self._reactions.get((message.topic(), envelope.type))
        if reaction is None:
            return  # an event type this service does not react to
        cause = Cause(envelope.event_id, envelope.correlation_id, envelope.actor, envelope.entity_id)
        logs.correlation_id.set(cause.correlation_id)
        expected = reaction.state.DESCRIPTOR.full_name
        if envelope.state.TypeName() != expected:
            raise self._dead(
                Reason.DEAD_LETTER_REASON_UNDECODABLE,
                f"{envelope.type} carries {envelope.state.TypeName()!r}, expected {expected}",
                cause,
            )
        try:
            state = reaction.state.FromString(envelope.state.value)
        except DecodeError as error:
            raise self._dead(Reason.DEAD_LETTER_REASON_UNDECODABLE, f"undecodable state: {error}", cause) from error
        context = EventContext(cause, envelope.type, envelope.source, envelope.entity_version, self.views)
        with tracing.Span(envelope.type, message.headers()) as trace_headers:
            sent = self._decide(envelope.type, lambda: reaction.handler(state, context), cause)
            self._send(_commands(sent), reaction.sends, cause, trace_headers, pending)

    def _send(
        self,
        commands: list[Command],
        allowed: tuple[type[ProtoMessage], ...],
        cause: Cause,
        trace_headers: tracing.Headers,
        pending: dict[str, Owned],
    ) -> None:
        for command in commands:
            if not isinstance(command.payload, allowed):
                raise self._dead(
                    Reason.DEAD_LETTER_REASON_FAILED,
                    f"handler sent {command.type}, not declared in sends=",
                    cause,
                )
            envelope = records.command(command, cause)
            if command.service == self.service.name and self._apply_now(
                envelope, command.payload, pending, trace_headers
            ):
                continue
            self._produce(
                f"{command.service}.commands",
                envelope.SerializeToString(),
                command.entity_id,
                headers=trace_headers,
            )

    def _decode_command(
        self, message: Message, decoded: envelope_pb2.CommandEnvelope | None
    ) -> tuple[envelope_pb2.CommandEnvelope, CommandDeclaration, ProtoMessage, Cause]:
        try:
            envelope = decoded or envelope_pb2.CommandEnvelope.FromString(message.value() or b"")
        except DecodeError as error:
            raise DeadLetter(Reason.DEAD_LETTER_REASON_UNDECODABLE, f"not a command envelope: {error}") from error
        cause = _command_cause(envelope)
        if not envelope.command_id or not envelope.entity_id:
            raise self._dead(
                Reason.DEAD_LETTER_REASON_UNDECODABLE,
                "command without command_id or entity_id",
                cause,
            )
        key = message.key()
        if key is not None and key.decode(errors="replace") != envelope.entity_id:
            raise self._dead(
                Reason.DEAD_LETTER_REASON_UNDECODABLE,
                f"record key {key!r} is not the command's entity id {envelope.entity_id!r}",
                cause,
            )
        declaration = self.service.commands.get(envelope.payload.TypeName())
        if declaration is None:
            raise self._dead(
                Reason.DEAD_LETTER_REASON_UNKNOWN_TYPE,
                f"{self.service.name} has no handler for {envelope.payload.TypeName() or envelope.type!r}",
                cause,
            )
        try:
            payload = declaration.payload.FromString(envelope.payload.value)
        except DecodeError as error:
            raise self._dead(Reason.DEAD_LETTER_REASON_UNDECODABLE, f"undecodable payload: {error}", cause) from error
        return envelope, declaration, payload, cause

    def _decide(self, record_type: str, decide: Callable[[], Any], cause: Cause) -> Any:
        """Runs a handler, retrying failures with backoff; rejections are final."""
        service = self.service.name
        for attempt in range(1, self.retry.attempts + 1):
            started = time.perf_counter()
            try:
                result = decide()
                self._observe_latency(record_type, started)
                return result
            except Rejected as rejection:
                raise self._dead(Reason.DEAD_LETTER_REASON_REJECTED, str(rejection), cause, attempt) from rejection
            except Exception as error:
                metrics.HANDLER_ERRORS.labels(service, record_type).inc()
                log.warning(
                    "handler failed",
                    extra=logs.fields(type=record_type, attempt=attempt, error=repr(error)),
                )
                if attempt == self.retry.attempts:
                    raise self._dead(
                        Reason.DEAD_LETTER_REASON_FAILED,
                        f"{type(error).__name__}: {error}",
                        cause,
                        attempt,
                    ) from error
                if self.stop_requested.wait(self.retry.backoff(attempt)):
                    raise Stopping() from error
        raise AssertionError("unreachable")

    def _observe_latency(self, record_type: str, started: float) -> None:
        """Into the handler-latency histogram, at most once per 10 ms per record type:
        an observation costs more than some handlers, and under load a sample of a
        hundred a second describes the latencies as well as all of them."""
        now = time.perf_counter()
        if now - self._observed_at.get(record_type, 0.0) < 0.01:
            return
        self._observed_at[record_type] = now
        latency = self._latencies.get(record_type)
        if latency is None:
            latency = self._latencies[record_type] = metrics.HANDLER_SECONDS.labels(self.service.name, record_type)
        latency.observe(now - started)

    @staticmethod
    def _dead(reason: int, error: str, cause: Cause, attempts: int = 0) -> DeadLetter:
        return DeadLetter(reason, error, attempts, cause.record_id, cause.correlation_id, cause.entity_id)

    def _dead_letter(self, message: Message, dead: DeadLetter) -> None:
        letter = envelope_pb2.DeadLetter(
            service=self.service.name,
            reason=dead.reason,  # type: ignore[arg-type]
            error=dead.error,
            attempts=dead.attempts,
            failed_at=records.now(),
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            key=message.key() or b"",
            value=message.value() or b"",
            headers=[
                envelope_pb2.RecordHeader(key=k, value=v if isinstance(v, bytes) else (v or "").encode())
                for k, v in message.headers() or ()
            ],
            record_id=dead.record_id,
            correlation_id=dead.correlation_id,
            entity_id=dead.entity_id,
        )
        self._produce(dlq_topic(self.service.name), letter.SerializeToString(), message.key())
        metrics.DEAD_LETTERS.labels(self.service.name, envelope_pb2.DeadLetterReason.Name(dead.reason)).inc()
        log.warning(
            "record sent to the DLQ",
            extra=logs.fields(
                topic=message.topic(),
                partition=message.partition(),
                offset=message.offset(),
                reason=envelope_pb2.DeadLetterReason.Name(dead.reason),
                error=dead.error,
            ),
        )

    # -- idempotence --------------------------------------------------------

    def _already_applied(self, command_id: str) -> bool:
        return (
            command_id in self._batch_commands
            or command_id in self._recent_commands
            or command_id in self._applied_before
        )

    def _remember_commands(self, command_ids: set[str], limit: int = 200_000) -> None:
        for command_id in command_ids:
            self._recent_commands[command_id] = None
        while len(self._recent_commands) > limit:
            self._recent_commands.popitem(last=False)

    # -- ticks ---------------------------------------------------------------

    def _run_due_ticks(self) -> None:
        now = time.monotonic()
        for tick, due in self._next_tick.items():
            if now >= due:
                self._next_tick[tick] = now + tick.seconds
                started = time.perf_counter()
                self._tick(tick)
                self._loop_seconds["ticking"].inc(time.perf_counter() - started)

    def _partition_if_owned(self, entity_id: str) -> int | None:
        """The commands partition of ``entity_id``, if this instance owns it and has restored it."""
        if self._command_partitions == 0:
            topic = self.service.commands_topic
            self._command_partitions = len(self.consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        partition = partitioning.partition_for(entity_id, self._command_partitions)
        return partition if partition in self._owned_command_partitions else None

    def _owned_entities(self, lookup: str | None = None, value: str = "") -> list[Versioned[Any]]:
        topic, owned = self.service.events_topic, self._owned_command_partitions
        if lookup is None:
            return self.views.in_partitions(topic, owned)
        return self.views.find(topic, lookup, value, owned)

    def _tick(self, tick: TickDeclaration) -> None:
        """Runs a periodic check in its own transaction; a failure is logged and
        the check runs again at its next period."""
        if not self._owned_command_partitions:
            return
        tick_id = str(uuid.uuid4())
        cause = Cause(tick_id, tick_id, records.service_actor(self.service.name), "")
        context = TickContext(datetime.now(UTC), self.views, self._owned_entities)
        pending: dict[str, Owned] = {}
        self._start_batch()
        try:
            with tracing.Span("tick", tracing.new_trace_headers()) as trace_headers:
                self._send(_commands(tick.handler(context)), tick.sends, cause, trace_headers, pending)
            if self._in_transaction:
                self._commit()
        except Exception as error:
            log.exception("tick failed", extra=logs.fields(error=repr(error)))
            if self._in_transaction:
                self.producer.abort_transaction(30)
            return
        self._committed(pending)

    # -- entity state ------------------------------------------------------

    def _current(self, entity_id: str, partition: int) -> Owned:
        # What this instance wrote while owning the partition is never behind the store.
        owned = self._owned.get(entity_id)
        if owned is not None:
            return owned
        stored = self.replica.store.get(self.service.events_topic, entity_id)
        return (stored.version, stored.state, partition) if stored else (0, b"", partition)

    def _trim_owned(self, limit: int = 100_000) -> None:
        """Forgets owned states the store has caught up with, once there are many."""
        if len(self._owned) <= limit:
            return
        stored = self.replica.store.versions(self.service.events_topic, list(self._owned))
        self._owned = {k: v for k, v in self._owned.items() if stored.get(k, 0) < v[0]}


def _settle(sent: Future[None] | None) -> None:
    """Waits for a background call to end; its error, if any, was or will be met elsewhere."""
    if sent is not None:
        with contextlib.suppress(Exception):
            sent.result()


def _emitted(
    declaration: CommandDeclaration, decision: ProtoMessage | Emit, entity_type: type[ProtoMessage]
) -> tuple[str, ProtoMessage]:
    if isinstance(decision, Emit):
        if decision.type not in declaration.emits:
            raise DeadLetter(
                Reason.DEAD_LETTER_REASON_FAILED,
                f"handler of {declaration.type} emitted {decision.type}, not in emits={declaration.emits}",
            )
        event_type, state = decision.type, decision.state
    elif len(declaration.emits) == 1:
        event_type, state = declaration.emits[0], decision
    else:
        raise DeadLetter(
            Reason.DEAD_LETTER_REASON_FAILED,
            f"handler of {declaration.type} must return Emit(type, state): it may emit {declaration.emits}",
        )
    if not isinstance(state, entity_type):
        raise DeadLetter(
            Reason.DEAD_LETTER_REASON_FAILED,
            f"handler of {declaration.type} returned {type(state).__name__}, not {entity_type.__name__}",
        )
    return event_type, state


def _command_cause(envelope: envelope_pb2.CommandEnvelope) -> Cause:
    """A command is the cause of the event it produces (its id the causation id)."""
    return Cause(envelope.command_id, envelope.correlation_id, envelope.actor, envelope.entity_id)


def _event_type(message: Message) -> str | None:
    """The event type from the record's header (None on records written without it)."""
    for key, value in message.headers() or ():
        if key == EVENT_TYPE_HEADER:
            return bytes(value).decode()
    return None


def _commands(sent: Iterable[Command] | Command | None) -> list[Command]:
    if sent is None:
        return []
    if isinstance(sent, Command):
        return [sent]
    return list(sent)


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]
