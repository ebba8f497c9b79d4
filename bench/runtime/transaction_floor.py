"""The floor of one exactly-once hop on this machine: the barest transactional loop
(consume → produce the same record → send offsets → commit, two transactional
producers taking turns as the runtime's do, no decoding, no store), at a steady
rate, timed per 10 s window so a broker still warming up shows as such.

    troupe kafka up --port 22092
    .venv/bin/python -m bench.runtime.transaction_floor --bootstrap 127.0.0.1:22092 --seconds 180

Per window: the loop's batch size, its send_offsets and commit calls, and the hop
(record produced → its copy read by a read_committed consumer), p50 / p99 in ms.
No loop that commits a transaction per hop can do better than this here.

With ``--broker-pid`` each window also gives the broker's CPU per transaction; with
``--burst N`` the records arrive N at a time (same rate, N times fewer transactions),
which shows what the broker's CPU follows:

    .venv/bin/python -m bench.runtime.transaction_floor --bootstrap 127.0.0.1:22092 \
        --rate 50 --seconds 300 --broker-pid "$(pgrep -f kafka.Kafka)" --burst 5
"""

from __future__ import annotations

import argparse
import itertools
import struct
import threading
import time
import uuid

from confluent_kafka import Producer, TopicPartition

from troupe.bus.topics import ensure_topics
from troupe.settings import KafkaSettings

from .measure import cpu_seconds, drain, percentile, reader
from .plain import loop_consumer, loop_producer

STAMP = struct.Struct("d")  # the moment a record was handed to the producer (perf_counter)


class Windows:
    """Samples (ms) by name, per window of ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.perf_counter()
        self.samples: dict[tuple[int, str], list[float]] = {}
        self.lock = threading.Lock()

    def add(self, name: str, value: float) -> None:
        window = int((time.perf_counter() - self.started) / self.seconds)
        with self.lock:
            self.samples.setdefault((window, name), []).append(value)

    def count(self, window: int, name: str) -> int:
        with self.lock:
            return len(self.samples.get((window, name), []))

    def report(self, window: int, broker: str = "") -> str:
        with self.lock:
            parts = [broker] if broker else []
            for name in ("batch", "send_offsets", "commit", "hop"):
                values = sorted(self.samples.get((window, name), []))
                if values:
                    parts.append(f"{name} {percentile(values, 50):.1f} / {percentile(values, 99):.1f}")
        start = window * self.seconds
        return f"{start:4.0f}-{start + self.seconds:.0f} s: " + ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.runtime.transaction_floor", description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--rate", type=int, default=1_000, help="records/s")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=1, help="records handed over at once")
    parser.add_argument("--broker-pid", type=int, default=None, help="report the broker's CPU")
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    source_topic, output_topic = f"bench.floor.{run}.in", f"bench.floor.{run}.out"
    ensure_topics(KafkaSettings(bootstrap_servers=args.bootstrap, partitions=6), [source_topic, output_topic])
    # The runtime's settings, as the plain loop has them; two producers taking turns.
    producers = itertools.cycle([loop_producer(args.bootstrap, f"bench-floor-{run}-{n}") for n in range(2)])
    source = loop_consumer(args.bootstrap, f"bench-floor-{run}")
    source.subscribe([source_topic])
    output = reader(args.bootstrap, f"bench-floor-{run}-reader")
    output.subscribe([output_topic])
    windows = Windows(args.window)
    stop = threading.Event()

    def send() -> None:
        feeder = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 2, "enable.idempotence": True})
        started = time.perf_counter()
        for n in itertools.count():
            if stop.is_set():
                break
            feeder.produce(source_topic, STAMP.pack(time.perf_counter()), str(n % 1_000).encode())
            feeder.poll(0)
            if args.burst > 1:
                if (n + 1) % args.burst:
                    continue
                feeder.flush(5)  # the burst reaches the loop together
            ahead = started + (n + 1) / args.rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        feeder.flush(5)

    def read() -> None:
        while not stop.is_set():
            for record in drain(output, 0.05):
                windows.add("hop", 1000 * (time.perf_counter() - STAMP.unpack(record.value())[0]))

    threads = [threading.Thread(target=send, daemon=True), threading.Thread(target=read, daemon=True)]
    for thread in threads:
        thread.start()
    reported = 0
    broker_cpu = cpu_seconds(args.broker_pid)
    deadline = time.perf_counter() + args.seconds
    while time.perf_counter() < deadline:
        records = drain(source, 0.1)
        if records:
            producer = next(producers)
            producer.begin_transaction()
            last: dict[int, int] = {}
            for record in records:
                producer.produce(output_topic, record.value(), record.key())
                last[record.partition()] = record.offset()
            offsets = [TopicPartition(source_topic, p, o + 1) for p, o in last.items()]
            sent = time.perf_counter()
            producer.send_offsets_to_transaction(offsets, source.consumer_group_metadata(), 30)
            committing = time.perf_counter()
            producer.commit_transaction(30)
            windows.add("batch", len(records))
            windows.add("send_offsets", 1000 * (committing - sent))
            windows.add("commit", 1000 * (time.perf_counter() - committing))
        elapsed = int((time.perf_counter() - windows.started) / args.window)
        if elapsed > reported:
            broker = ""
            if args.broker_pid:
                now = cpu_seconds(args.broker_pid)
                used, broker_cpu = now - broker_cpu, now
                # One commit sample per transaction of the window.
                per_transaction = 1000 * used / max(windows.count(reported, "commit"), 1)
                broker = f"broker {used / args.window:.2f} cores, {per_transaction:.1f} ms/transaction"
            print(windows.report(reported, broker), flush=True)
            reported = elapsed
    stop.set()
    for thread in threads:
        thread.join(5)
    source.close()
    output.close()


if __name__ == "__main__":
    main()
