"""Measuring from outside the contestant, as a downstream service sees it: a
read_committed consumer of the output topic counts the events (throughput) or
matches each event to the command that caused it (hop latency)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from contracts.events.v1 import envelope_pb2

from .workload import Record

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time a process (all its threads) has used so far."""
    if pid is None:
        return 0.0
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_seconds() -> dict[str, float]:
    """The whole machine's CPU time so far (all cores, /proc/stat), by kind: busy,
    idle, and stolen (the host ran other machines on our cores: every figure
    taken meanwhile is slower than the machine's own)."""
    with open("/proc/stat") as stat:
        user, nice, system, idle, iowait, irq, softirq, steal = (int(f) / TICKS for f in stat.readline().split()[1:9])
    return {"busy": user + nice + system + irq + softirq, "idle": idle + iowait, "stolen": steal}


def reference_loop_ms(repeats: int = 15) -> dict[str, float]:
    """How long a fixed piece of pure Python takes on this host right now (median and
    slowest of ``repeats``, ms). Hosts of the same kind differ, and one host differs
    from hour to hour without any time stolen: this puts figures of different runs
    on one scale."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        sum(i * i for i in range(1_000_000))
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {"median": round(timings[len(timings) // 2], 1), "slowest": round(timings[-1], 1)}


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds used so far by each thread of a process: tid → (name, seconds)."""
    threads: dict[int, tuple[str, float]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return threads
    for tid in tids:
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()  # noqa: SIM115
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        threads[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / TICKS)
    return threads


def compiler_seconds(pid: int | None) -> float:
    """CPU time so far of a JVM's JIT compiler threads (0 without a process): a fresh
    broker compiles for minutes, and measures slower until it has settled."""
    return sum(seconds for name, seconds in thread_cpu(pid).values() if "Compiler" in name) if pid else 0.0


# Cores a broker's JIT compiler may still use for the broker to count as warmed up.
JIT_SETTLED_CORES = 0.05


def compiling_cores(pid: int | None, chunk: Callable[[], object]) -> float:
    """Runs ``chunk`` (traffic for the broker) and returns the cores the broker's
    JIT compiler used meanwhile."""
    before, started = compiler_seconds(pid), time.monotonic()
    chunk()
    return (compiler_seconds(pid) - before) / (time.monotonic() - started)


def thread_cores(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    names: dict[int, str],
    seconds: float,
) -> dict[str, float]:
    """Cores used per group of threads over ``seconds``: the Python threads the
    contestant named, librdkafka's threads (rdk:*), and the rest."""
    groups: dict[str, float] = {}
    for tid, (name, used) in after.items():
        spent = used - before.get(tid, (name, 0.0))[1]
        group = names.get(tid) or ("librdkafka" if name.startswith("rdk:") else "other")
        groups[group] = groups.get(group, 0.0) + spent
    cores = {g: round(s / seconds, 2) for g, s in sorted(groups.items(), key=lambda i: -i[1])}
    return {g: c for g, c in cores.items() if c > 0}


def reader(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 5,
        }
    )


def partitions(consumer: Consumer, topic: str) -> list[int]:
    return sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)


def end_offsets(consumer: Consumer, topic: str) -> list[TopicPartition]:
    return [
        TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1])
        for p in partitions(consumer, topic)
    ]


def drain(consumer: Consumer, wait: float) -> list[Any]:
    batch: list[Any] = consumer.consume(10_000, 0)
    if not batch:
        batch = consumer.consume(1, wait)
        if batch:
            batch += consumer.consume(10_000, 0)
    return [m for m in batch if m.error() is None]


@dataclass
class Counted:
    count: int = 0
    without_trace: int = 0
    # (monotonic time, count) when the first events were seen, and when the expected
    # number was reached.
    first: tuple[float, int] | None = None
    done_at: float | None = None


