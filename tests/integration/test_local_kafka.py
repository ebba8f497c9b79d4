"""The local Apache Kafka cluster: 3 KRaft nodes replicate, survive a node down, restart."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer

# NewTopic is documented under confluent_kafka.admin but missing from its typed exports.
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from troupe.kafka.local import REQUEST_LOG, LocalCluster
from troupe.settings import settings

from .waiting import wait_until

pytestmark = pytest.mark.integration

# Away from the default 19092 so a developer's own `troupe kafka up` is left alone.
BASE_PORT = 29092


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    data_dir: Path = tmp_path_factory.mktemp("kafka")
    local = LocalCluster(data_dir, brokers=3, base_port=BASE_PORT, cache_dir=settings().cache_dir, log_requests=True)
    try:
        local.start(timeout=120)
        yield local
    finally:
        local.stop()


def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    """Produce one record with acks=all and fail unless the brokers acknowledge it."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": 30000,
        }
    )
    outcome: list[KafkaError | None] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        outcome.append(err)

    producer.produce(topic, value=value, callback=delivered)
    assert producer.flush(40) == 0, "the record was not delivered in time"
    assert outcome == [None]


def _consume_all(bootstrap: str, topic: str, count: int) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    values: list[bytes] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(values) < count and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            values.append(msg.value() or b"")
    finally:
        consumer.close()
    return values


def _replicas(admin: AdminClient, topic: str, timeout: float = 30) -> list[int]:
    """The replicas of the topic's partition 0, once the broker asked knows the
    new topic (metadata reaches each of the three brokers a moment apart)."""
    deadline = time.monotonic() + timeout
    while True:
        partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
        if 0 in partitions or time.monotonic() > deadline:
            return list(partitions[0].replicas)
        time.sleep(0.2)


def test_three_brokers_replicate_survive_a_node_down_and_restart(cluster: LocalCluster) -> None:
    bootstrap = cluster.bootstrap_servers
    assert bootstrap == "127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094"
    assert cluster.running()

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"local-kafka-{uuid.uuid4().hex[:8]}"
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3)])
    futures[topic].result(timeout=30)
    assert sorted(_replicas(admin, topic)) == [0, 1, 2]

    _produce(bootstrap, topic, b"first")
    assert _consume_all(bootstrap, topic, 1) == [b"first"]

    # With min.insync.replicas=2, acks=all still succeeds with one node of three down.
    cluster.stop_broker(2)
    assert not cluster.broker_running(2)
    assert not cluster.running()
    _produce(bootstrap, topic, b"second")

    # The node comes back on the same data and rejoins the cluster.
    cluster.start_broker(2)
    assert cluster.running()
    assert _consume_all(bootstrap, topic, 2) == [b"first", b"second"]

    # After a crash, start() brings the node back on its existing storage, never reformatting.
    meta = cluster.data_dir / "node-0" / "data" / "meta.properties"
    formatted = meta.read_text()
    cluster.kill_broker(0)
    assert not cluster.broker_running(0)
    cluster.start(timeout=120)
    assert cluster.running()
    assert meta.read_text() == formatted
    cluster_id = (cluster.data_dir / "cluster.id").read_text().strip()
    assert admin.list_topics(timeout=10).cluster_id == cluster_id


def test_nodes_are_out_of_reach_of_the_callers_ctrl_c_and_scheduled_with_it(cluster: LocalCluster) -> None:
    # given the nodes this process started
    pids = [cluster.pid(i) for i in range(3)]
    # then each leads a process group of its own, which a Ctrl-C in the caller's terminal does not reach
    for pid in pids:
        assert pid is not None
        assert os.getpgid(pid) == pid != os.getpgid(0)
    # and stays in the caller's session, which Linux schedules as one group with the
    # services started from it (a session of its own cost them CPU: docs/benchmarks.md)
    assert {os.getsid(pid) for pid in pids if pid is not None} == {os.getsid(0)}


def test_a_cluster_started_to_log_requests_logs_each_with_its_client_and_time(cluster: LocalCluster) -> None:
    # given a client with an id of its own
    client_id = f"probe-{uuid.uuid4().hex[:8]}"
    before_ms = time.time_ns() // 1_000_000
    # when it asks the cluster for its metadata
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers, "client.id": client_id})
    admin.list_topics(timeout=30)

    # then a node's request log has a line for it: the time, then the request with the client's id
    def logged() -> list[str]:
        return [
            line
            for i in range(cluster.brokers)
            if cluster.request_log(i).exists()
            for line in cluster.request_log(i).read_text().splitlines()
            if f'"clientId":"{client_id}"' in line
        ]

    lines = wait_until(logged, timeout=10, what=f"a logged request of {client_id}")
    assert any('"requestApiKeyName":"METADATA"' in line for line in lines)
    assert all(before_ms <= int(line.split(" ", 1)[0]) <= time.time_ns() // 1_000_000 for line in lines)
    # and formatting the nodes, run from the caller's directory, left no request log there
    assert not (Path.cwd() / REQUEST_LOG).exists()
