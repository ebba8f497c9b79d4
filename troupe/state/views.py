"""Read-only views of the local store for handlers and servicers: entities as
protobuf messages with their versions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from troupe.state.store import Store

StateT = TypeVar("StateT", bound=Message)


@dataclass(frozen=True)
class Versioned(Generic[StateT]):
    state: StateT
    version: int


class Views:
    """The entities of the topics a service materializes (its own and projections)."""

    def __init__(self, store: Store, types: dict[str, type[Message]]) -> None:
        self.store = store
        self.types = types

    def _type(self, topic: str) -> type[Message]:
        try:
            return self.types[topic]
        except KeyError:
            raise KeyError(f"{topic} is not materialized here; declare it with project()") from None

    def get(self, topic: str, entity_id: str) -> Versioned[Any] | None:
        message = self._type(topic)
        stored = self.store.get(topic, entity_id)
        return Versioned(message.FromString(stored.state), stored.version) if stored else None

    def scan(self, topic: str) -> list[Versioned[Any]]:
        message = self._type(topic)
        return [Versioned(message.FromString(e.state), e.version) for e in self.store.scan(topic)]

    def find(
        self, topic: str, lookup: str, value: str, partitions: set[int] | frozenset[int] | None = None
    ) -> list[Versioned[Any]]:
        """The entities whose look-up ``lookup`` has ``value`` (in ``partitions`` if
        given), in the look-up's order (by id if it has none)."""
        message = self._type(topic)
        found = self.store.find_entities(topic, lookup, value, partitions)
        return [Versioned(message.FromString(e.state), e.version) for e in found]

    def walk(
        self, topic: str, lookup: str, value: str, unless: tuple[str, str] | None = None
    ) -> Iterator[Versioned[Any]]:
        """``find`` one entity at a time, in the look-up's order: to take the first
        that fits without reading (and decoding) all of them. ``unless`` names a
        look-up of another materialized topic, (topic, name): entities whose id is
        one of its values are left out (by the store, without decoding them), and
        so are the entities this thread holds (``hold``)."""
        message = self._type(topic)
        if unless is not None:
            self._type(unless[0])
        for e in self.store.walk_entities(topic, lookup, value, unless=unless):
            yield Versioned(message.FromString(e.state), e.version)

    def hold(self, topic: str, entity_id: str, version: int, seconds: float) -> None:
        """Leaves the entity out of this thread's walks while it is at ``version``,
        for at most ``seconds``: a choice the store does not show yet."""
        self._type(topic)
        self.store.hold(topic, entity_id, version, seconds)

    def in_partitions(self, topic: str, partitions: set[int]) -> list[Versioned[Any]]:
        message = self._type(topic)
        return [Versioned(message.FromString(e.state), e.version) for e in self.store.scan(topic, partitions)]
