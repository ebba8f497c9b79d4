"""Payload evolution through the real broker (docs/contracts.md, "Evolution rules").

A ticket contract evolves the way the rules allow: a field is added, an enum value
is added, a field nobody reads is removed (its name and number reserved). A consumer
built with the old generated code reads the new producer's events, and a consumer
built with the new code reads the old producer's events. The old side runs in its
own process with only the old generated code, as a service of an older release would.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import subprocess
import sys
import uuid
from importlib import resources
from pathlib import Path
from types import ModuleType

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from contracts.events.v1 import envelope_pb2
from troupe.release import contracts
from troupe.settings import KafkaSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
PEER = Path(__file__).with_name("release_evolution_peer.py")
PROTO = "troupe_evolution/v1/ticket.proto"

OLD = """\
syntax = "proto3";
package troupe_evolution.v1;

enum TicketState {
  TICKET_STATE_UNSPECIFIED = 0;
  TICKET_STATE_OPEN = 1;
  TICKET_STATE_RESOLVED = 2;
}

message Ticket {
  string ticket_id = 1;
  string subject = 2;
  TicketState state = 3;
  repeated string tags = 4;
}
"""

NEW = """\
syntax = "proto3";
package troupe_evolution.v1;

enum TicketState {
  TICKET_STATE_UNSPECIFIED = 0;
  TICKET_STATE_OPEN = 1;
  TICKET_STATE_RESOLVED = 2;
  TICKET_STATE_ESCALATED = 3;
}

message Ticket {
  reserved 4;
  reserved "tags";
  string ticket_id = 1;
  string subject = 2;
  TicketState state = 3;
  string assignee = 5;
}
"""


def generate(proto: str, where: Path) -> Path:
    """Writes the proto under ``where/src`` and its Python code under ``where/gen``."""
    from grpc_tools import protoc

    source, generated = where / "src", where / "gen"
    (source / PROTO).parent.mkdir(parents=True)
    (source / PROTO).write_text(proto)
    generated.mkdir()
    well_known = str(resources.files("grpc_tools") / "_proto")
    assert protoc.main(["protoc", f"-I{source}", f"-I{well_known}", f"--python_out={generated}",
                        PROTO]) == 0
    for package in (generated / "troupe_evolution", generated / "troupe_evolution/v1"):
        (package / "__init__.py").touch()
    return generated


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModuleType]:
    """The old generated code (a directory for the old process) and the new module."""
    old = generate(OLD, tmp_path_factory.mktemp("old"))
    new = generate(NEW, tmp_path_factory.mktemp("new"))
    spec = importlib.util.spec_from_file_location(
        "evolution_new_ticket_pb2", new / "troupe_evolution/v1/ticket_pb2.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return old, module


def run_old(old: Path, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(old), str(ROOT)]))
    done = subprocess.run(
        [sys.executable, str(PEER), *args], env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def new_topic(kafka: KafkaSettings) -> str:
    name = f"ticket-{uuid.uuid4().hex[:8]}.events"
    config: dict[str, str | int | float | bool] = dict(kafka.client_config())
    admin = AdminClient(config)
    for future in admin.create_topics([NewTopic(name, 1, 1)]).values():
        future.result(30)
    return name


def test_the_evolution_is_one_the_release_gate_allows(tmp_path: Path) -> None:
    old, new = (tmp_path / "old", tmp_path / "new")
    for module, proto in ((old, OLD), (new, NEW)):
        (module / PROTO).parent.mkdir(parents=True)
        (module / PROTO).write_text(proto)
        (module / "buf.yaml").write_text(contracts.BUF_YAML)

    assert contracts.breaking(new, old) == []


def test_an_old_consumer_reads_a_new_producers_events(
    kafka: KafkaSettings, versions: tuple[Path, ModuleType]
) -> None:
    old, new = versions
    topic = new_topic(kafka)
    ticket = new.Ticket(
        ticket_id="T-1", subject="Printer on fire", state=new.TICKET_STATE_ESCALATED, assignee="ann"
    )
    envelope = envelope_pb2.Envelope(event_id="e-1", type="TicketOpened", entity_id="T-1")
    envelope.state.Pack(ticket)
    producer = Producer(kafka.client_config())
    producer.produce(topic, key=b"T-1", value=envelope.SerializeToString())
    assert producer.flush(30) == 0

    read = json.loads(run_old(old, "consume", kafka.bootstrap_servers, topic))

    assert read["type"] == "TicketOpened"
    # The old code sees the fields it knows; the new enum value arrives as its number.
    assert read["ticket"] == {"ticket_id": "T-1", "subject": "Printer on fire", "state": 3}
    # The field it does not know is kept: storing or forwarding the state loses nothing.
    again = new.Ticket.FromString(base64.b64decode(read["reencoded"]))
    assert again == ticket


def test_a_new_consumer_reads_an_old_producers_events(
    kafka: KafkaSettings, versions: tuple[Path, ModuleType]
) -> None:
    old, new = versions
    topic = new_topic(kafka)
    sent = {"ticket_id": "T-2", "subject": "Refund", "state": "TICKET_STATE_OPEN", "tags": ["vip"]}

    run_old(old, "produce", kafka.bootstrap_servers, topic, json.dumps(sent))

    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"{topic}-new",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    try:
        record = None
        for _ in range(120):
            record = consumer.poll(0.5)
            if record is not None and not record.error():
                break
        assert record is not None
        assert not record.error()
        value = record.value()
        assert value is not None
        envelope = envelope_pb2.Envelope.FromString(value)
    finally:
        consumer.close()
    ticket = new.Ticket()
    assert envelope.state.Unpack(ticket)
    assert (ticket.ticket_id, ticket.subject) == ("T-2", "Refund")
    assert ticket.state == new.TICKET_STATE_OPEN
    assert ticket.assignee == ""  # added after the producer was built: the default
    # The removed field is reserved, so nothing reads it by mistake; its bytes are kept.
    assert b"vip" in ticket.SerializeToString()
