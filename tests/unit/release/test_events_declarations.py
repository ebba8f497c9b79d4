"""The components' ``events.yaml`` say what their code does (docs/contracts.md).

``troupe release check`` and ``gate`` read only ``<component>/events.yaml``; the
runtime knows the same event types from the service declarations
(``Service.topology()``). These tests keep the two equal, check that every field
a declaration names exists in the message the code reads, and run the release
check over this repository's declarations and contracts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message

from troupe.release.components import DECLARATIONS, Declarations, parse_declarations
from troupe.service import registry
from troupe.service.declaration import Service

from .release_history import Scripted

ROOT = Path(__file__).resolve().parents[3]
SERVICES = registry.names()
# Adapters with declarations: they read topics without a Service declaration.
ADAPTERS = sorted(p.parent.name for p in (ROOT / "adapters").glob(f"*/{DECLARATIONS}"))


def declarations(component: str) -> Declarations:
    path = ROOT / component / DECLARATIONS
    assert path.exists(), f"{component} has no {DECLARATIONS}: the release check cannot see what it exchanges"
    return parse_declarations(path.read_text(), f"{component}/{DECLARATIONS}")


def drift(service: Service[Any], declared: Declarations) -> list[str]:
    """How ``declared`` differs from what ``service``'s runtime produces and consumes
    on event topics (its own commands topic is internal to it: not declared)."""
    where = f"services/{service.name.replace('-', '_')}/{DECLARATIONS}"
    topology = service.topology()
    problems: list[str] = []

    emitted = set(topology.produces.get(service.events_topic, ()))
    entries = [p for p in declared.produces if p.topic == service.events_topic]
    produced = {t for p in entries for t in p.types}
    message = service.entity.DESCRIPTOR.full_name
    problems += [
        f"{where}: the runtime emits {t} on {service.events_topic}, not declared in produces"
        for t in sorted(emitted - produced)
    ]
    # A declared type the code no longer emits would hide a consumer left unserved.
    problems += [
        f"{where}: produces declares {t} on {service.events_topic}, which no command handler emits"
        for t in sorted(produced - emitted)
    ]
    problems += [
        f"{where}: produces {p.topic} as {p.message}, but the entity is {message}"
        for p in entries
        if p.message != message
    ]
    problems += [
        f"{where}: produces {p.topic}, which is not {service.name}'s events topic"
        for p in declared.produces
        if p.topic != service.events_topic
    ]

    reacted = {topic: set(types) for topic, types in topology.consumes.items() if topic != service.commands_topic}
    consumed: dict[str, set[str]] = {}
    for use in declared.consumes:
        consumed.setdefault(use.topic, set()).update(use.types)
    for topic, types in sorted(reacted.items()):
        problems += [
            f"{where}: the runtime consumes {t} from {topic}, not declared in consumes"
            for t in sorted(types - consumed.get(topic, set()))
        ]
    for topic in sorted(service.projections):
        if topic not in consumed:
            problems.append(f"{where}: the runtime projects {topic}, not declared in consumes")
    for topic, types in sorted(consumed.items()):
        if topic in service.projections:
            continue  # a projection's types are the declaration's own choice
        if topic not in reacted:
            problems.append(f"{where}: consumes declares {topic}, which the runtime neither reacts to nor projects")
            continue
        problems += [
            f"{where}: consumes declares {t} from {topic}, which no reaction handles"
            for t in sorted(types - reacted[topic])
        ]
    return problems


def field_problems(where: str, state: type[Message], paths: list[str]) -> list[str]:
    """Dotted paths that do not reach a field of the message ``state``."""
    message = state.DESCRIPTOR
    problems = []
    for path in paths:
        current: Any = message
        for part in path.split("."):
            found = current.fields_by_name.get(part) if current is not None else None
            if found is None:
                problems.append(f"{where}: reads {message.full_name}.{path}, which has no field {part!r}")
                break
            current = found.message_type
    return problems


def states_read(service: Service[Any]) -> dict[str, set[type[Message]]]:
    """The message each consumed topic is decoded as, by topic."""
    states: dict[str, set[type[Message]]] = {}
    for reaction in service.reactions:
        states.setdefault(reaction.topic, set()).add(reaction.state)
    for topic, state in service.projections.items():
        states.setdefault(topic, set()).add(state)
    return states


def producer_messages() -> dict[str, str]:
    """The message each events topic carries, from the services' declarations."""
    return {p.topic: p.message for name in SERVICES for p in declarations(f"services/{name}").produces}


