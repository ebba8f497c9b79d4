"""Records declared not urgent wait a moment for an urgent one to share its
transaction; alone, they are handled once the wait is over."""

from __future__ import annotations

import time
from pathlib import Path

from contracts.customer.v1 import customer_pb2 as pb
from troupe.service import records
from troupe.service.declaration import Command
from troupe.service.runtime import Runtime, RuntimeOptions
from troupe.service.sender import CommandSender
from troupe.settings import KafkaSettings

from .helpers import patient_customer, read_events, unique_ids

ACTOR = records.system("test")


def test_a_record_that_may_wait_shares_the_transaction_of_the_next_urgent_one(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    # Given a service whose loyalty points may wait up to 20 s, and a registered customer
    runtime = Runtime(
        patient_customer(), kafka, RuntimeOptions(state_dir=tmp_path, grpc_address=None, non_urgent_wait=20.0)
    ).start()
    sender = CommandSender(kafka, "test")
    loyal, newcomer = unique_ids("urgency", 2)
    try:
        sender.send(Command(loyal, pb.RegisterCustomerRequest(customer_id=loyal, name="L")), actor=ACTOR)
        read_events(runtime.kafka, "customer.events", {loyal}, 1, timeout=60)

        # When points are awarded, and a moment later a new customer registers
        awarded = sender.send(Command(loyal, pb.AwardLoyaltyPointsRequest(customer_id=loyal, points=5)), actor=ACTOR)
        time.sleep(0.5)
        sender.send(Command(newcomer, pb.RegisterCustomerRequest(customer_id=newcomer, name="N")), actor=ACTOR)

        # Then both are decided in one batch (one clock reading, one transaction),
        # long before the points' wait was over
        events = read_events(runtime.kafka, "customer.events", {loyal, newcomer}, 3, timeout=15)
        (points,) = [e for e in events if e.causation_id == awarded]
        (registration,) = [e for e in events if e.entity_id == newcomer]
        assert points.occurred_at == registration.occurred_at
        assert points.type == "LoyaltyPointsChanged"
    finally:
        sender.close()
        runtime.stop()


def test_a_record_that_may_wait_alone_is_handled_once_the_wait_is_over(kafka: KafkaSettings, tmp_path: Path) -> None:
    # Given a service whose loyalty points may wait up to 2 s, and a registered customer
    runtime = Runtime(
        patient_customer(), kafka, RuntimeOptions(state_dir=tmp_path, grpc_address=None, non_urgent_wait=2.0)
    ).start()
    sender = CommandSender(kafka, "test")
    (loyal,) = unique_ids("urgency-alone", 1)
    try:
        sender.send(Command(loyal, pb.RegisterCustomerRequest(customer_id=loyal, name="L")), actor=ACTOR)
        read_events(runtime.kafka, "customer.events", {loyal}, 1, timeout=60)

        # When points are awarded and nothing else arrives
        sent_at = time.time()
        awarded = sender.send(Command(loyal, pb.AwardLoyaltyPointsRequest(customer_id=loyal, points=5)), actor=ACTOR)

        # Then they are decided after their wait, not lost nor held longer
        events = read_events(runtime.kafka, "customer.events", {loyal}, 2, timeout=60)
        (points,) = [e for e in events if e.causation_id == awarded]
        waited = points.occurred_at.ToNanoseconds() / 1e9 - sent_at
        assert 1.9 <= waited < 30, waited
        current = runtime.read(loyal, min_version=2)
        assert current is not None
        assert current.state.loyalty_points == 5
    finally:
        sender.close()
        runtime.stop()
