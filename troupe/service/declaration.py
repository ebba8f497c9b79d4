"""How a service is declared: its entity, its command handlers, its reactions to
other services' events, the projections it keeps and the gRPC API it serves.

Everything is checked when it is declared, so a wrong declaration fails at import
time, not at the first message; and the declarations are data (`Topology`) from
which the choreography map is printed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

from contracts.events.v1 import envelope_pb2
from troupe.bus.topics import commands_topic, events_topic
from troupe.state.store import LookupKey
from troupe.state.views import Versioned, Views

EntityT = TypeVar("EntityT", bound=Message)
PayloadT = TypeVar("PayloadT", bound=Message)
StateT = TypeVar("StateT", bound=Message)

SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
CONTRACT_PACKAGE = re.compile(r"^contracts\.([a-z][a-z0-9_]*)\.v\d+$")


class Unchanged:
    """A command handler's answer when the command asks for nothing new (it was
    already done, or overtaken): no event, no DLQ record."""


UNCHANGED = Unchanged()


class Rejected(Exception):
    """A business rule refuses a command. Not retried: the same command would be
    refused again. The caller gets the message; the record goes to the DLQ."""


@dataclass(frozen=True, slots=True)
class Emit:
    """A handler's decision: the entity's new state, announced as ``type``."""

    type: str
    state: Message


@dataclass(frozen=True, slots=True)
class Command:
    """A request to change an entity of the service whose contracts define ``payload``."""

    entity_id: str
    payload: Message
    expected_version: int | None = None
    # A stable id makes sending the same command twice change the entity once
    # (e.g. derived from the external event or the state it answers).
    command_id: str | None = None

    @property
    def service(self) -> str:
        return service_of(self.payload.DESCRIPTOR.full_name)

    @property
    def type(self) -> str:
        return command_type(type(self.payload))


# Cause and the handlers' contexts are built for every record: immutable named
# tuples, which cost a quarter of what a frozen dataclass costs to build.


class Cause(NamedTuple):
    """Where a change comes from: carried into every record it leads to."""

    record_id: str
    correlation_id: str
    actor: envelope_pb2.Actor
    entity_id: str


class CommandContext(NamedTuple):
    cause: Cause
    command_type: str
    # Version of the entity before this command; 0 if it does not exist yet.
    version: int
    views: Views


class EventContext(NamedTuple):
    cause: Cause
    event_type: str
    source: str
    entity_version: int
    views: Views


@dataclass(frozen=True)
class Lookup:
    """A secondary key to find entities by: ``values`` gives an entity's values for
    it (e.g. its phone numbers); ``order``, if given, ranks the entities that share
    a value (e.g. by how long they have waited), so that the first of them is read
    without reading them all (``Views.walk``)."""

    values: Callable[[Any], Iterable[str]]
    order: Callable[[Any], int] | None = None


@dataclass(frozen=True)
class LookupKeys:
    """The look-ups declared for one topic's entities, and how to compute an
    entity's (name, value, rank) keys from its state."""

    message: type[Message]
    lookups: dict[str, Lookup]

    @property
    def names(self) -> list[str]:
        """The look-ups' names, marked if ordered: a store indexed for other names
        or orders is indexed again."""
        return sorted(name if lookup.order is None else f"{name} (ordered)" for name, lookup in self.lookups.items())

    def __call__(self, state: bytes) -> tuple[LookupKey, ...]:
        entity = self.message.FromString(state)
        keys: list[LookupKey] = []
        for name, lookup in self.lookups.items():
            rank = 0 if lookup.order is None else lookup.order(entity)
            keys += ((name, value, rank) for value in lookup.values(entity))
        return tuple(keys)


class OwnedEntities(Protocol):
    def __call__(self, lookup: str | None = None, value: str = "") -> list[Versioned[Any]]: ...


@dataclass(frozen=True, slots=True)
class TickContext:
    now: datetime
    views: Views
    # This service's entities in the partitions this instance owns right now;
    # with a look-up, only those with that value of it: owned("state", "waiting").
    owned: OwnedEntities


def service_of(message_full_name: str) -> str:
    """The service that owns a contract message: ``contracts.<service>.v1.X``."""
    package = message_full_name.rsplit(".", 1)[0]
    match = CONTRACT_PACKAGE.match(package)
    if not match:
        raise ValueError(f"{message_full_name} is not in a service contract package contracts.<service>.vN")
    return match.group(1).replace("_", "-")


def command_type(payload: type[Message]) -> str:
    name = payload.DESCRIPTOR.name
    return name.removesuffix("Request")


CommandHandler = Callable[[Any, Any, CommandContext], Message | Emit | Unchanged]
ReactionHandler = Callable[[Any, EventContext], Iterable[Command] | Command | None]
TickHandler = Callable[[TickContext], Iterable[Command] | Command | None]


@dataclass(frozen=True)
class CommandDeclaration:
    payload: type[Message]
    emits: tuple[str, ...]
    handler: CommandHandler
    # False: the command may wait a moment for urgent records to share its transaction.
    urgent: bool = True
    type: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", command_type(self.payload))


