"""The runtime-loop benchmark: one command, one broker of its own, every figure.

    .venv/bin/python -m bench.runtime            # or: bash bench/runtime/run.sh

1. Throughput: N AwardLoyaltyPoints commands (after 1,000 RegisterCustomer) are
   put in each contestant's commands topic first; then the contestant starts and
   a read_committed consumer counts its committed events until all are there.
2. The contestants: the Troupe runtime (one process of the customer service), the
   same work as a plain confluent-kafka transactional loop, Quix Streams
   (exactly-once) and FastStream (at-least-once: it has no Kafka transactions).
3. Hop latency at a steady rate (1,000 commands/s for 30 s): command produced →
   handler → event committed and read by a read_committed consumer.
4. Ratios, goals, machine facts → bench/results/runtime-<time>.json and the
   "Runtime loop" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from troupe.bus.topics import dlq_topic, ensure_topics
from troupe.kafka.local import LocalCluster, LocalKafkaError
from troupe.settings import KafkaSettings

from . import environment, measure, report, work, workload
from .contestants import ALL, BROKER_WARM_UP, PLAIN, PLAIN_STORE, QUIX, TROUPE, Child, Contestant
from .environment import ROOT

BASE_PORT = 45092
PARTITIONS = 6
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / ".cache" / "bench-runtime"
FLOOR_TOPIC = "bench.floor"


@dataclass
class Run:
    args: argparse.Namespace
    bootstrap: str
    logs: Path
    quix: Path | None
    cluster: LocalCluster
    results: dict[str, Any] = field(default_factory=dict)

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.runtime",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--commands", type=int, default=200_000, help="AwardLoyaltyPoints per contestant")
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--rate", type=int, default=1_000, help="commands/s of the latency run")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument(
        "--broker-warm-up-seconds",
        type=float,
        default=60.0,
        help="before any measurement, the plain loop runs the throughput workload and then"
        " at least this long, and until the broker's JIT compiler has settled, at the latency"
        " run's rate on topics of its own, unmeasured: a fresh broker's JIT compiles for its"
        " first minutes, and whichever contestant came first paid for it",
    )
    parser.add_argument(
        "--max-broker-warm-up-seconds",
        type=float,
        default=300.0,
        help="the warm-up stops here even if the broker's JIT compiler has not settled",
    )
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument(
        "--only",
        default=",".join(c.name for c in ALL),
        help="contestants, comma-separated: troupe,plain-store,plain,quix,faststream",
    )
    parser.add_argument(
        "--latency", default="troupe,plain-store,plain,quix", help="contestants whose hop latency is measured"
    )
    parser.add_argument(
        "--quix-latency-commit-interval",
        type=float,
        default=0.25,
        help="Quix commit_interval (s) for the latency run (its default, 5 s, is used for throughput)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="seconds a contestant gets for the throughput run",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, profile the Troupe processor thread (pyinstrument)",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    return parser.parse_args(argv)


def names(value: str) -> list[Contestant]:
    wanted = [n.strip() for n in value.split(",") if n.strip()]
    unknown = set(wanted) - {c.name for c in ALL}
    if unknown:
        raise SystemExit(f"unknown contestants: {', '.join(sorted(unknown))}")
    return [c for c in ALL if c.name in wanted]


# -- the contestants' command lines ---------------------------------------------


def argv(run: Run, contestant: Contestant, phase: str) -> list[str]:
    common = ["--bootstrap", run.bootstrap]
    io = [
        "--input",
        contestant.input,
        "--output",
        contestant.output,
        "--group",
        f"bench-{contestant.name}",
    ]
    python = sys.executable
    if contestant is TROUPE:
        # One store for the whole run: the latency and profile runs go on from it.
        extra = ["--profile", str(run.logs / "troupe-profile.pyisession")] if phase == "profile" else []
        return [
            python,
            "-m",
            "bench.runtime.troupe_runtime",
            *common,
            "--partitions",
            str(PARTITIONS),
            "--state-dir",
            str(WORK / "state" / "troupe"),
            *extra,
        ]
    if contestant is PLAIN or contestant is BROKER_WARM_UP:
        return [python, "-m", "bench.runtime.plain", *common, *io]
    if contestant is PLAIN_STORE:
        store = WORK / "state" / "plain-store.sqlite"
        store.parent.mkdir(parents=True, exist_ok=True)
        return [python, "-m", "bench.runtime.plain", *common, *io, "--store", str(store)]
    if contestant is QUIX:
        assert run.quix is not None
        interval = run.args.quix_latency_commit_interval if phase == "latency" else 5.0
        return [
            str(run.quix),
            "-m",
            "bench.runtime.quix",
            *common,
            *io,
            "--state-dir",
            str(WORK / "state" / "quix"),
            "--commit-interval",
            str(interval),
        ]
    return [python, "-m", "bench.runtime.faststream_loop", *common, *io]


def start(run: Run, contestant: Contestant, phase: str) -> Child:
    child = Child(argv(run, contestant, phase), run.logs / f"{contestant.name}-{phase}.log")
    child.expect("started", 120)
    return child


# -- throughput ------------------------------------------------------------------


def throughput(
    run: Run, contestant: Contestant, expected: int, phase: str = "throughput"
) -> tuple[dict[str, Any], Child]:
    counter = measure.OutputCounter(run.bootstrap, contestant.output, expected)
    broker_pid = run.cluster.pid(0)
    child = Child(argv(run, contestant, phase), run.logs / f"{contestant.name}-{phase}.log")
    launched = time.monotonic()
    cpu_first: tuple[float, float] | None = None
    threads_first: dict[int, tuple[str, float]] = {}
    deadline = launched + run.args.timeout
    state = counter.state
    while time.monotonic() < deadline and state.done_at is None and child.alive():
        if cpu_first is None and state.first is not None:
            cpu_first = (measure.cpu_seconds(child.pid), measure.cpu_seconds(broker_pid))
            threads_first = measure.thread_cpu(child.pid)
        time.sleep(0.02)
    ended = state.done_at or time.monotonic()
    cpu_end = (measure.cpu_seconds(child.pid), measure.cpu_seconds(broker_pid))
    threads_end = measure.thread_cpu(child.pid)
    time.sleep(1.0)  # anything beyond the expected count would be a duplicate
    counter.close()
    result: dict[str, Any] = {
        "expected": expected,
        "counted": state.count,
        "complete": state.done_at is not None,
        "without_traceparent": state.without_trace,
    }
    if state.first is None:
        result["error"] = f"no event within {run.args.timeout:.0f} s (see {child.log})"
        return result, child
    first_at, first_count = state.first
    window = ended - first_at
    events = min(state.count, expected) - first_count
    result.update(
        {
            "events_per_s": round(events / window) if window > 0 else None,
            "seconds": round(window, 2),
            "first_event_after_s": round(first_at - launched, 2),
            "wall_s": round(ended - launched, 2),
        }
    )
    if cpu_first is not None and events > 0:
        result["cpu_s_per_10k_events"] = round((cpu_end[0] - cpu_first[0]) / events * 10_000, 3)
        result["broker_cpu_s_per_10k_events"] = round((cpu_end[1] - cpu_first[1]) / events * 10_000, 3)
        result["process_cpu_cores"] = round((cpu_end[0] - cpu_first[0]) / window, 2)
        result["broker_cpu_cores"] = round((cpu_end[1] - cpu_first[1]) / window, 2)
        result["thread_cpu_cores"] = cores = measure.thread_cores(threads_first, threads_end, child.threads, window)
        # What the loop's own thread would do with a whole core to itself.
        loop = cores.get("loop") or cores.get("customer-processor")
        if loop and result["events_per_s"]:
            result["events_per_loop_thread_cpu_s"] = round(result["events_per_s"] / loop)
    return result, child


def latency(run: Run, contestant: Contestant, start_index: int) -> dict[str, Any]:
    args = run.args
    count = round(args.rate * (args.warmup_seconds + args.latency_seconds))
    commands = workload.awards(count, args.customers, start_index)
    child = start(run, contestant, "latency") if contestant is QUIX else None
    try:
        result = measure.hop_latency(
            run.bootstrap,
            contestant.input,
            contestant.output,
            commands,
            args.rate,
            args.warmup_seconds,
        )
    finally:
        if child is not None:
            child.stop()
    summary = result.summary()
    if contestant is QUIX:
        summary["commit_interval_s"] = args.quix_latency_commit_interval
    return summary


def work_alone(commands: list[workload.Record]) -> float:
    """CPU µs per event of the plain loops' per-record work with no Kafka at all
    (decode the command → decide → encode the event), in this process: no loop
    that does this work can spend less per event."""
    states: dict[str, tuple[int, bytes]] = {}
    started = time.process_time()
    for record in commands:
        command = work.decode(record.value)
        version, state = states.get(command.entity_id, (0, b""))
        _event, new_state = work.decide(command, version, state)
        states[command.entity_id] = (version + 1, new_state)
    return round((time.process_time() - started) / len(commands) * 1e6, 1)


def warm_up_broker(run: Run, expected: int) -> None:
    """The plain loop's throughput run and then its hop-latency traffic on topics of
    its own, nothing recorded, for at least ``--broker-warm-up-seconds`` and then on
    until the broker's JIT compiler has settled (under 5 % of a core over 10 s).
    Measured on a fresh broker, the first contestant's hop p50 was 50-80 % higher
    than the same loop's measured second; after a fixed minute the compiler still
    took a third of the broker's CPU, and a bare transactional loop's cycle kept
    getting faster for minutes (p50 8.7 → 4.0 ms)."""
    started = time.monotonic()
    args = run.args
    run.log(f"warming the broker up: {BROKER_WARM_UP.label}")
    broker_pid = run.cluster.pid(0)
    figures, child = throughput(run, BROKER_WARM_UP, expected)
    try:
        sent = args.commands
        while figures.get("complete"):
            commands = workload.awards(round(args.rate * 10), args.customers, sent)
            sent += len(commands)
            warm_up = BROKER_WARM_UP
            traffic = partial(
                measure.hop_latency, run.bootstrap, warm_up.input, warm_up.output, commands, args.rate, 0.0
            )
            compiling = measure.compiling_cores(broker_pid, traffic)
            elapsed = time.monotonic() - started
            run.log(f"  {elapsed:4.0f} s: broker JIT compiler {compiling:.2f} cores")
            settled = elapsed >= args.broker_warm_up_seconds and compiling < measure.JIT_SETTLED_CORES
            if settled or elapsed >= args.max_broker_warm_up_seconds:
                break
    finally:
        child.stop()
    run.results["broker_warm_up_s"] = round(time.monotonic() - started, 1)
    run.log(f"  warm-up took {run.results['broker_warm_up_s']} s")


def contest(run: Run, contestant: Contestant, expected: int, points: int) -> None:
    args = run.args
    run.log(f"{contestant.label}: throughput over {expected:,} commands")
    figures, child = throughput(run, contestant, expected)
    entry: dict[str, Any] = {
        "label": contestant.label,
        "guarantee": contestant.guarantee,
        "throughput": figures,
    }
    run.results["contestants"][contestant.name] = entry
    run.log(f"  {json.dumps(figures)}")
    try:
        if contestant is TROUPE and child.alive():
            child.ask("store")
            store = child.expect("store", 180)
            store.pop("event")
            store["matches"] = (
                store["entities"] == args.customers and store["versions"] == expected and store["points"] == points
            )
            entry["store"] = store
            run.log(f"  store: {json.dumps(store)}")
        if contestant in names(args.latency) and figures.get("complete"):
            if contestant is QUIX:
                child.stop()
            run.log(f"  hop latency at {args.rate}/s for {args.latency_seconds:.0f} s")
            entry["latency"] = latency(run, contestant, args.commands)
            run.log(f"  {json.dumps(entry['latency'])}")
    finally:
        child.stop()


def profile(run: Run) -> None:
    """A further Troupe run under pyinstrument, over fresh award commands."""
    args = run.args
    count = min(args.commands, 50_000)
    start_index = args.commands + round(args.rate * (args.warmup_seconds + args.latency_seconds))
    run.log(f"profiling the Troupe processor thread over {count:,} commands")
    batch = workload.awards(count, args.customers, start_index)
    workload.fill(run.bootstrap, TROUPE.input, batch)
    figures, child = throughput(run, TROUPE, count, phase="profile")
    child.stop()
    session = run.logs / "troupe-profile.pyisession"
    run.results["profile"] = {
        "throughput_under_profiler": figures,
        **report.hotspots(session, run.logs / "troupe-profile.txt"),
    }
    run.log(f"  profile: {run.logs / 'troupe-profile.txt'}")


def start_broker(cluster: LocalCluster, attempts: int = 4) -> None:
    """Starts the broker; a port still in TIME_WAIT from a broker stopped moments ago
    makes Kafka's bind fail, so that is waited out."""
    for attempt in range(1, attempts + 1):
        try:
            cluster.start(timeout=120)
            return
        except LocalKafkaError as error:
            if "Address already in use" not in str(error) or attempt == attempts:
                raise
            cluster.stop()
            print("broker ports still in use (TIME_WAIT); retrying in 30 s", flush=True)
            time.sleep(30)


