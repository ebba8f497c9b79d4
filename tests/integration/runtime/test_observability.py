"""What operators of the layer see: one trace per cascade in Kafka headers, and
Prometheus metrics of the loop."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client import REGISTRY

from contracts.customer.v1 import customer_pb2 as pb
from services.customer.app import customer
from troupe.bus import clients
from troupe.service import records
from troupe.service.runtime import Runtime, RuntimeOptions
from troupe.settings import KafkaSettings

from ..waiting import wait_until
from .helpers import unique_ids


@contextmanager
def running_customer(
    kafka: KafkaSettings, tmp_path: Path, metrics_port: int = 0, instance: str = "0"
) -> Iterator[Runtime[pb.Customer]]:
    """The customer service, started in this process, stopped on leaving."""
    options = RuntimeOptions(state_dir=tmp_path, metrics_port=metrics_port, instance=instance)
    runtime = Runtime(customer, kafka, options).start()
    try:
        yield runtime
    finally:
        runtime.stop()


def trace_id(headers: object) -> str:
    assert isinstance(headers, list)
    values = dict(headers)
    return str(values["traceparent"].decode()).split("-")[1]


def test_the_event_carries_the_trace_of_the_command_and_metrics_count_it(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    (customer_id,) = unique_ids("trace", 1)
    with running_customer(kafka, tmp_path) as runtime:
        outcome = runtime.submit(
            pb.RegisterCustomerRequest(customer_id=customer_id, name="Anna"), actor=records.user("u-7")
        )

    consumer = clients.consumer(kafka, group_id=None)
    try:
        found: dict[str, object] = {}
        for topic in (customer.commands_topic, customer.events_topic):
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            consumer.assign([TopicPartition(topic, p, 0) for p in partitions])

            def seen(topic: str = topic) -> bool:
                for message in consumer.consume(5000, 0.5):
                    if message.error() is None and message.key() == customer_id.encode():
                        found[topic] = message.headers()
                return topic in found

            wait_until(seen, 30, f"no record of {customer_id} in {topic}")
    finally:
        consumer.close()

    assert outcome.version == 1
    assert trace_id(found[customer.commands_topic]) == trace_id(found[customer.events_topic])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_metrics_are_served_in_prometheus_format(kafka: KafkaSettings, tmp_path: Path) -> None:
    port = free_port()
    (customer_id,) = unique_ids("metrics", 1)
    with running_customer(kafka, tmp_path, metrics_port=port) as runtime:
        runtime.submit(pb.RegisterCustomerRequest(customer_id=customer_id, name="A"), actor=records.user("u"))
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'troupe_handler_seconds_count{service="customer",type="RegisterCustomer"}' in body
    assert 'troupe_transactions_total{outcome="committed",service="customer"}' in body
    assert 'troupe_records_total{service="customer",topic="customer.commands"}' in body


def test_offsets_of_records_that_changed_nothing_are_committed_on_their_own_when_idle_and_counted(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    # given the customer service, which reads its own events back but reacts only to merges
    (customer_id,) = unique_ids("idle-commit", 1)
    with running_customer(kafka, tmp_path) as runtime:
        commits_before = offset_commits("customer")
        # when a customer is registered: the event comes back to the loop and produces nothing
        runtime.submit(pb.RegisterCustomerRequest(customer_id=customer_id, name="Vera"), actor=records.user("u"))
        # then the loop, idle, commits that event's offset without a transaction, and counts it
        wait_until(lambda: offset_commits("customer") > commits_before, 15, "no offset commit counted")


def offset_commits(service: str) -> float:
    return REGISTRY.get_sample_value("troupe_offset_commits_total", {"service": service}) or 0.0


def test_the_broker_knows_an_instances_consumer_by_the_service_and_instance(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    # given a running customer instance "7"
    with running_customer(kafka, tmp_path, instance="7"):
        admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})

        def members() -> set[str]:
            group = admin.describe_consumer_groups([customer.name])[customer.name].result(30)
            return {member.client_id for member in group.members}

        # when the broker is asked for the members of the customer group (once it joined),
        # then the instance's member is named after the service and the instance, so
        # that the broker's request log and per-client metrics say whose requests they are
        wait_until(lambda: "customer-7-consumer" in members(), 30, f"no member customer-7-consumer in {members()}")


def test_the_loops_time_is_counted_by_activity(kafka: KafkaSettings, tmp_path: Path) -> None:
    # given the customer service, its loop waiting for records
    (customer_id,) = unique_ids("loop-time", 1)
    with running_customer(kafka, tmp_path) as runtime:
        before = {activity: loop_seconds("customer", activity) for activity in ("waiting", "handling", "committing")}
        # when a customer is registered: one command handled, one transaction committed
        runtime.submit(pb.RegisterCustomerRequest(customer_id=customer_id, name="Ilse"), actor=records.user("u"))
        # then the loop's time handling it and committing it is counted, and so is its wait
        wait_until(lambda: loop_seconds("customer", "waiting") > before["waiting"], 15, "no waiting counted")
        assert loop_seconds("customer", "handling") > before["handling"]
        assert loop_seconds("customer", "committing") > before["committing"]


def loop_seconds(service: str, activity: str) -> float:
    return REGISTRY.get_sample_value("troupe_loop_seconds_total", {"service": service, "activity": activity}) or 0.0
