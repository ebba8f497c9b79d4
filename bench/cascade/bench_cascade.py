"""Calls through the whole cascade: webhook adapter in → InteractionAssigned out.

Starts a local broker (or uses --bootstrap), the six services, the
webhook adapter over HTTP, operators at three sites who answer and hang up as
soon as a call is theirs, then posts calls at a fixed rate (open loop) and
reports the calls assigned per second and the latency from the adapter's request
to the assignment event.

    .venv/bin/python -m bench.cascade.bench_cascade --rate 50 --seconds 20
    .venv/bin/python -m bench.cascade.bench_cascade --rate 250 --seconds 20

Each service runs as its own process (``python -m services.<name>``, as ``troupe
up`` and production run them, and so does the webhook adapter; ``--in-process`` puts
all six services and the adapter in this process).
Before measuring, 30 calls warm every service on the path up, then calls at the
measured rate for ``--warm-up-seconds`` (60 by default), and on, 10 s at a time
with a quiet second after each (as between measured spans), until the broker's JIT
compiler threads have settled (under 5 % of a core for 10 s; at most
``--max-warm-up-seconds``), as in a broker that has been running: profiled after a
fixed minute, the compiler still took a quarter of the broker's CPU. Besides the
end-to-end figures it prints the p50 and p99 time from the adapter's request to
each step of the cascade (by the events' own clocks), which shows where time (and
the tail) goes, and the whole machine's CPU over the measured span, stolen time
included: a host busy with other machines slows every figure.
``--alternate-broker-config KEY=VALUE`` (with ``--repeat``) sets a broker setting
that Kafka can change while running in half the spans (2, 3, 6, 7, ...), so that the
setting and the broker's own are compared in one run, on one warmed-up layer.
``--count-broker-requests`` prints each span's broker requests per call, by kind and
by client, from the broker's request log. ``--busy-neighbour-cores N`` keeps N cores
busy in other processes all through the run, as another tenant of the host would:
how much of the machine the layer can lose before a figure gives way.
The figures also go to ``bench/results/cascade-<time>.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json as _json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from adapters.calls import interaction_id
from adapters.serving import BackgroundServer
from adapters.telephony_webhook.app import create_app
from adapters.telephony_webhook.simulator import WebhookPlatform
from bench import reports
from bench.cascade import broker_config, broker_requests, neighbour, tail
from bench.runtime.measure import (
    JIT_SETTLED_CORES,
    compiling_cores,
    cpu_seconds,
    machine_seconds,
    reference_loop_ms,
)
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
from troupe.bus.topics import EVENT_TYPE_HEADER, ensure_topics
from troupe.kafka.local import LocalCluster
from troupe.observability import logs
from troupe.observability.metrics import LOOP_ACTIVITIES
from troupe.service import records
from troupe.service.declaration import Command, Service
from troupe.service.runtime import Runtime, RuntimeOptions
from troupe.service.sender import CommandSender
from troupe.settings import KafkaSettings

SITES = ("msk", "spb", "ekb")
# About how long the layer is quiet before a measured span (its reference loop).
QUIET_BETWEEN_SPANS_S = 1.0
# The steps of a call's cascade whose times are reported, in order.
STEPS = (
    "InteractionReceived",
    "CallerRegistered",
    "OperatorOffered",
    "OperatorReserved",
    "CustomerAttached",
    "InteractionAssigned",
)
WATCHED = {*STEPS, "PresenceChanged"}


class Desks:
    """Operators who answer and hang up as soon as a call is assigned to them;
    records when each assignment was seen."""

    def __init__(self, kafka: KafkaSettings, sender: CommandSender) -> None:
        self.kafka = kafka
        self.sender = sender
        self.assigned: dict[str, float] = {}
        # interaction id -> when its assignment was decided (the event's clock)
        self.decided: dict[str, float] = {}
        self.available: set[str] = set()
        self.ready = threading.Event()
        # (correlation id, event type) -> when the event occurred (wall clock)
        self.seen: dict[tuple[str, str], float] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.pool = ThreadPoolExecutor(16)

    def run(self) -> None:
        consumer = clients.consumer(
            self.kafka,
            group_id=f"bench-desks-{uuid.uuid4().hex[:6]}",
            **{"auto.offset.reset": "latest", "client.id": "bench-desks"},
        )
        consumer.subscribe(
            ["interaction.events", "routing.events", "operator.events", "customer.events"],
            on_assign=lambda *_: self.ready.set(),
        )
        while not self.stopping.is_set():
            for message in clients.poll_batch(consumer, 1000, 0.05):
                if message.error() is not None:
                    continue
                # Decode only what is measured: at 200 calls/s the desks would
                # otherwise fall behind the system they measure.
                declared = dict(message.headers() or ()).get(EVENT_TYPE_HEADER)
                if declared is not None and declared.decode() not in WATCHED:
                    continue
                event = envelope_pb2.Envelope.FromString(message.value() or b"")
                if event.type == "PresenceChanged":
                    self.available.add(event.entity_id)
                self.seen.setdefault((event.correlation_id, event.type), event.occurred_at.ToNanoseconds() / 1e9)
                if event.type == "InteractionAssigned":
                    self.assigned.setdefault(event.entity_id, time.perf_counter())
                    # By the call, not the cascade: a call that waited is assigned in
                    # the cascade of the operator who became free.
                    self.decided.setdefault(event.entity_id, event.occurred_at.ToNanoseconds() / 1e9)
                    self.pool.submit(self.hang_up, event)
        consumer.close()

    def steps(self, calls: dict[str, float]) -> dict[str, dict[str, float]]:
        """p50 and p99 of the time from the adapter's request to each step, by the events' clocks."""
        found = {}
        for step in STEPS:
            times = [
                (self.seen[(call, step)] - sent_wall[call]) * 1000
                for call in calls
                if (call, step) in self.seen and call in sent_wall
            ]
            if times:
                found[step] = p50_p99(times)
        return found

    def hang_up(self, event: envelope_pb2.Envelope) -> None:
        call = interaction_pb.Interaction.FromString(event.state.value)
        actor = records.system("bench")
        for payload in (
            interaction_pb.AnswerInteractionRequest(interaction_id=call.interaction_id, operator_id=call.operator_id),
            interaction_pb.EndInteractionRequest(interaction_id=call.interaction_id),
        ):
            self.sender.send(
                Command(call.interaction_id, payload),
                actor=actor,
                correlation_id=event.correlation_id,
                causation_id=event.event_id,
            )


class KeptAliveClient:
    """Posts the simulated platform's events over one kept-alive connection per
    thread, with the standard library: the benchmark shares the two cores with the
    layer it measures, and an httpx post took three times the CPU (1.4 against 0.5 ms)."""

    def __init__(self, url: str) -> None:
        address = urlsplit(url)
        self.host, self.port = address.hostname or "127.0.0.1", address.port or 80
        self.connections = threading.local()

    def post(self, url: str, *, json: Any) -> httpx.Response:
        connection = getattr(self.connections, "connection", None)
        if connection is None:
            connection = self.connections.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request("POST", url, _json.dumps(json).encode(), {"Content-Type": "application/json"})
            response = connection.getresponse()
            return httpx.Response(response.status, content=response.read())
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            self.connections.connection = None
            # What the platform takes for a broken connection, and delivers again.
            raise httpx.TransportError(repr(error)) from error


# Deliveries of the simulated platform the adapter did not accept (never silently dropped).
delivery_errors: list[str] = []


def play(
    client: KeptAliveClient, pool: ThreadPoolExecutor, sent: dict[str, float], rate: float, count: int
) -> list[futures.Future[None]]:
    """Posts ``count`` new calls at ``rate`` per second (open loop), round the sites;
    the posts, which may still be running."""

    def post(number: int) -> None:
        call_id = uuid.uuid4().hex
        sent[interaction_id("webhook", call_id)] = time.perf_counter()
        sent_wall[interaction_id("webhook", call_id)] = time.time()
        try:
            response = WebhookPlatform(client, SITES[number % 3]).start(call_id, f"+7916{number % 10_000_000:07d}")
        except httpx.TransportError as error:
            delivery_errors.append(f"{call_id}: {error!r}")
            return
        if response.status_code != 202:
            delivery_errors.append(f"{call_id}: {response.status_code} {response.text}")

    started = time.perf_counter()
    posts = []
    for number in range(count):
        pause = started + number / rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        posts.append(pool.submit(post, number))
    return posts


def play_then_quiet(
    client: KeptAliveClient, pool: ThreadPoolExecutor, desks: Desks, sent: dict[str, float], rate: float, count: int
) -> None:
    """A chunk of the warm-up: calls, then quiet as between measured spans. Without
    the quiet the broker first met a pause in the first span, and compiled for it
    then (its JIT at 0.29 cores for 2 s, that span's p99 the run's highest)."""
    futures.wait(play(client, pool, sent, rate, count))
    wait_assigned(desks, sent, 120)
    time.sleep(QUIET_BETWEEN_SPANS_S)


def wait_assigned(desks: Desks, sent: dict[str, float], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(i not in desks.assigned for i in list(sent)) and time.monotonic() < deadline:
        time.sleep(0.1)


# Wall-clock time each call was posted, to compare with the events' occurred_at.
sent_wall: dict[str, float] = {}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", default="")
    parser.add_argument("--rate", type=float, default=50, help="calls per second")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--operators-per-site", type=int, default=60)
    parser.add_argument(
        "--warm-up-seconds",
        type=float,
        default=60,
        help="calls at the measured rate before measuring: a fresh broker compiles its hot code "
        "(the JIT took a third of its CPU) for the first minutes",
    )
    parser.add_argument(
        "--max-warm-up-seconds",
        type=float,
        default=300,
        help="the longest the warm-up goes on waiting for the broker's JIT to settle",
    )
    # Below the ephemeral port range, away from the test suite's (24092) and troupe up's (19092).
    parser.add_argument("--broker-port", type=int, default=25092)
    parser.add_argument(
        "--partitions",
        type=int,
        # One instance per service here, so one partition per topic: more partitions only
        # spread each transaction over more of them (2026-11-24, 50 calls/s: p99 181-184
        # ms with 1, 299 ms with 6; 150 offered: 131 calls/s sustained with 1, 112-124
        # with 6). The layer's default (KafkaSettings.partitions, 6) is for scaling out.
        default=1,
        help="partitions of every topic (default 1: one instance per service here)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measured spans of --seconds, back to back after one warm-up (the spread of a run's figures)",
    )
    parser.add_argument(
        "--alternate-broker-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a dynamic broker setting applied in spans 2, 3, 6, 7, ... (the broker's own in 1, 4, 5, 8, ...); "
        "repeatable",
    )
    parser.add_argument(
        "--count-broker-requests",
        action="store_true",
        help="log every broker request and print each span's requests per call, by kind and by client "
        "(the log slows the broker: such a run's latencies are not comparable with others)",
    )
    parser.add_argument(
        "--busy-neighbour-cores",
        type=float,
        default=0.0,
        help="cores that other processes keep busy all through the run, as another tenant of the host would",
    )
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument(
        "--in-process", action="store_true", help="all six services in this process (default: one process each)"
    )
    args = parser.parse_args()
    try:
        args.alternate_broker_config = broker_config.parse(args.alternate_broker_config)
    except ValueError as error:
        parser.error(str(error))
    if args.count_broker_requests and args.bootstrap:
        parser.error("--count-broker-requests reads the log of the benchmark's own broker: leave out --bootstrap")
    if args.alternate_broker_config and args.repeat < 2:
        parser.error("--alternate-broker-config compares spans: give --repeat 2 or more")
    if not 0 <= args.busy_neighbour_cores < (os.cpu_count() or 1):
        parser.error(f"--busy-neighbour-cores takes from 0 to fewer than this machine's {os.cpu_count()} cores")
    logs.configure(args.log_level, component="bench-cascade")

    work = Path(tempfile.mkdtemp(prefix="bench-cascade-"))
    cluster = None
    request_log = None
    if args.bootstrap:
        kafka = KafkaSettings(bootstrap_servers=args.bootstrap, partitions=args.partitions)
    else:
        cluster = LocalCluster(
            work / "kafka",
            brokers=1,
            base_port=args.broker_port,
            cache_dir=Path(".cache"),
            log_requests=args.count_broker_requests,
        )
        cluster.start(timeout=120)
        kafka = KafkaSettings(bootstrap_servers=cluster.bootstrap_servers, partitions=args.partitions)
        if args.count_broker_requests:
            request_log = broker_requests.RequestLog(cluster.request_log(0))
    kept = True
    try:
        kept = bool(run(args, kafka, work, cluster.pid(0) if cluster else None, request_log))
    finally:
        if cluster:
            cluster.stop()
        if kept:
            print(f"the run's broker data, stores and logs are kept in {work}")
        else:  # hundreds of MB of broker data per run
            shutil.rmtree(work, ignore_errors=True)


def run(
    args: argparse.Namespace,
    kafka: KafkaSettings,
    work: Path,
    broker_pid: int | None,
    request_log: broker_requests.RequestLog | None,
) -> list[str]:
    """Runs the benchmark; the components that failed during it."""
    services: list[Service[Any]] = [customer, operator, interaction, routing, ticket, notification]
    ensure_topics(kafka, [f"{s.name}.{k}" for s in services for k in ("events", "commands", "dlq")])
    sender = CommandSender(kafka, "bench")
    desks = Desks(kafka, sender)
    desks.thread.start()
    desks.ready.wait(60)
    runtimes: list[Runtime[Any]] = []
    processes: list[subprocess.Popen[bytes]] = []
    metrics_ports: dict[str, int] = {}
    if args.in_process:
        operator_rules.POLICY.wrap_up = timedelta(0)
        options = RuntimeOptions(state_dir=work, instance="bench", grpc_address=None)
        runtimes = [Runtime(s, kafka, options).start() for s in services]
    else:
        # Each service serves its metrics, for the transactions and records per call.
        metrics_ports = {s.name: args.broker_port + 400 + i for i, s in enumerate(services)}
        processes = [
            start_component(f"services.{s.name}", kafka, work, {"TROUPE_METRICS_PORT": str(metrics_ports[s.name])})
            for s in services
        ]
        # The adapter too, so that this process only plays the platform and the desks.
        adapter_port = str(args.broker_port + 300)  # +100 is the broker's controller
        processes.append(start_component("adapters.telephony_webhook", kafka, work, {"TROUPE_HTTP_PORT": adapter_port}))
    watched = {"bench (platform + desks)": os.getpid()}
    names = [s.name for s in services] + ["telephony_webhook"]
    watched |= {name: process.pid for name, process in zip(names, processes, strict=False)}
    if broker_pid is not None:
        watched["kafka broker"] = broker_pid
    try:
        adapter_url = None if args.in_process else f"http://127.0.0.1:{adapter_port}"
        with neighbour.busy_neighbour(args.busy_neighbour_cores):
            measure(args, kafka, sender, desks, adapter_url, watched, metrics_ports, request_log)
    finally:
        failed = [r.service.name for r in runtimes if r.failed]
        failed += [str(p.args) for p in processes if p.poll() is not None]
        if failed:
            print(f"FAILED during the run: {failed}; logs in {work / 'logs'}")
        desks.stopping.set()
        sender.close()
        for runtime in runtimes:
            runtime.stop()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
    return failed


def committed_work(metrics_port: int) -> dict[str, float]:
    """A service's committed transactions, offset commits outside a transaction,
    processed records and its loop's seconds by activity so far (its /metrics)."""
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
    work = {
        "transactions": sum(
            s.value for s in samples if s.name == "troupe_transactions_total" and s.labels.get("outcome") == "committed"
        ),
        "offset_commits": sum(s.value for s in samples if s.name == "troupe_offset_commits_total"),
        "records": sum(s.value for s in samples if s.name == "troupe_records_total"),
    }
    for activity in LOOP_ACTIVITIES:
        work[activity] = sum(
            s.value for s in samples if s.name == "troupe_loop_seconds_total" and s.labels.get("activity") == activity
        )
    return work