@pytest.mark.parametrize("name", SERVICES)
def test_a_service_declares_every_event_type_its_runtime_produces_and_consumes(name: str) -> None:
    problems = drift(registry.load(name), declarations(f"services/{name}"))

    assert not problems, "events.yaml differs from the service declarations:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("name", SERVICES)
def test_a_service_reads_each_topic_as_its_producer_sends_it_and_declares_real_fields(name: str) -> None:
    service = registry.load(name)
    declared = declarations(f"services/{name}")
    where = f"services/{name}/{DECLARATIONS}"
    sent = producer_messages()
    problems: list[str] = []
    for topic, states in sorted(states_read(service).items()):
        problems += [
            f"{where}: the runtime reads {topic} as {s.DESCRIPTOR.full_name}, "
            f"but its producer declares {sent.get(topic)}"
            for s in states
            if s.DESCRIPTOR.full_name != sent.get(topic)
        ]
    for use in declared.consumes:
        for state in states_read(service).get(use.topic, set()):
            problems += field_problems(where, state, use.fields)

    assert not problems, "\n  ".join(["declared reads do not match the contracts:", *problems])


@pytest.mark.parametrize("name", ADAPTERS)
def test_an_adapter_declares_real_fields_of_event_types_that_are_produced(name: str) -> None:
    where = f"adapters/{name}/{DECLARATIONS}"
    declared = declarations(f"adapters/{name}")
    assert declared.consumes, f"{where} declares nothing it consumes"
    services = [registry.load(service) for service in SERVICES]
    entities = {s.events_topic: s.entity for s in services}
    produced = {(s.events_topic, t) for s in services for t in s.topology().produces.get(s.events_topic, ())}
    problems: list[str] = []
    for use in declared.consumes:
        problems += [
            f"{where}: reads {t} from {use.topic}, which no service emits"
            for t in use.types
            if (use.topic, t) not in produced
        ]
        if use.topic in entities:
            problems += field_problems(where, entities[use.topic], use.fields)

    assert not problems, "\n  ".join(["declared reads do not match the producers:", *problems])


def test_a_missing_declaration_is_named_with_its_service_and_type() -> None:
    service = registry.load("operator")
    declared = declarations("services/operator")
    without = Declarations(
        produces=[
            p.model_copy(update={"types": [t for t in p.types if t != "WrapUpEnded"]}) for p in declared.produces
        ],
        consumes=[u for u in declared.consumes if "OperatorOffered" not in u.types],
    )

    problems = drift(service, without)

    assert problems == [
        "services/operator/events.yaml: the runtime emits WrapUpEnded on operator.events, not declared in produces",
        "services/operator/events.yaml: the runtime consumes OperatorOffered from routing.events,"
        " not declared in consumes",
    ]


# -- the release check over this repository's declarations ----------------------


def scripted_copy(scripted: Scripted) -> list[str]:
    """This repository's contracts, then every component with an events.yaml, one
    commit each (so all are built against the same contracts); the components."""
    for proto in sorted((ROOT / "contracts").rglob("*.proto")):
        scripted.write(str(proto.relative_to(ROOT)), proto.read_text())
    scripted.commit("Contracts of the working tree")
    components = [f"services/{name}" for name in SERVICES] + [f"adapters/{name}" for name in ADAPTERS]
    for component in components:
        scripted.write(f"{component}/{DECLARATIONS}", (ROOT / component / DECLARATIONS).read_text())
        scripted.commit(f"{component}: declarations")
    return components


def test_the_release_check_passes_with_this_repositorys_declarations(scripted: Scripted) -> None:
    components = scripted_copy(scripted)
    assert scripted.release("bump").code == 0

    result = scripted.release("check")

    assert result.code == 0, result.err
    assert f"{len(components)} components work together" in result.out


def test_the_release_check_refuses_a_producer_that_stops_emitting_a_type_read(scripted: Scripted) -> None:
    scripted_copy(scripted)
    routing = "services/routing/events.yaml"
    scripted.write(routing, (ROOT / routing).read_text().replace("      - OfferExpired\n", "", 1))
    scripted.commit("Routing: offers no longer expire")
    assert scripted.release("bump").code == 0

    result = scripted.release("check")

    assert result.code == 1
    for consumer in ("services/interaction", "services/operator"):
        assert f"[consumer-unserved] {consumer}@" in result.err
    assert "reads OfferExpired events from routing.events, which no component in the set produces" in result.err
