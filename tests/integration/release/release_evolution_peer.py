"""One side of the payload-evolution test, run as its own process with exactly one
version of the generated ticket contract on its PYTHONPATH, like a service built
at another commit.

    python release_evolution_peer.py produce <bootstrap> <topic> <ticket as JSON>
    python release_evolution_peer.py consume <bootstrap> <topic>

``consume`` prints the first ticket event of the topic as JSON: the event type,
the ticket as this version reads it, and the ticket re-encoded by this version.
"""

from __future__ import annotations

import base64
import json
import sys
import uuid

from confluent_kafka import Consumer, Producer
from google.protobuf import json_format
from troupe_evolution.v1 import ticket_pb2  # type: ignore[import-not-found]

from contracts.events.v1 import envelope_pb2


def produce(bootstrap: str, topic: str, ticket_json: str) -> None:
    ticket = json_format.ParseDict(json.loads(ticket_json), ticket_pb2.Ticket())
    envelope = envelope_pb2.Envelope(
        event_id=str(uuid.uuid4()),
        type="TicketOpened",
        entity_id=ticket.ticket_id,
        entity_version=1,
        source="ticket",
    )
    envelope.state.Pack(ticket)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    producer.produce(topic, key=ticket.ticket_id.encode(), value=envelope.SerializeToString())
    if producer.flush(30) != 0:
        raise SystemExit("the event was not delivered")


def consume(bootstrap: str, topic: str) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    try:
        for _ in range(120):
            record = consumer.poll(0.5)
            value = None if record is None or record.error() else record.value()
            if value is None:
                continue
            envelope = envelope_pb2.Envelope.FromString(value)
            ticket = ticket_pb2.Ticket()
            if not envelope.state.Unpack(ticket):
                raise SystemExit(f"state is not a Ticket: {envelope.state.type_url}")
            print(
                json.dumps(
                    {
                        "type": envelope.type,
                        "ticket": json_format.MessageToDict(
                            ticket, preserving_proto_field_name=True
                        ),
                        "reencoded": base64.b64encode(ticket.SerializeToString()).decode(),
                    }
                )
            )
            return
    finally:
        consumer.close()
    raise SystemExit(f"no event on {topic} within 60 s")


if __name__ == "__main__":
    if sys.argv[1] == "produce":
        produce(*sys.argv[2:5])
    else:
        consume(*sys.argv[2:4])
