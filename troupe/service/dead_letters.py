"""Reading a service's DLQ and sending records back for another try."""

from __future__ import annotations

from collections.abc import Iterator

from confluent_kafka import TopicPartition

from contracts.events.v1 import envelope_pb2
from troupe.bus import clients
from troupe.bus.topics import dlq_topic
from troupe.settings import KafkaSettings


def read(kafka: KafkaSettings, service: str, timeout: float = 10.0) -> Iterator[envelope_pb2.DeadLetter]:
    """Every record of ``<service>.dlq`` up to its current end, oldest first per partition."""
    topic = dlq_topic(service)
    consumer = clients.consumer(kafka, group_id=None)
    try:
        partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        ends = {p: clients.watermarks(consumer, TopicPartition(topic, p))[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end > 0])
        remaining = {p for p, end in ends.items() if end > 0}
        while remaining:
            batch = consumer.consume(1000, timeout)
            if not batch:
                raise TimeoutError(f"{topic} did not deliver up to its end in {timeout}s")
            for message in batch:
                if message.error() is not None:
                    continue
                yield envelope_pb2.DeadLetter.FromString(message.value() or b"")
                partition, offset = message.partition(), message.offset()
                if partition is not None and offset is not None and offset + 1 >= ends[partition]:
                    remaining.discard(partition)
            for tp in consumer.position([TopicPartition(topic, p) for p in list(remaining)]):
                if tp.offset >= ends[tp.partition]:
                    remaining.discard(tp.partition)
    finally:
        consumer.close()


def retry(kafka: KafkaSettings, letters: list[envelope_pb2.DeadLetter]) -> int:
    """Sends each record back to the topic it came from, with its key and headers.
    A command that was applied meanwhile is recognized by its id and not applied twice."""
    producer = clients.producer(kafka)
    for letter in letters:
        producer.produce(
            letter.topic,
            letter.value,
            letter.key or None,
            headers=[(h.key, h.value) for h in letter.headers],
        )
    if producer.flush(30):
        raise RuntimeError("some records were not sent back in 30 s")
    return len(letters)