@dataclass(frozen=True)
class ReactionDeclaration:
    topic: str
    event_types: tuple[str, ...]
    state: type[Message]
    sends: tuple[type[Message], ...]
    handler: ReactionHandler
    # Only read this topic while every listed topic has no lag.
    after: tuple[str, ...] = ()
    # False: the events may wait a moment for urgent records to share their transaction.
    urgent: bool = True


@dataclass(frozen=True)
class TickDeclaration:
    seconds: float
    handler: TickHandler
    sends: tuple[type[Message], ...]


@dataclass(frozen=True)
class GrpcDeclaration:
    descriptor: ServiceDescriptor
    add_to_server: Callable[[Any, Any], None]
    servicer: Callable[[Any], Any]


@dataclass(frozen=True)
class Topology:
    """The service's place in the choreography, derived from its declarations."""

    service: str
    consumes: dict[str, tuple[str, ...]]
    produces: dict[str, tuple[str, ...]]
    projections: tuple[str, ...]
    # Of the consumed record types, those declared not urgent.
    not_urgent: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"service {self.service}"]
        for topic, types in sorted(self.consumes.items()):
            out.append(f"  consumes {topic}: {', '.join(types)}")
        for topic, types in sorted(self.not_urgent.items()):
            out.append(f"  not urgent from {topic}: {', '.join(types)}")
        for topic, types in sorted(self.produces.items()):
            out.append(f"  produces {topic}: {', '.join(types)}")
        for topic in self.projections:
            out.append(f"  projects {topic}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass
class Service(Generic[EntityT]):
    """A service: owns ``<name>.events`` (its entities' changes) and ``<name>.commands``.

    ``entity`` is the message of its entities' full state; ``id_field`` names the
    field that every command payload carries the entity id in.
    """

    name: str
    entity: type[EntityT]
    id_field: str
    commands: dict[str, CommandDeclaration] = field(default_factory=dict)
    reactions: list[ReactionDeclaration] = field(default_factory=list)
    projections: dict[str, type[Message]] = field(default_factory=dict)
    projection_lookups: dict[str, dict[str, Lookup]] = field(default_factory=dict)
    apis: list[GrpcDeclaration] = field(default_factory=list)
    lookups: dict[str, Lookup] = field(default_factory=dict)
    ticks: list[TickDeclaration] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not SERVICE_NAME.match(self.name):
            raise ValueError(f"service name {self.name!r} must match {SERVICE_NAME.pattern}")
        if service_of(self.entity.DESCRIPTOR.full_name) != self.name:
            raise ValueError(f"entity {self.entity.DESCRIPTOR.full_name} is not in contracts.{self.name}")

    # Cached: asked for every record the service handles.
    @functools.cached_property
    def events_topic(self) -> str:
        return events_topic(self.name)

    @functools.cached_property
    def commands_topic(self) -> str:
        return commands_topic(self.name)

    def command(
        self, payload: type[PayloadT], *, emits: str | tuple[str, ...], urgent: bool = True
    ) -> Callable[[Callable[[EntityT | None, PayloadT, CommandContext], EntityT | Emit | Unchanged]], Any]:
        """Declares the handler of one command: (current state or None, payload,
        context) → the new state (announced as ``emits``), an ``Emit``, or
        ``UNCHANGED``; or it raises ``Rejected``.

        ``urgent=False``: the command may wait a moment (``RuntimeOptions.non_urgent_wait``)
        for an urgent record to share its transaction, instead of taking one of its own."""
        if service_of(payload.DESCRIPTOR.full_name) != self.name:
            raise ValueError(f"{payload.DESCRIPTOR.full_name} is not a command of {self.name}")
        if self.id_field not in payload.DESCRIPTOR.fields_by_name:
            raise ValueError(f"{payload.DESCRIPTOR.full_name} has no field {self.id_field!r}")
        full_name = payload.DESCRIPTOR.full_name
        if full_name in self.commands:
            raise ValueError(f"{full_name} already has a handler in {self.name}")
        emitted = (emits,) if isinstance(emits, str) else tuple(emits)
        if not emitted:
            raise ValueError(f"the handler of {full_name} must declare the event types it emits")

        def register(handler: Any) -> Any:
            self.commands[full_name] = CommandDeclaration(payload, emitted, handler, urgent)
            return handler

        return register

    def on(
        self,
        topic: str,
        *event_types: str,
        state: type[StateT],
        sends: tuple[type[Message], ...] = (),
        after: tuple[str, ...] = (),
        urgent: bool = True,
    ) -> Callable[[Callable[[StateT, EventContext], Any]], Any]:
        """Declares a reaction to other services' events: (the entity's new state,
        context) → the commands it sends (each of a type listed in ``sends``).

        ``after`` makes the topic low priority: it is read only while the listed
        topics have no lag (e.g. a bulk replay waits for live traffic).
        ``urgent=False``: the events may wait a moment for an urgent record to share
        their transaction (as for commands)."""
        if topic == self.commands_topic:
            raise ValueError(f"{self.name} cannot react to its own commands topic {topic}")
        if not event_types:
            raise ValueError(f"a reaction to {topic} must name the event types it handles")
        for reaction in self.reactions:
            if reaction.topic == topic and (both := set(reaction.event_types) & set(event_types)):
                raise ValueError(f"{self.name} already reacts to {', '.join(sorted(both))} of {topic}")
        for payload in sends:
            service_of(payload.DESCRIPTOR.full_name)  # fails for a non-contract message

        def register(handler: Any) -> Any:
            self.reactions.append(
                ReactionDeclaration(topic, tuple(event_types), state, tuple(sends), handler, tuple(after), urgent)
            )
            return handler

        return register

    def every(self, seconds: float, *, sends: tuple[type[Message], ...]) -> Callable[[TickHandler], TickHandler]:
        """Declares a periodic check (timeouts, reminders): (context) → commands.
        It runs on every instance over the entities that instance owns."""
        if seconds <= 0:
            raise ValueError("a tick needs a positive period")
        for payload in sends:
            service_of(payload.DESCRIPTOR.full_name)

        def register(handler: TickHandler) -> TickHandler:
            self.ticks.append(TickDeclaration(seconds, handler, tuple(sends)))
            return handler

        return register

    def view_types(self) -> dict[str, type[Message]]:
        """Message type of every topic this service materializes."""
        return {self.events_topic: self.entity, **self.projections}

    def lookup(
        self, name: str, order: Callable[[EntityT], int] | None = None
    ) -> Callable[[Callable[[EntityT], Iterable[str]]], Any]:
        """Declares a secondary key to find entities by: the function gives an
        entity's values for it (e.g. its phone numbers); ``order`` ranks the
        entities that share a value (``Lookup``)."""
        if name in self.lookups:
            raise ValueError(f"lookup {name!r} is already declared in {self.name}")

        def register(values: Callable[[EntityT], Iterable[str]]) -> Any:
            self.lookups[name] = Lookup(values, order)
            return values

        return register

    def lookup_keys_for(self, topic: str) -> LookupKeys | None:
        """The look-ups of ``topic`` (its own or a projected one); None if it declares none."""
        message: type[Message] = self.entity
        lookups = dict(self.lookups)
        if topic != self.events_topic:
            message, lookups = self.projections[topic], self.projection_lookups.get(topic, {})
        return LookupKeys(message, lookups) if lookups else None

    def lookup_keys_by_topic(self) -> dict[str, LookupKeys]:
        """``lookup_keys_for`` of every materialized topic that declares look-ups."""
        found = {topic: self.lookup_keys_for(topic) for topic in self.view_types()}
        return {topic: keys for topic, keys in found.items() if keys is not None}

    def project(
        self,
        topic: str,
        state: type[Message],
        lookups: dict[str, Lookup | Callable[[Any], Iterable[str]]] | None = None,
    ) -> None:
        """Keeps a local, read-only copy of another service's entities, findable
        by the ``lookups`` given (name → the entity's values for it, or a ``Lookup``)."""
        if topic == self.events_topic:
            raise ValueError(f"{self.name} always materializes its own topic")
        self.projections[topic] = state
        if lookups:
            self.projection_lookups[topic] = {
                name: lookup if isinstance(lookup, Lookup) else Lookup(lookup) for name, lookup in lookups.items()
            }

    def serve(
        self,
        descriptor: ServiceDescriptor,
        add_to_server: Callable[[Any, Any], None],
        servicer: Callable[[Any], Any],
    ) -> None:
        """Serves a gRPC API; ``servicer`` is built with the running service's runtime."""
        self.apis.append(GrpcDeclaration(descriptor, add_to_server, servicer))

    def topology(self) -> Topology:
        consumes: dict[str, tuple[str, ...]] = {}
        produces: dict[str, tuple[str, ...]] = {}
        not_urgent: dict[str, set[str]] = {}
        if self.commands:
            consumes[self.commands_topic] = tuple(sorted(d.type for d in self.commands.values()))
            not_urgent[self.commands_topic] = {d.type for d in self.commands.values() if not d.urgent}
            produces[self.events_topic] = tuple(sorted({t for d in self.commands.values() for t in d.emits}))
        senders: list[tuple[type[Message], ...]] = [t.sends for t in self.ticks]
        for reaction in self.reactions:
            consumes[reaction.topic] = tuple(sorted(set(consumes.get(reaction.topic, ())) | set(reaction.event_types)))
            if not reaction.urgent:
                not_urgent.setdefault(reaction.topic, set()).update(reaction.event_types)
            senders.append(reaction.sends)
        for sends in senders:
            for payload in sends:
                topic = commands_topic(service_of(payload.DESCRIPTOR.full_name))
                produces[topic] = tuple(sorted(set(produces.get(topic, ())) | {command_type(payload)}))
        return Topology(
            self.name,
            consumes,
            produces,
            tuple(sorted(self.projections)),
            {topic: tuple(sorted(types)) for topic, types in not_urgent.items() if types},
        )
