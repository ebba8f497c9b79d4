"""Changes to one entity are serialized; instances join and leave under load."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from contracts.customer.v1 import customer_pb2 as pb
from contracts.customer.v1 import customer_pb2_grpc
from services.customer.app import customer
from troupe.grpc.client import channel
from troupe.service import records
from troupe.service.declaration import Command, Service
from troupe.service.runtime import Runtime, RuntimeOptions
from troupe.service.sender import CommandSender
from troupe.settings import KafkaSettings

from .helpers import by_entity, patient_customer, read_events, unique_ids

ACTOR = records.system("test")


def test_50_concurrent_changes_to_one_entity_give_50_versions(kafka: KafkaSettings, tmp_path: Path) -> None:
    # Given two instances serving gRPC, and one customer
    instances = [
        Runtime(customer, kafka, RuntimeOptions(state_dir=tmp_path, instance=name)).start() for name in ("a", "b")
    ]
    try:
        addresses = [f"127.0.0.1:{runtime.grpc.port}" for runtime in instances if runtime.grpc]
        stub = customer_pb2_grpc.CustomerServiceStub(channel(addresses))
        (customer_id,) = unique_ids("fifty", 1)
        stub.RegisterCustomer(pb.RegisterCustomerRequest(customer_id=customer_id, name="Anna"), timeout=20)

        # When 50 changes arrive at once, spread over both instances
        def award(_: int) -> int:
            reply = stub.AwardLoyaltyPoints(pb.AwardLoyaltyPointsRequest(customer_id=customer_id, points=1), timeout=30)
            return reply.result.entity_version

        with ThreadPoolExecutor(max_workers=50) as pool:
            versions = list(pool.map(award, range(50)))

        # Then each got its own version, none lost
        assert sorted(versions) == list(range(2, 52))
        latest = stub.GetCustomer(pb.GetCustomerRequest(customer_id=customer_id, min_version=51), timeout=10)
        assert latest.version == 51
        assert latest.customer.loyalty_points == 50
    finally:
        for runtime in instances:
            runtime.stop()


def test_grpc_serves_health_and_reflection_for_stock_tools(kafka: KafkaSettings, tmp_path: Path) -> None:
    runtime = Runtime(customer, kafka, RuntimeOptions(state_dir=tmp_path)).start()
    try:
        assert runtime.grpc is not None
        conn = grpc.insecure_channel(f"127.0.0.1:{runtime.grpc.port}")
        health = health_pb2_grpc.HealthStub(conn).Check(
            health_pb2.HealthCheckRequest(service="contracts.customer.v1.CustomerService"),
            timeout=5,
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING

        reflection = reflection_pb2_grpc.ServerReflectionStub(conn)
        answers = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        listed = {s.name for answer in answers for s in answer.list_services_response.service}
        assert {"contracts.customer.v1.CustomerService", "grpc.health.v1.Health"} <= listed

        refused = None
        try:
            customer_pb2_grpc.CustomerServiceStub(conn).GetCustomer(
                pb.GetCustomerRequest(customer_id="nobody-at-all"), timeout=5
            )
        except grpc.RpcError as error:
            refused = error
        assert refused is not None
        assert refused.code() == grpc.StatusCode.NOT_FOUND
    finally:
        runtime.stop()


@pytest.mark.parametrize("service", [customer, patient_customer()], ids=["urgent", "may-wait"])
def test_a_rebalance_under_load_loses_and_duplicates_nothing(
    kafka: KafkaSettings, tmp_path: Path, service: Service[pb.Customer]
) -> None:
    # Given one instance processing a stream of changes (which, in the second case, may
    # wait for company: batches take in more records while partitions are given up)
    first = Runtime(service, kafka, RuntimeOptions(state_dir=tmp_path, instance="r1")).start()
    ids = unique_ids("rebalance", 30)
    sender = CommandSender(kafka, "test")
    for customer_id in ids:
        sender.send_nowait(
            Command(customer_id, pb.RegisterCustomerRequest(customer_id=customer_id, name="N")),
            actor=ACTOR,
        )
    stop_sending = threading.Event()
    sent: list[str] = []

    def stream() -> None:
        n = 0
        while not stop_sending.is_set() and n < 6_000:
            customer_id = ids[n % len(ids)]
            future = sender.send_nowait(
                Command(customer_id, pb.AwardLoyaltyPointsRequest(customer_id=customer_id, points=1)),
                actor=ACTOR,
            )
            sent.append(future.result(30))
            n += 1

    producer_thread = threading.Thread(target=stream)
    producer_thread.start()
    # When a second instance joins, then the first one leaves, while changes flow
    second = Runtime(service, kafka, RuntimeOptions(state_dir=tmp_path, instance="r2")).start()
    third = Runtime(service, kafka, RuntimeOptions(state_dir=tmp_path, instance="r3")).start()
    first.stop()
    producer_thread.join(120)
    stop_sending.set()
    try:
        # Then every change appears exactly once, in order, per customer
        events = read_events(kafka, customer.events_topic, set(ids), len(ids) + len(sent), timeout=120)
        causes = [e.causation_id for e in events if e.type == "LoyaltyPointsChanged"]
        assert len(causes) == len(sent)
        assert set(causes) == set(sent)
        for customer_id, history in by_entity(events).items():
            assert [e.entity_version for e in history] == list(range(1, len(history) + 1)), customer_id
    finally:
        sender.close()
        second.stop()
        third.stop()
