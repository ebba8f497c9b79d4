"""``troupe release up --release N`` runs two releases whose services differ, and
each runs the call cascade with its own code, against the real broker.

The history is scripted in a clone of this repository: release A is the committed
services as they are; then the customer service changes a rule (an unknown caller's
new profile is named "New caller <phone>" instead of "Caller <phone>"), and release
B names that customer version and the same versions of everything else. Each release
is started with the real CLI (``up`` as its own process, every service a process of
its own from its worktree); a call posted to the telephony webhook adapter must be
assigned to the operator on duty, and the caller's new profile must carry the name
of that release's rule.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from fastapi.testclient import TestClient

from adapters.telephony_webhook.app import create_app as webhook_app
from contracts.customer.v1 import customer_pb2 as customer_pb
from contracts.events.v1 import envelope_pb2
from contracts.interaction.v1 import interaction_pb2 as interaction_pb
from contracts.operator.v1 import operator_pb2 as operator_pb
from troupe.bus import clients
from troupe.bus.topics import ensure_topics
from troupe.release import history
from troupe.release.git import Repo
from troupe.service import records
from troupe.service.declaration import Command
from troupe.service.sender import CommandSender
from troupe.settings import KafkaSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
# The services a call goes through (docs/domain.md, "A call, from the platform to
# the operator's screen"); `up` starts just these of each release.
SERVICES = ("customer", "interaction", "operator", "routing")
RULE = 'name=f"Caller {phone}"'
NEW_RULE = 'name=f"New caller {phone}"'


@dataclass
class Clone:
    root: Path

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, text=True, check=True)
        return done.stdout

    def release(self, *argv: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "troupe.cli", "release", *argv, "--repo", str(self.root)],
            capture_output=True,
            text=True,
            cwd=self.root,
            # The clone runs its own code, but has no node_modules: use this checkout's buf.
            env={**os.environ, "TROUPE_BUF": str(ROOT / "node_modules" / ".bin" / "buf")},
        )
        assert done.returncode == 0, f"troupe release {' '.join(argv)}:\n{done.stdout}{done.stderr}"
        return done.stdout

    def last_release(self) -> int:
        number = history.last_release(Repo(self.root))
        assert number is not None
        return number

    def version(self, release: int, component: str) -> str:
        return self.git("log", "-1", "--format=%h", history.tag(release), "--", component).strip()


@dataclass
class Releases:
    clone: Clone
    before: int
    after: int


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Releases:
    """Two releases cut in a clone: the services as committed, then a changed customer rule."""
    root = tmp_path_factory.mktemp("release-cascade") / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(root)], check=True)
    clone = Clone(root)
    for key, value in (("user.name", "Rita Releaser"), ("user.email", "rita@example.com"), ("tag.gpgsign", "false")):
        clone.git("config", key, value)
    clone.git("config", "commit.gpgsign", "false")
    clone.release("bump")
    clone.release("cut", "--notes", "The services as committed")
    before = clone.last_release()
    rules = root / "services/customer/service.py"
    text = rules.read_text()
    assert RULE in text, f"the scripted change expects {RULE!r} in services/customer/service.py"
    rules.write_text(text.replace(RULE, NEW_RULE))
    clone.git("commit", "-q", "-am", "Customer: an unknown caller is a New caller")
    clone.release("bump", "customer")
    clone.release("cut", "--notes", "New callers are named so")
    return Releases(clone, before, clone.last_release())


class Tail:
    """The events of some topics from now on, in arrival order."""

    def __init__(self, kafka: KafkaSettings, topics: list[str]) -> None:
        self.consumer = clients.consumer(kafka, group_id=None)
        assignment = []
        for topic in topics:
            for partition in self.consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                assignment.append(TopicPartition(topic, partition, self._end(topic, partition)))
        self.consumer.assign(assignment)
        self.seen: list[envelope_pb2.Envelope] = []

    def _end(self, topic: str, partition: int) -> int:
        return clients.watermarks(self.consumer, TopicPartition(topic, partition))[1]

    def wait_for(self, check: Callable[[envelope_pb2.Envelope], bool], what: str, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for found in self.seen:
                if check(found):
                    return found
            for message in self.consumer.consume(500, 0.2):
                if message.error() is None:
                    self.seen.append(envelope_pb2.Envelope.FromString(message.value() or b""))
        raise AssertionError(f"timed out waiting for {what}; seen: {sorted({e.type for e in self.seen})}")

    def close(self) -> None:
        self.consumer.close()


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start(kafka: KafkaSettings, releases: Releases, tmp_path: Path) -> Iterator[Callable[[int], Running]]:
    """Starts ``troupe release up --release N customer interaction ...`` as the CLI does."""
    started: list[Running] = []
    ensure_topics(kafka, [f"{s}.{kind}" for s in SERVICES for kind in ("events", "commands", "dlq")])

    def up(number: int) -> Running:
        log = tmp_path / f"release-{number}.log"
        env = dict(
            os.environ,
            TROUPE_KAFKA__BOOTSTRAP_SERVERS=kafka.bootstrap_servers,
            TROUPE_KAFKA__SECURITY_PROTOCOL=kafka.security_protocol,
            TROUPE_KAFKA__PARTITIONS=str(kafka.partitions),
            TROUPE_LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "troupe.cli", "release", "up", "--release", str(number)),
                    *SERVICES,
                    *("--repo", str(releases.clone.root), "--state-dir", str(tmp_path / "state")),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp_path,
                start_new_session=True,
            )
        started.append(Running(process, log))
        return started[-1]

    yield up
    for running in started:
        stop(running)


def stop(running: Running) -> None:
    """SIGTERM to ``up`` stops its components; anything left of its session is killed."""
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            running.process.wait(30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(running.process.pid, signal.SIGKILL)
    running.process.wait()


def operator_on_duty(sender: CommandSender, site: str, skill: str) -> str:
    operator_id = f"op-{uuid.uuid4().hex[:8]}"
    register = operator_pb.RegisterOperatorRequest(operator_id=operator_id, name=operator_id, site=site, skills=[skill])
    available = operator_pb.SetPresenceRequest(operator_id=operator_id, presence=operator_pb.PRESENCE_AVAILABLE)
    for payload in (register, available):
        sender.send(Command(operator_id, payload), actor=records.user(operator_id))
    return operator_id


def call(sender: CommandSender, site: str, skill: str, caller: str) -> str:
    response = TestClient(webhook_app(sender)).post(
        f"/sites/{site}/events",
        json={
            "id": f"evt-{uuid.uuid4().hex}",
            "type": "call.started",
            "occurred_at": datetime.now(UTC).isoformat(),
            "call": {"id": uuid.uuid4().hex, "from": caller, "line": skill},
        },
    )
    assert response.status_code == 202, response.text
    return str(response.json()["interaction_id"])


def state(event: envelope_pb2.Envelope, message: Any) -> Any:
    assert event.state.Unpack(message)
    return message


def run_a_call(kafka: KafkaSettings, running: Running) -> customer_pb.Customer:
    """A call through the running release: assigned to the one operator on duty at a
    new site; returns the caller's new profile. The skill is new too: calls other
    tests left waiting on this broker overflow to any site after a while, and must
    not take this operator."""
    site = f"site-{uuid.uuid4().hex[:6]}"
    skill = f"skill-{uuid.uuid4().hex[:6]}"
    digits = f"{random.randrange(10**7):07d}"
    tail = Tail(kafka, ["interaction.events", "customer.events"])
    sender = CommandSender(kafka, "release-cascade-test")
    try:
        operator_id = operator_on_duty(sender, site, skill)
        interaction_id = call(sender, site, skill, f"8 (916) {digits[:3]}-{digits[3:5]}-{digits[5:]}")
        try:
            assigned = tail.wait_for(
                lambda e: e.entity_id == interaction_id and e.type == "InteractionAssigned",
                f"the call {interaction_id} to be assigned",
                timeout=60,
            )
            interaction = state(assigned, interaction_pb.Interaction())
            assert interaction.operator_id == operator_id
            assert interaction.state == interaction_pb.STATE_ASSIGNED
            registered = tail.wait_for(
                lambda e: e.type == "CallerRegistered" and e.correlation_id == interaction_id,
                "the caller's new profile",
                timeout=30,
            )
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- troupe release up:\n{running.output()[-4000:]}") from error
        profile: customer_pb.Customer = state(registered, customer_pb.Customer())
        assert interaction.customer_id in ("", profile.customer_id)
        assert list(profile.phones) == [f"+7916{digits}"]
        return profile
    finally:
        sender.close()
        tail.close()


def started_versions(running: Running) -> dict[str, str]:
    """``started services/customer@abc1234 (pid 42)`` lines of ``up``'s output."""
    found = {}
    for line in running.output().splitlines():
        if line.startswith("started "):
            component, version = line.split()[1].split("@")
            found[component] = version
    return found


def test_up_runs_two_releases_each_with_its_own_service_versions(
    kafka: KafkaSettings, releases: Releases, start: Callable[[int], Running]
) -> None:
    clone = releases.clone
    components = [f"services/{s}" for s in SERVICES]
    versions = {n: {c: clone.version(n, c) for c in components} for n in (releases.before, releases.after)}
    # Only the customer service differs between the two releases.
    changed = [c for c in components if versions[releases.before][c] != versions[releases.after][c]]
    assert changed == ["services/customer"]

    for number, name in ((releases.before, "Caller"), (releases.after, "New caller")):
        running = start(number)
        profile = run_a_call(kafka, running)
        assert profile.name.startswith(f"{name} +7916"), profile.name
        stop(running)
        assert running.process.returncode == 0, running.output()[-4000:]
        assert started_versions(running) == versions[number]
        assert "stopping" in running.output()