def start_component(
    module: str, kafka: KafkaSettings, work: Path, extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A service or adapter as it runs in production: its own process (``python -m <module>``)."""
    (work / "logs").mkdir(exist_ok=True)
    log = (work / "logs" / f"{module.rsplit('.', 1)[-1]}.log").open("ab")
    env = {
        **os.environ,
        "TROUPE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "TROUPE_KAFKA__PARTITIONS": str(kafka.partitions),
        "TROUPE_STATE_DIR": str(work),
        "TROUPE_INSTANCE": "bench",
        "TROUPE_LOG_LEVEL": os.environ.get("TROUPE_LOG_LEVEL", "WARNING"),
        # Operators free again as soon as they hang up: the bench measures routing, not desks.
        "TROUPE_OPERATOR_WRAP_UP_SECONDS": "0",
        **(extra or {}),
    }
    return subprocess.Popen([sys.executable, "-m", module], env=env, stdout=log, stderr=log)


def wait_for_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answers at {url}")


def warm_up(
    args: argparse.Namespace,
    client: KeptAliveClient,
    pool: ThreadPoolExecutor,
    desks: Desks,
    broker_pid: int | None,
) -> int:
    """Calls at the measured rate for the warm-up time and then until the broker's
    JIT has settled; how many calls that took."""
    started = time.monotonic()
    calls = 0
    while True:
        chunk: dict[str, float] = {}
        compiling = compiling_cores(
            broker_pid, partial(play_then_quiet, client, pool, desks, chunk, args.rate, int(args.rate * 10))
        )
        calls += len(chunk)
        elapsed = time.monotonic() - started
        print(f"  warm-up {elapsed:5.0f} s: broker JIT compiler {compiling:.2f} cores", flush=True)
        settled = elapsed >= args.warm_up_seconds and compiling < JIT_SETTLED_CORES
        if settled or elapsed >= args.max_warm_up_seconds:
            return calls


def measure(
    args: argparse.Namespace,
    kafka: KafkaSettings,
    sender: CommandSender,
    desks: Desks,
    adapter_url: str | None,
    watched: dict[str, int],
    metrics_ports: dict[str, int],
    request_log: broker_requests.RequestLog | None,
) -> None:
    register_operators(args, sender, desks)
    if args.alternate_broker_config:  # a setting the broker refuses fails here, before the warm-up
        broker_config.apply(kafka.bootstrap_servers, args.alternate_broker_config)
    server = None
    if adapter_url is None:
        server = BackgroundServer(create_app(sender)).start()
        adapter_url = server.url
    wait_for_http(adapter_url)
    client = KeptAliveClient(adapter_url)
    spans: list[dict[str, Any]] = []
    with ThreadPoolExecutor(64) as pool:
        # Every service on the call's path has its partitions and has served a call.
        warm: dict[str, float] = {}
        futures.wait(play(client, pool, warm, rate=10, count=30))
        wait_assigned(desks, warm, 120)
        steady = warm_up(args, client, pool, desks, watched.get("kafka broker"))
        print(
            f"warmed up ({len(warm)} calls, then {steady} at the rate), now {args.repeat} x "
            f"{int(args.rate * args.seconds)} calls at {args.rate}/s",
            flush=True,
        )
        settings = args.alternate_broker_config
        for number in range(args.repeat):
            alternate: dict[str, str] = settings if broker_config.in_span(number) else {}
            if settings:  # a setting absent from ``alternate`` goes back to the broker's own
                broker_config.apply(kafka.bootstrap_servers, {key: alternate.get(key) for key in settings})
            if args.repeat > 1:
                with_settings = f", with {broker_config.describe(alternate)}" if alternate else ""
                print(f"--- measured span {number + 1} of {args.repeat}{with_settings}")
            if request_log:
                request_log.skip_to_end()
            started_ms = time.time_ns() // 1_000_000
            span = measure_span(args, client, pool, desks, watched, metrics_ports)
            span["broker_config"] = alternate
            if request_log:
                counted = request_log.read(started_ms, time.time_ns() // 1_000_000)
                span["broker_requests"] = broker_requests.per_call(counted, int(args.rate * args.seconds))
                print("\n".join(broker_requests.describe(span["broker_requests"])), flush=True)
            spans.append(span)
    if delivery_errors:
        print(f"deliveries the adapter did not take: {len(delivery_errors)}, first: {delivery_errors[:3]}")
    if args.repeat > 1:
        print_spread(spans)
    if server is not None:
        server.stop()
    report = {
        "command": " ".join([".venv/bin/python -m bench.cascade.bench_cascade", *sys.argv[1:]]),
        "settings": vars(args),
        "machine": reports.machine(),
        "load_average_at_end": os.getloadavg(),
        "spans": spans,
    }
    print(f"figures in {reports.save('cascade', report)}")


def register_operators(args: argparse.Namespace, sender: CommandSender, desks: Desks) -> None:
    """Registers ``--operators-per-site`` operators at each site, available, and waits
    until the desks have seen them so."""
    actor = records.system("bench")
    operators = [(f"{site}-{n}", site) for site in SITES for n in range(args.operators_per_site)]
    registered = [
        sender.send_nowait(Command(operator_id, payload), actor=actor)
        for operator_id, site in operators
        for payload in (
            operator_pb.RegisterOperatorRequest(
                operator_id=operator_id, name=operator_id, site=site, skills=["orders"]
            ),
            operator_pb.SetPresenceRequest(operator_id=operator_id, presence=operator_pb.PRESENCE_AVAILABLE),
        )
    ]
    for sent_command in registered:
        sent_command.result(30)
    deadline = time.monotonic() + 180
    while len(desks.available) < len(operators) and time.monotonic() < deadline:
        time.sleep(0.2)
    print(f"{len(desks.available)} operators available", flush=True)


def measure_span(
    args: argparse.Namespace,
    client: KeptAliveClient,
    pool: ThreadPoolExecutor,
    desks: Desks,
    watched: dict[str, int],
    metrics_ports: dict[str, int],
) -> dict[str, Any]:
    """Plays ``--seconds`` of calls at ``--rate``, waits for their assignments, and
    prints and returns what the span measured."""
    total = int(args.rate * args.seconds)
    # The layer is quiet between spans: no call is in flight.
    reference = reference_loop_ms()
    print(
        f"this host now: a reference loop of pure Python takes {reference['median']:.1f} ms"
        f" (median of 15, slowest {reference['slowest']:.1f})",
        flush=True,
    )
    sent: dict[str, float] = {}
    cpu_before = {name: cpu_seconds(pid) for name, pid in watched.items()}
    machine_before = machine_seconds()
    work_before = {name: committed_work(port) for name, port in metrics_ports.items()}
    futures.wait(play(client, pool, sent, args.rate, total))
    wait_assigned(desks, sent, 60)
    cpu_used = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in watched.items()}
    machine_used = {kind: seconds - machine_before[kind] for kind, seconds in machine_seconds().items()}
    work_done = {
        name: {kind: after - work_before[name][kind] for kind, after in committed_work(port).items()}
        for name, port in metrics_ports.items()
    }
    done = [i for i in sent if i in desks.assigned]
    latencies = [(desks.assigned[i] - sent[i]) * 1000 for i in done]
    span = max(desks.assigned[i] for i in done) - min(sent.values())
    print(f"calls sent {total}, assigned {len(done)}")
    for call in [i for i in sent if i not in desks.assigned][:20]:
        reached = [step for step in STEPS if (call, step) in desks.seen]
        print(f"  not assigned: {call}, its cascade reached {', '.join(reached) or 'nothing'}")
    calls = max(1, len(done))
    read_back = p50_p99(latencies)
    decided = p50_p99([(desks.decided[call] - sent_wall[call]) * 1000 for call in done if call in desks.decided])
    figures: dict[str, Any] = {
        "calls": {"sent": total, "assigned": len(done)},
        "measured_s": round(span, 1),
        "sustained_calls_per_s": round(len(done) / span, 1),
        "read_back_ms": {**read_back, "max": round(max(latencies), 1)},
        # Each call's, in the order sent: the spans of a run pooled (print_spread) or compared again later.
        "read_back_each_ms": [round(latency, 1) for latency in latencies],
        "decided_ms": decided,
        "read_back_by_10_s_ms": by_window(sent, done, latencies),
        "steps_ms": desks.steps(sent),
        "cpu_ms_per_call": {name: round(used * 1000 / calls, 2) for name, used in cpu_used.items()},
        "cores_in_use": {name: round(used / span, 2) for name, used in cpu_used.items()},
        "machine_cores": {kind: round(used / span, 2) for kind, used in machine_used.items()},
        "reference_loop_ms": reference,
        "per_call": {
            name: {kind: round(work[kind] / calls, 2) for kind in ("transactions", "offset_commits", "records")}
            for name, work in work_done.items()
        },
        # The share of the span each service's loop was busy: near 1, records queue behind it.
        "loop_busy": {
            name: {activity: round(work[activity] / span, 3) for activity in LOOP_ACTIVITIES if activity != "waiting"}
            for name, work in work_done.items()
        },
    }
    calls_seen = [
        tail.Call(
            sent_wall[call],
            sent_wall[call] + desks.assigned[call] - sent[call],
            {step: desks.seen[(call, step)] for step in tail.CHAIN if (call, step) in desks.seen},
        )
        for call in done
        if call in sent_wall
    ]
    figures["tail"] = tail.describe(calls_seen)
    print_span(args, figures)
    return figures


def by_window(sent: dict[str, float], done: list[str], latencies: list[float]) -> list[dict[str, float]]:
    """p50 and p99 of the read-back latency of the calls sent in each 10 s."""
    start = min(sent.values())
    windows: dict[int, list[float]] = {}
    for call, latency in zip(done, latencies, strict=True):
        windows.setdefault(int((sent[call] - start) // 10), []).append(latency)
    return [{"from_s": window * 10, **p50_p99(inside)} for window, inside in sorted(windows.items())]


def print_span(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    read_back, decided = figures["read_back_ms"], figures["decided_ms"]
    print(
        f"sustained: {figures['sustained_calls_per_s']:.1f} calls/s over {figures['measured_s']:.1f}s"
        f" (offered {args.rate}/s)"
    )
    print(
        f"adapter in -> assignment out: p50 {read_back['p50']:.1f} ms, "
        f"p99 {read_back['p99']:.1f} ms, max {read_back['max']:.1f} ms"
    )
    if decided:
        print(
            "adapter in -> assignment decided (the event's own clock, no read-back): "
            f"p50 {decided['p50']:.1f} ms, p99 {decided['p99']:.1f} ms"
        )
    print("read back by 10 s window of sending:")
    for window in figures["read_back_by_10_s_ms"]:
        start = window["from_s"]
        print(f"  {start:3.0f}-{start + 10:3.0f} s: p50 {window['p50']:7.1f} ms, p99 {window['p99']:7.1f} ms")
    print("time to each step, p50 / p99 (from the adapter's request, by the events' clocks):")
    for step, millis in figures["steps_ms"].items():
        print(f"  {step:<22} {millis['p50']:8.1f} / {millis['p99']:6.1f} ms")
    if figures["tail"]:
        print_tail(figures["tail"])
    cpu = figures["cpu_ms_per_call"]
    print(f"CPU per call (ms of CPU time, {figures['calls']['assigned']} calls; the measured span's cores in use):")
    for name, millis in sorted(cpu.items(), key=lambda item: -item[1]):
        print(f"  {name:<24} {millis:7.2f} ms  {figures['cores_in_use'][name]:5.2f} cores")
    print(f"  {'all':<24} {sum(cpu.values()):7.2f} ms")
    machine = figures["machine_cores"]
    print(
        f"the machine over the measured span: {machine['busy']:.2f} cores busy"
        f" ({machine['busy'] - sum(figures['cores_in_use'].values()):.2f} outside the processes above),"
        f" {machine['idle']:.2f} idle, {machine['stolen']:.2f} stolen by the host"
    )
    if figures["per_call"]:
        print("per call: committed transactions, offset commits on their own, records (the services' metrics):")
        for name, work in figures["per_call"].items():
            print(
                f"  {name:<24} {work['transactions']:7.2f} transactions  {work['offset_commits']:5.2f} offset commits"
                f"  {work['records']:7.2f} records"
            )
        print("each service's loop busy over the measured span: handling records, committing, ticks:")
        for name, busy in figures["loop_busy"].items():
            print(
                f"  {name:<24} {sum(busy.values()):6.1%}  ({busy['handling']:.1%} handling,"
                f" {busy['committing']:.1%} committing, {busy['ticking']:.1%} ticks)"
            )


def print_tail(found: dict[str, Any]) -> None:
    print(
        f"the slowest 5 % (from {found['p95_ms']:.1f} ms): {found['share_in_bursts']:.0%} of them in"
        f" {found['bursts']} bursts of calls sent within {tail.BURST_GAP_S} s of each other"
        f" (longest {found['longest_burst_s']:.2f} s)"
    )
    excess = ", ".join(f"{hop} {ms:+.1f}" for hop, ms in found["slowest_1_percent_excess_ms"].items())
    print(f"the slowest 1 %, each hop's time over its median: {excess} ms")


def print_spread(spans: list[dict[str, Any]]) -> None:
    """The spans side by side: how far one run's figures can be taken."""
    p99s = [span["read_back_ms"]["p99"] for span in spans]
    print(f"--- {len(spans)} measured spans, back to back on one warmed-up layer:")
    for number, span in enumerate(spans, 1):
        read_back, machine = span["read_back_ms"], span["machine_cores"]
        print(
            f"  span {number}: {span['sustained_calls_per_s']:6.1f} calls/s, read back p50 {read_back['p50']:6.1f} ms,"
            f" p99 {read_back['p99']:6.1f} ms; CPU per call {sum(span['cpu_ms_per_call'].values()):5.2f} ms;"
            f" machine {machine['busy']:.2f} cores busy, {machine['stolen']:.2f} stolen;"
            f" reference loop {span['reference_loop_ms']['median']:.1f} ms"
        )
    print(f"  read back p99: median {statistics.median(p99s):.1f} ms, from {min(p99s):.1f} to {max(p99s):.1f} ms")
    pooled = [latency for span in spans for latency in span["read_back_each_ms"]]
    print(
        f"  all {len(pooled)} calls of the spans together: read back p50 {statistics.median(pooled):.1f} ms,"
        f" p99 {tail.percentile(pooled, 0.99):.1f} ms, p99.9 {tail.percentile(pooled, 0.999):.1f} ms"
    )
    alternated = [span for span in spans if span["broker_config"]]
    if alternated:
        own = [span for span in spans if not span["broker_config"]]
        setting = broker_config.describe(alternated[0]["broker_config"])
        for label, group in ((f"with {setting}", alternated), ("with the broker's own settings", own)):
            p50s = [span["read_back_ms"]["p50"] for span in group]
            p99s = [span["read_back_ms"]["p99"] for span in group]
            print(
                f"  {label}: read back p50 median {statistics.median(p50s):.1f} ms,"
                f" p99 median {statistics.median(p99s):.1f} ms ({len(group)} spans)"
            )


def p50_p99(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"p50": round(statistics.median(values), 1), "p99": round(tail.percentile(values, 0.99), 1)}


if __name__ == "__main__":
    main()
