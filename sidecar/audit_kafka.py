"""Writing audit records to ``audit.events`` so that none is lost, none is duplicated,
and no change is forwarded before its record is durable.

One writer thread per sidecar instance takes the entries requests hand it, seals
them into the instance's hash chain in order, and writes each batch either

* to Kafka in a transaction (acks=all, idempotent), which is durable once the
  commit returns; or
* when Kafka does not answer, or records are already waiting, to the local spool
  (fsync'd), forwarded to Kafka as soon as it answers again.

A request is let through only after its batch is durable one way or the other. If
neither works the request gets 503. Records are keyed by instance id and all go to
one partition of ``audit.events``, so the chain's order is the partition's order.

Restart: the producer's transactional id is the instance's, so a restarted instance
aborts whatever its crashed predecessor left open. The chain continues from the
spool's last record, else from the instance's last committed record in Kafka
(read_committed, from the end of its partition). Records read back from Kafka are
never spooled twice: before forwarding the spool, the writer skips every spooled
record whose sequence Kafka already has.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from contracts.audit.v1.audit_pb2 import AuditEntry, AuditRecord
from sidecar.audit import AuditUnavailableError, Chain, ChainHead, Spool
from troupe.bus.clients import transactional_producer
from troupe.bus.topics import AUDIT_TOPIC, ensure_topics
from troupe.settings import KafkaSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditWriterConfig:
    instance_id: str
    spool_dir: Path
    topic: str = AUDIT_TOPIC
    # How long a batch may wait for Kafka before it goes to the spool instead.
    kafka_timeout: float = 5.0
    # How long a request waits for its record before it is answered 503.
    write_timeout: float = 15.0
    max_batch: int = 1000
    retry_interval: float = 1.0


@dataclass
class _Pending:
    entry: bytes
    done: concurrent.futures.Future[AuditRecord]


def audit_partition(instance_id: str, partitions: int) -> int:
    """The partition of ``audit.events`` that holds every record of one instance."""
    return zlib.crc32(instance_id.encode()) % partitions


class KafkaAuditLog:
    """The durable audit log of one sidecar instance (see the module's doc)."""

    def __init__(self, kafka: KafkaSettings, config: AuditWriterConfig) -> None:
        self._kafka = kafka
        self.config = config
        self.spool = Spool(config.spool_dir, config.instance_id)
        self.chain: Chain | None = None
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._producer: Producer | None = None
        self._partition: int | None = None
        self._kafka_ok = False
        self._reachable = threading.Event()
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._writer = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._prober = threading.Thread(target=self._probe, name="audit-probe", daemon=True)
        self.kafka_writes = 0
        self.spooled = 0

    # -- the requests' side -------------------------------------------------------
    def start(self) -> None:
        self._prober.start()
        self._writer.start()

    def wait_ready(self, timeout: float) -> bool:
        """True once the chain's head is known (records can be written)."""
        return self._ready.wait(timeout)

    def submit(self, entry: AuditEntry) -> concurrent.futures.Future[AuditRecord]:
        pending = _Pending(entry.SerializeToString(), concurrent.futures.Future())
        self._queue.put(pending)
        return pending.done

    async def write(self, entry: AuditEntry) -> AuditRecord:
        """Returns the sealed record once it is durable; raises AuditUnavailableError."""
        done = self.submit(entry)
        try:
            return await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(done)), self.config.write_timeout
            )
        except TimeoutError:
            if done.cancel():  # never sealed: it will not be written
                raise AuditUnavailableError("the audit log did not answer in time") from None
            return await asyncio.wrap_future(done)  # being written: its outcome decides

    def write_blocking(self, entry: AuditEntry) -> AuditRecord:
        done = self.submit(entry)
        try:
            return done.result(self.config.write_timeout)
        except concurrent.futures.TimeoutError:
            if done.cancel():
                raise AuditUnavailableError("the audit log did not answer in time") from None
            return done.result()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._queue.put(None)
        self._writer.join(timeout)
        self._prober.join(timeout)

    # -- the writer thread ----------------------------------------------------------
    def _run(self) -> None:
        self._recover()
        last_drain = 0.0
        while not self._stopping.is_set():
            batch = self._take_batch()
            now = time.monotonic()
            if self.spool.records and self._reachable.is_set() and (
                now - last_drain >= self.config.retry_interval
            ):
                last_drain = now
                self._drain()
            if batch:
                self._write(batch)
        self._close_producer()

    def _recover(self) -> None:
        """Finds where the chain goes on; requests meanwhile are refused."""
        instance = self.config.instance_id
        if self.spool.records:
            self.chain = Chain(instance, ChainHead.of(self.spool.records[-1]))
            log.info("audit: %d spooled records to forward", len(self.spool.records))
        while self.chain is None and not self._stopping.is_set():
            try:
                self._ensure_producer()
                self.chain = Chain(instance, self._kafka_head())
                self._kafka_ok = True
            except Exception as error:
                log.warning("audit: Kafka not ready (%s); refusing audited requests", error)
                self._close_producer()
                self._fail_queued(AuditUnavailableError("the audit log is not ready"),
                                  self.config.retry_interval)
        if self.chain is not None:
            log.info("audit: chain %s continues after #%d", instance, self.chain.head.sequence)
            self._ready.set()

    def _fail_queued(self, error: Exception, wait: float) -> None:
        deadline = time.monotonic() + wait
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                return
            if item is not None and item.done.set_running_or_notify_cancel():
                item.done.set_exception(error)

    def _take_batch(self) -> list[_Pending]:
        try:
            first = self._queue.get(timeout=self.config.retry_interval / 4)
        except queue.Empty:
            return []
        items = [first]
        while len(items) < self.config.max_batch:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return [i for i in items if i is not None and i.done.set_running_or_notify_cancel()]

    def _write(self, batch: list[_Pending]) -> None:
        assert self.chain is not None
        head = self.chain.head
        records = [self.chain.seal(item.entry) for item in batch]
        if self._kafka_ok and not self.spool.records:
            try:
                self._produce(records)
                self.kafka_writes += len(records)
                self._resolve(batch, records)
                return
            except Exception as error:
                log.warning("audit: Kafka write failed (%s); spooling", error)
                self._kafka_ok = False
                self._reachable.clear()
                self._close_producer()
        try:
            self.spool.append(records)
            self.spooled += len(records)
        except OSError as error:
            log.error("audit: cannot spool (%s); refusing the batch", error)
            self.chain.head = head
            for item in batch:
                item.done.set_exception(AuditUnavailableError("the audit log is unavailable"))
            return
        self._resolve(batch, records)

    @staticmethod
    def _resolve(batch: list[_Pending], records: list[AuditRecord]) -> None:
        for item, record in zip(batch, records, strict=True):
            item.done.set_result(record)

    def _drain(self) -> None:
        """Forwards the spool to Kafka; the spool is emptied only after the commit."""
        try:
            self._ensure_producer()
            head = self._kafka_head()
            pending = [r for r in self.spool.records if r.sequence > head.sequence]
            for start in range(0, len(pending), self.config.max_batch):
                self._produce(pending[start : start + self.config.max_batch])
            self.kafka_writes += len(pending)
            self.spool.clear()
            self._kafka_ok = True
            log.info("audit: forwarded %d spooled records", len(pending))
        except Exception as error:
            log.warning("audit: spool not forwarded yet (%s)", error)
            self._close_producer()

    # -- Kafka ----------------------------------------------------------------------
    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            ensure_topics(self._kafka, [self.config.topic], timeout=self.config.kafka_timeout)
            producer = transactional_producer(
                self._kafka,
                f"troupe-audit-{self.config.instance_id}",
                **{"linger.ms": 1, "compression.type": "none",
                   "transaction.timeout.ms": 30_000},
            )
            producer.init_transactions(self.config.kafka_timeout)
            metadata = producer.list_topics(self.config.topic, timeout=self.config.kafka_timeout)
            partitions = len(metadata.topics[self.config.topic].partitions)
            self._partition = audit_partition(self.config.instance_id, partitions)
            self._producer = producer
        return self._producer

    def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.abort_transaction(0.5)
            except Exception as error:
                log.debug("audit: abort on close: %s", error)

    def _produce(self, records: list[AuditRecord]) -> None:
        producer = self._ensure_producer()
        assert self._partition is not None
        key = self.config.instance_id.encode()
        deadline = time.monotonic() + self.config.kafka_timeout
        producer.begin_transaction()
        try:
            for record in records:
                producer.produce(self.config.topic, record.SerializeToString(), key,
                                 partition=self._partition)
            while True:
                try:
                    producer.commit_transaction(max(0.1, deadline - time.monotonic()))
                    return
                except KafkaException as error:
                    kafka_error: KafkaError = error.args[0]
                    if not kafka_error.retriable() or time.monotonic() >= deadline:
                        raise
        except BaseException:
            self._close_producer()
            raise

    def _kafka_head(self) -> ChainHead:
        """The last committed record of this instance in its partition (read_committed)."""
        assert self._partition is not None
        return find_head(self._kafka, self.config.topic, self._partition,
                         self.config.instance_id, self.config.kafka_timeout * 2)

    def _probe(self) -> None:
        admin = AdminClient({**self._kafka.client_config(), "log_level": 0})
        while not self._stopping.wait(self.config.retry_interval):
            if self._kafka_ok and not self.spool.records:
                continue
            try:
                admin.list_topics(self.config.topic, timeout=self.config.retry_interval)
                self._reachable.set()
            except KafkaException:
                self._reachable.clear()


