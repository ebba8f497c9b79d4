"""The consumed offsets a service loop commits: those of each batch, and those
of batches that produced nothing, which wait for a transaction to carry them.

A transaction of offsets alone costs the broker as much as one with records, and
consuming again records that produced nothing changes nothing: so their offsets
go with the next transaction, or on their own once the loop is idle or they have
waited long enough.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import TopicPartition


def next_offsets(batch: Iterable[Any]) -> list[TopicPartition]:
    """Where reading resumes after ``batch`` (consumed records), per partition."""
    last: dict[tuple[str, int], int] = {}
    for message in batch:
        last[(message.topic(), message.partition())] = message.offset()
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]


class DeferredOffsets:
    """Offsets of batches that produced nothing, (topic, partition) -> next offset."""

    def __init__(self, max_wait: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_wait = max_wait
        self._clock = clock
        self._offsets: dict[tuple[str, int], int] = {}
        self._since = 0.0  # when the oldest of them was deferred

    def __bool__(self) -> bool:
        return bool(self._offsets)

    def defer(self, offsets: Iterable[TopicPartition]) -> None:
        if not self._offsets:
            self._since = self._clock()
        for tp in offsets:
            self._offsets[(tp.topic, tp.partition)] = tp.offset

    def along_with(self, offsets: list[TopicPartition]) -> list[TopicPartition]:
        """``offsets`` and the deferred ones of other partitions: what a transaction
        commits (it keeps them deferred until ``clear``, in case it fails)."""
        if not self._offsets:
            return offsets
        merged = {**self._offsets, **{(tp.topic, tp.partition): tp.offset for tp in offsets}}
        return [TopicPartition(topic, partition, offset) for (topic, partition), offset in merged.items()]

    def clear(self) -> None:
        self._offsets = {}

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Drops revoked partitions' offsets: their next owner commits them, and
        committed from here they could move it back."""
        for tp in partitions:
            self._offsets.pop((tp.topic, tp.partition), None)

    def due(self, idle: bool) -> bool:
        """Whether to commit them on their own: the loop is idle, or they have waited ``max_wait``."""
        return bool(self._offsets) and (idle or self._clock() - self._since >= self.max_wait)
