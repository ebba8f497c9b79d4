"""What a handler sees of the world, for unit tests of the rules: the entities of
the topics a service materializes (in memory) and the contexts handlers get."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, cast

from google.protobuf.message import Message

from contracts.events.v1 import envelope_pb2
from troupe import Command, CommandContext, EventContext, Service
from troupe.service.declaration import Cause, Lookup, TickContext
from troupe.state.views import Versioned, Views

Lookups = dict[str, Lookup]


class World:
    """In-memory stand-in for the local store's views (same get/scan/find)."""

    def __init__(self, lookups: dict[str, Lookups] | None = None) -> None:
        self.topics: dict[str, dict[str, Versioned[Any]]] = {}
        self.lookups = lookups or {}
        # (topic, entity id) -> (the version held, until when in monotonic seconds)
        self.held: dict[tuple[str, str], tuple[int, float]] = {}

    @classmethod
    def of(cls, service: Service[Any]) -> World:
        """A world with the look-ups ``service`` declares (its own and its projections')."""
        return cls({topic: keys.lookups for topic, keys in service.lookup_keys_by_topic().items()})

    def given(self, topic: str, entity_id: str, state: Message, version: int = 1) -> World:
        self.topics.setdefault(topic, {})[entity_id] = Versioned(state, version)
        return self

    def get(self, topic: str, entity_id: str) -> Versioned[Any] | None:
        found = self.topics.get(topic, {}).get(entity_id)
        if found is None:
            return None
        copy = type(found.state)()
        copy.CopyFrom(found.state)
        return Versioned(copy, found.version)

    def scan(self, topic: str) -> list[Versioned[Any]]:
        return [
            entity
            for entity_id in sorted(self.topics.get(topic, {}))
            if (entity := self.get(topic, entity_id)) is not None
        ]

    def find(self, topic: str, lookup: str, value: str) -> list[Versioned[Any]]:
        return found(self.scan(topic), self.lookups[topic][lookup], value)

    def walk(
        self, topic: str, lookup: str, value: str, unless: tuple[str, str] | None = None
    ) -> Iterator[Versioned[Any]]:
        left_out: set[str] = set()
        if unless is not None:
            other, name = unless
            values = self.lookups[other][name].values
            left_out = {value for entity in self.scan(other) for value in values(entity.state)}
        entities = [
            entity
            for entity_id in sorted(self.topics.get(topic, {}))
            if entity_id not in left_out
            and (entity := self.get(topic, entity_id)) is not None
            and not self._is_held(topic, entity_id, entity.version)
        ]
        return iter(found(entities, self.lookups[topic][lookup], value))

    def hold(self, topic: str, entity_id: str, version: int, seconds: float) -> None:
        self.held[(topic, entity_id)] = (version, time.monotonic() + seconds)

    def _is_held(self, topic: str, entity_id: str, version: int) -> bool:
        held = self.held.get((topic, entity_id))
        return held is not None and held[0] == version and time.monotonic() < held[1]

    @property
    def views(self) -> Views:
        return cast(Views, self)


def cause() -> Cause:
    actor = envelope_pb2.Actor(kind=envelope_pb2.ACTOR_KIND_USER, id="test", name="test")
    return Cause("record-1", "correlation-1", actor, "entity-1")


def command_context(world: World | None = None, version: int = 0) -> CommandContext:
    return CommandContext(cause(), "Test", version, (world or World()).views)


def event_context(event_type: str, world: World | None = None, version: int = 1) -> EventContext:
    """The context of an event of type ``event_type`` at entity version ``version``."""
    return EventContext(cause(), event_type, "test", version, (world or World()).views)


def tick_context(
    world: World, owned: list[Versioned[Any]], now: datetime | None = None, topic: str = ""
) -> TickContext:
    """A tick's context: ``owned`` are the entities of ``topic`` this instance owns."""

    def owned_entities(lookup: str | None = None, value: str = "") -> list[Versioned[Any]]:
        if lookup is None:
            return owned
        return found(owned, world.lookups[topic][lookup], value)

    return TickContext(now or datetime.now(UTC), world.views, owned_entities)


def found(entities: Iterable[Versioned[Any]], lookup: Lookup, value: str) -> list[Versioned[Any]]:
    """The entities with ``value`` for ``lookup``, in its order, as the store gives them."""
    matching = [entity for entity in entities if value in lookup.values(entity.state)]
    if lookup.order is None:
        return matching
    order = lookup.order
    return sorted(matching, key=lambda entity: order(entity.state))


def sent(result: Iterable[Command] | Command | None) -> list[Command]:
    """The commands a reaction or a tick sent, as a list."""
    if result is None:
        return []
    if isinstance(result, Command):
        return [result]
    return list(result)