def find_head(
    kafka: KafkaSettings, topic: str, partition: int, instance_id: str, timeout: float
) -> ChainHead:
    """Reads the end of one partition backwards, in growing windows, until it finds the
    last committed record of ``instance_id``; ChainHead() when it has none."""
    consumer = _reader(kafka)
    try:
        tp = TopicPartition(topic, partition)
        low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
        window = 256
        end = high
        while end > low:
            start = max(low, end - window)
            records = _read_range(consumer, tp, start, end, timeout)
            mine = [r for r in records if r.instance_id == instance_id]
            if mine:
                return ChainHead.of(max(mine, key=lambda r: r.sequence))
            end, window = start, window * 4
        return ChainHead()
    finally:
        consumer.close()


def _reader(kafka: KafkaSettings) -> Consumer:
    config: dict[str, Any] = {
        **kafka.client_config(),
        "group.id": "troupe-audit-reader",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "log_level": 0,
    }
    return Consumer(config)


def _read_range(
    consumer: Consumer, tp: TopicPartition, start: int, end: int, timeout: float
) -> list[AuditRecord]:
    records = []
    for value in _read_values(consumer, tp, start, end, timeout):
        record = AuditRecord()
        record.ParseFromString(value)
        records.append(record)
    return records


def _read_values(
    consumer: Consumer, tp: TopicPartition, start: int, end: int, timeout: float
) -> list[bytes]:
    """The committed values of one partition from offset ``start`` up to ``end``."""
    consumer.assign([TopicPartition(tp.topic, tp.partition, start)])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            position = consumer.position([TopicPartition(tp.topic, tp.partition)])[0].offset
            if position >= end:
                return values
            continue
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return values
            raise KafkaException(error)
        offset, value = message.offset(), message.value()
        if offset is None or offset >= end:
            return values
        values.append(value or b"")
    raise TimeoutError(f"reading {tp.topic}[{tp.partition}] {start}..{end} timed out")


def read_topic(kafka: KafkaSettings, topic: str, timeout: float = 30.0) -> list[bytes]:
    """Every committed value of a topic, partition by partition, in offset order."""
    consumer = _reader(kafka)
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
        if metadata.topics[topic].error is not None:
            return []
        values: list[bytes] = []
        for partition in sorted(metadata.topics[topic].partitions):
            tp = TopicPartition(topic, partition)
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
            if high > low:
                values.extend(_read_values(consumer, tp, low, high, timeout))
        return values
    finally:
        consumer.close()


def read_all(kafka: KafkaSettings, topic: str = AUDIT_TOPIC, timeout: float = 30.0) -> list[
    AuditRecord
]:
    """Every committed record of the audit topic, partition by partition, in offset order."""
    records = []
    for value in read_topic(kafka, topic, timeout):
        record = AuditRecord()
        record.ParseFromString(value)
        records.append(record)
    return records
