"""Calls through the whole cascade: webhook adapter in → InteractionAssigned out.

Starts a local broker (or uses --bootstrap), the six services in-process, the
webhook adapter over HTTP, operators at three sites who answer and hang up as
soon as a call is theirs, then posts calls at a fixed rate (open loop) and
reports the calls assigned per second and the latency from the adapter's request
to the assignment event.

    .venv/bin/python -m bench.cascade.bench_cascade --rate 50 --seconds 20
    .venv/bin/python -m bench.cascade.bench_cascade --rate 250 --seconds 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from adapters.calls import interaction_id
from adapters.serving import BackgroundServer
from adapters.telephony_webhook.app import create_app
from contracts.events.v1 import envelope_pb2
from contracts.interaction.v1 import interaction_pb2 as interaction_pb
from contracts.operator.v1 import operator_pb2 as operator_pb
from services.customer.app import customer
from services.interaction.app import interaction
from services.notification.app import notification
from services.operator import service as operator_rules
from services.operator.app import operator
from services.routing.app import routing
from services.ticket.app import ticket
from troupe.bus import clients
from troupe.bus.topics import ensure_topics
from troupe.kafka.local import LocalCluster
from troupe.service import records
from troupe.service.declaration import Command, Service
from troupe.service.runtime import Runtime, RuntimeOptions
from troupe.service.sender import CommandSender
from troupe.settings import KafkaSettings

SITES = ("msk", "spb", "ekb")


class Desks:
    """Operators who answer and hang up as soon as a call is assigned to them;
    records when each assignment was seen."""

    def __init__(self, kafka: KafkaSettings, sender: CommandSender) -> None:
        self.kafka = kafka
        self.sender = sender
        self.assigned: dict[str, float] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.pool = ThreadPoolExecutor(16)

    def run(self) -> None:
        consumer = clients.consumer(
            self.kafka,
            group_id=f"bench-desks-{uuid.uuid4().hex[:6]}",
            **{"auto.offset.reset": "latest"},
        )
        consumer.subscribe(["interaction.events"])
        while not self.stopping.is_set():
            for message in consumer.consume(1000, 0.05):
                if message.error() is not None:
                    continue
                event = envelope_pb2.Envelope.FromString(message.value() or b"")
                if event.type == "InteractionAssigned":
                    self.assigned.setdefault(event.entity_id, time.perf_counter())
                    self.pool.submit(self.hang_up, event)
        consumer.close()

    def hang_up(self, event: envelope_pb2.Envelope) -> None:
        call = interaction_pb.Interaction.FromString(event.state.value)
        actor = records.system("bench")
        for payload in (
            interaction_pb.AnswerInteractionRequest(
                interaction_id=call.interaction_id, operator_id=call.operator_id
            ),
            interaction_pb.EndInteractionRequest(interaction_id=call.interaction_id),
        ):
            self.sender.send(Command(call.interaction_id, payload), actor=actor)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", default="")
    parser.add_argument("--rate", type=float, default=50, help="calls per second")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--operators-per-site", type=int, default=60)
    parser.add_argument("--broker-port", type=int, default=47192)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-cascade-"))
    cluster = None
    if args.bootstrap:
        kafka = KafkaSettings(bootstrap_servers=args.bootstrap)
    else:
        cluster = LocalCluster(
            work / "kafka", brokers=1, base_port=args.broker_port, cache_dir=Path(".cache")
        )
        cluster.start(timeout=120)
        kafka = KafkaSettings(bootstrap_servers=cluster.bootstrap_servers)
    operator_rules.POLICY.wrap_up = timedelta(0)
    services: list[Service[Any]] = [customer, operator, interaction, routing, ticket, notification]
    ensure_topics(kafka, [f"{s.name}.{k}" for s in services for k in ("events", "commands", "dlq")])
    time.sleep(2)
    runtimes: list[Runtime[Any]] = [
        Runtime(
            s, kafka, RuntimeOptions(state_dir=work, instance="bench", grpc_address=None)
        ).start()
        for s in services
    ]
    sender = CommandSender(kafka, "bench")
    desks = Desks(kafka, sender)
    desks.thread.start()
    operators = runtimes[1]
    for site in SITES:
        for n in range(args.operators_per_site):
            operator_id = f"{site}-{n}"
            operators.submit(
                operator_pb.RegisterOperatorRequest(
                    operator_id=operator_id, name=operator_id, site=site, skills=["orders"]
                ),
                actor=records.system("bench"),
            )
            operators.submit(
                operator_pb.SetPresenceRequest(
                    operator_id=operator_id, presence=operator_pb.PRESENCE_AVAILABLE
                ),
                actor=records.system("bench"),
            )
    server = BackgroundServer(create_app(sender)).start()
    sent: dict[str, float] = {}
    total = int(args.rate * args.seconds)
    print(f"warming up, then {total} calls at {args.rate}/s")

    def post(client: httpx.Client, number: int) -> None:
        call_id = uuid.uuid4().hex
        sent[interaction_id("webhook", call_id)] = time.perf_counter()
        client.post(
            f"/sites/{SITES[number % 3]}/events",
            json={
                "id": call_id,
                "type": "call.started",
                "occurred_at": datetime.now(UTC).isoformat(),
                "call": {"id": call_id, "from": f"+7916{number:07d}", "line": "orders"},
            },
        )

    with httpx.Client(base_url=server.url, timeout=30) as client, ThreadPoolExecutor(64) as pool:
        started = time.perf_counter()
        for number in range(total):
            due = started + number / args.rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            pool.submit(post, client, number)
    deadline = time.monotonic() + 60
    while len([i for i in sent if i in desks.assigned]) < total and time.monotonic() < deadline:
        time.sleep(0.1)
    done = [i for i in sent if i in desks.assigned]
    latencies = [(desks.assigned[i] - sent[i]) * 1000 for i in done]
    span = max(desks.assigned[i] for i in done) - min(sent.values())
    print(f"calls sent {total}, assigned {len(done)}")
    print(f"sustained: {len(done) / span:.1f} calls/s over {span:.1f}s (offered {args.rate}/s)")
    print(
        f"adapter in -> assignment out: p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms"
    )
    desks.stopping.set()
    server.stop()
    sender.close()
    for runtime in runtimes:
        runtime.stop()
    if cluster:
        cluster.stop()


if __name__ == "__main__":
    main()
