"""Which offsets a service loop commits, and when those of batches that produced
nothing go on their own."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import TopicPartition

from troupe.service.offsets import DeferredOffsets, next_offsets


@dataclass
class Record:
    topic_name: str
    partition_number: int
    offset_number: int

    def topic(self) -> str:
        return self.topic_name

    def partition(self) -> int:
        return self.partition_number

    def offset(self) -> int:
        return self.offset_number


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def as_dict(offsets: list[TopicPartition]) -> dict[tuple[str, int], int]:
    return {(tp.topic, tp.partition): tp.offset for tp in offsets}


def test_reading_resumes_after_each_partitions_last_record() -> None:
    batch = [Record("a", 0, 5), Record("b", 1, 7), Record("a", 0, 6), Record("a", 1, 2)]

    assert as_dict(next_offsets(batch)) == {("a", 0): 7, ("b", 1): 8, ("a", 1): 3}


def test_a_transaction_carries_the_deferred_offsets_of_other_partitions() -> None:
    # given offsets of batches that produced nothing, on two partitions
    deferred = DeferredOffsets(max_wait=1.0)
    deferred.defer([TopicPartition("a", 0, 10), TopicPartition("b", 0, 4)])

    # when a transaction commits a later offset of one of them
    carried = deferred.along_with([TopicPartition("a", 0, 12)])

    # then it carries its own offset there and the deferred one elsewhere
    assert as_dict(carried) == {("a", 0): 12, ("b", 0): 4}
    # and they stay deferred until the transaction has committed
    assert deferred
    deferred.clear()
    assert not deferred
    assert deferred.along_with([]) == []


def test_deferred_offsets_are_due_when_the_loop_is_idle_or_they_have_waited() -> None:
    # given offsets deferred now
    clock = Clock()
    deferred = DeferredOffsets(max_wait=1.0, clock=clock)
    deferred.defer([TopicPartition("a", 0, 3)])

    # then they wait while the loop is busy, and not once it is idle
    assert not deferred.due(idle=False)
    assert deferred.due(idle=True)

    # when more are deferred later, the wait still counts from the oldest
    clock.now += 0.6
    deferred.defer([TopicPartition("a", 0, 5)])
    clock.now += 0.5
    assert deferred.due(idle=False)


def test_nothing_is_due_when_nothing_is_deferred() -> None:
    assert not DeferredOffsets(max_wait=0.0).due(idle=True)


def test_revoked_partitions_offsets_are_forgotten() -> None:
    # given offsets deferred on two partitions
    deferred = DeferredOffsets(max_wait=1.0)
    deferred.defer([TopicPartition("a", 0, 3), TopicPartition("a", 1, 9)])

    # when one of them is revoked
    deferred.forget([TopicPartition("a", 1)])

    # then only the other is committed
    assert as_dict(deferred.along_with([])) == {("a", 0): 3}