class OutputCounter:
    """Counts the committed events written to a topic from now on, on a thread."""

    def __init__(self, bootstrap: str, topic: str, expected: int) -> None:
        self.expected = expected
        self.state = Counted()
        self._consumer = reader(bootstrap, "bench-counter")
        self._consumer.assign(end_offsets(self._consumer, topic))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="counter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        state = self.state
        try:
            while not self._stop.is_set():
                batch = drain(self._consumer, 0.05)
                if not batch:
                    continue
                now = time.monotonic()
                state.without_trace += sum(
                    1 for m in batch if not any(k == "traceparent" for k, _ in m.headers() or ())
                )
                state.count += len(batch)
                if state.first is None:
                    state.first = (now, state.count)
                if state.done_at is None and state.count >= self.expected:
                    state.done_at = now
        finally:
            self._consumer.close()

    def wait(self, timeout: float, alive: Any) -> bool:
        """Until the expected count is reached, ``alive()`` turns False, or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state.done_at is not None:
                return True
            if not alive():
                return False
            time.sleep(0.02)
        return self.state.done_at is not None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[index]


@dataclass
class LatencyResult:
    rate: int
    seconds: float
    sent: int
    received: int
    achieved_rate: float
    trace_mismatches: int
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def kept_up(self) -> bool:
        """False when latency grew during the run: the loop fell behind the rate."""
        tenth = len(self.latencies_ms) // 10
        if tenth < 10:
            return True
        first = sorted(self.latencies_ms[:tenth])[tenth // 2]
        last = sorted(self.latencies_ms[-tenth:])[tenth // 2]
        return last < max(3 * first, first + 50)

    def summary(self) -> dict[str, object]:
        ordered = sorted(self.latencies_ms)
        return {
            "kept_up": self.kept_up(),
            "rate": self.rate,
            "seconds": self.seconds,
            "sent": self.sent,
            "received": self.received,
            "missing": self.sent - self.received,
            "achieved_rate": round(self.achieved_rate, 1),
            "trace_mismatches": self.trace_mismatches,
            "p50_ms": round(percentile(ordered, 50), 2),
            "p90_ms": round(percentile(ordered, 90), 2),
            "p99_ms": round(percentile(ordered, 99), 2),
            "p999_ms": round(percentile(ordered, 99.9), 2),
            "max_ms": round(ordered[-1], 2) if ordered else None,
            "mean_ms": round(sum(ordered) / len(ordered), 2) if ordered else None,
        }


def ready(consumer: Consumer, producer: Producer, topic: str, command: Record) -> None:
    """Sends one command and waits for its event: the contestant is up and owns
    its partitions (Quix, for one, restores its state first)."""
    producer.produce(topic, command.value, command.key, headers=command.headers)
    producer.flush(10)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for message in drain(consumer, 0.1):
            if envelope_pb2.Envelope.FromString(message.value()).causation_id == command.command_id:
                return
    raise TimeoutError(f"no event for a command sent to {topic} within 120 s")


def hop_latency(
    bootstrap: str,
    input_topic: str,
    output_topic: str,
    commands: Sequence[Record],
    rate: int,
    warmup: float,
) -> LatencyResult:
    """Sends ``commands`` at ``rate`` per second (the first ``warmup`` seconds are
    not counted) and times each from the moment it is handed to the producer until
    its event (causation id = command id) is read by a read_committed consumer."""
    consumer = reader(bootstrap, "bench-latency")
    consumer.assign(end_offsets(consumer, output_topic))
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 0,
        }
    )
    counted_from = round(warmup * rate)
    sent: dict[str, int] = {}
    traces = {r.command_id: r.trace_id for r in commands}
    latencies: list[float] = []
    mismatches = 0
    finished = threading.Event()
    sending: list[float] = []

    def send() -> None:
        start = time.perf_counter()
        for i, record in enumerate(commands):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent[record.command_id] = time.perf_counter_ns()
            producer.produce(input_topic, record.value, record.key, headers=record.headers)
            producer.poll(0)
        sending.append(time.perf_counter() - start)
        producer.flush(30)
        finished.set()

    ready(consumer, producer, input_topic, commands[0])
    commands = commands[1:]
    sender = threading.Thread(target=send, name="latency-sender", daemon=True)
    sender.start()
    ids = [r.command_id for r in commands]
    counted = set(ids[counted_from:])
    received = 0
    deadline: float | None = None
    while received < len(commands):
        if finished.is_set() and deadline is None:
            deadline = time.monotonic() + 10
        if deadline is not None and time.monotonic() > deadline:
            break
        for message in drain(consumer, 0.02):
            now = time.perf_counter_ns()
            event = envelope_pb2.Envelope.FromString(message.value())
            at = sent.get(event.causation_id)
            if at is None:
                continue
            received += 1
            trace = dict(message.headers() or ()).get("traceparent", b"").decode()
            if trace.split("-")[1:2] != [traces[event.causation_id]]:
                mismatches += 1
            if event.causation_id in counted:
                latencies.append((now - at) / 1e6)
    sender.join(30)
    consumer.close()
    measured = len(commands) - counted_from
    return LatencyResult(
        rate=rate,
        seconds=round(measured / rate, 1),
        sent=measured,
        received=len(latencies),
        achieved_rate=len(commands) / sending[0] if sending else 0.0,
        trace_mismatches=mismatches,
        latencies_ms=latencies,
    )


def floor_latency(bootstrap: str, topic: str, rate: int, warmup: float, seconds: float) -> LatencyResult:
    """Kafka alone: records produced at ``rate`` and read back from the same topic
    by a read_committed consumer, with no loop in between: what any hop costs at
    least on this machine and broker right now."""
    consumer = reader(bootstrap, "bench-floor")
    consumer.assign(end_offsets(consumer, topic))
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 0})
    total = round(rate * (warmup + seconds))
    counted_from = round(rate * warmup)
    sending: list[float] = []

    def send() -> None:
        start = time.perf_counter()
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            producer.produce(topic, f"{i} {time.perf_counter_ns()}".encode(), str(i % 1000).encode())
            producer.poll(0)
        sending.append(time.perf_counter() - start)
        producer.flush(30)

    sender = threading.Thread(target=send, name="floor-sender", daemon=True)
    sender.start()
    latencies: list[float] = []
    received = 0
    deadline = time.monotonic() + warmup + seconds + 30
    while received < total and time.monotonic() < deadline:
        for message in drain(consumer, 0.02):
            now = time.perf_counter_ns()
            index, at = (int(x) for x in message.value().split())
            received += 1
            if index >= counted_from:
                latencies.append((now - at) / 1e6)
    sender.join(30)
    consumer.close()
    return LatencyResult(
        rate=rate,
        seconds=seconds,
        sent=total - counted_from,
        received=len(latencies),
        achieved_rate=total / sending[0] if sending else 0.0,
        trace_mismatches=0,
        latencies_ms=latencies,
    )