def main(argv_: list[str] | None = None) -> None:
    args = parse(argv_)
    chosen = names(args.only)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    logs = RESULTS / f"runtime-{stamp}"
    logs.mkdir(parents=True, exist_ok=True)
    install_log = logs / "install.log"
    environment.ensure_bench_extra(install_log)
    quix = environment.quix_python(install_log) if QUIX in chosen else None

    cluster = LocalCluster(WORK / "kafka", brokers=1, base_port=BASE_PORT, cache_dir=ROOT / ".cache")
    cluster.stop()  # a broker a crashed run of this benchmark left behind
    shutil.rmtree(WORK, ignore_errors=True)
    run = Run(args, cluster.bootstrap_servers, logs, quix, cluster)
    command = "bash bench/runtime/run.sh" + (
        "" if argv_ is None and len(sys.argv) == 1 else " " + shlex.join(sys.argv[1:] if argv_ is None else argv_)
    )
    run.results.update(
        {
            "benchmark": "runtime-loop",
            "started_at": stamp,
            "command": command,
            "machine": environment.machine(quix),
            "source": environment.source_version(),
            "load_average_before": environment.load_average(),
            "parameters": {
                "commands": args.commands,
                "customers": args.customers,
                "partitions": PARTITIONS,
                "rate": args.rate,
                "latency_seconds": args.latency_seconds,
                "warmup_seconds": args.warmup_seconds,
            },
            "contestants": {},
        }
    )
    began = time.monotonic()
    try:
        run.log(f"starting Kafka on {run.bootstrap}")
        start_broker(cluster)
        kafka = KafkaSettings(bootstrap_servers=run.bootstrap, partitions=PARTITIONS)
        topics = [FLOOR_TOPIC, *(t for c in (BROKER_WARM_UP, *chosen) for t in (c.input, c.output))]
        ensure_topics(kafka, [*topics, dlq_topic("customer")] if TROUPE in chosen else topics)

        run.log(f"building {args.customers:,} registrations + {args.commands:,} awards")
        commands = workload.registrations(args.customers) + workload.awards(args.commands, args.customers)
        expected = len(commands)
        points = workload.awarded_points(args.commands)
        for contestant in (BROKER_WARM_UP, *chosen):
            seconds = workload.fill(run.bootstrap, contestant.input, commands)
            run.log(f"filled {contestant.input} in {seconds:.1f} s")
        run.results["work_alone_us_per_event"] = work_alone(commands)
        run.log(f"the per-event work alone, in-process: {run.results['work_alone_us_per_event']:.1f} µs of CPU")
        del commands
        warm_up_broker(run, expected)

        if names(args.latency):
            run.log(f"Kafka alone: produce → read_committed consume at {args.rate}/s for {args.latency_seconds:.0f} s")
            floor = measure.floor_latency(
                run.bootstrap, FLOOR_TOPIC, args.rate, args.warmup_seconds, args.latency_seconds
            ).summary()
            run.results["kafka_floor_latency"] = floor
            run.log(f"  {json.dumps(floor)}")
        for contestant in chosen:
            contest(run, contestant, expected, points)
        if args.profile and TROUPE in chosen:
            profile(run)
    finally:
        run.results["load_average_after"] = environment.load_average()
        run.results["duration_s"] = round(time.monotonic() - began, 1)
        cluster.stop()
        shutil.rmtree(WORK / "kafka", ignore_errors=True)
        report.finish(run.results)
        out = RESULTS / f"runtime-{stamp}.json"
        out.write_text(json.dumps(run.results, indent=2) + "\n")
        (RESULTS / "runtime-latest.json").write_text(json.dumps(run.results, indent=2) + "\n")
        run.log(f"results: {out}")
    if not args.no_docs:
        report.write_doc(run.results, ROOT / "docs" / "benchmarks.md")
        run.log("docs/benchmarks.md updated")
    print(report.table(run.results))
