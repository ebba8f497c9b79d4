"""The audit against the real broker: durable before forwarding, chains that verify,
no record lost or duplicated across a kill -9, and the spool while Kafka is down."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

# The unit tests' helpers (token minting with `cryptography`, servers, echo upstream).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "sidecar"))
from confluent_kafka import Producer

from contracts.audit.v1.audit_pb2 import AUDIT_OUTCOME_ALLOWED, AuditEntry, AuditRecord
from sidecar.audit import Chain, entry_of, verify_records
from sidecar.audit_kafka import AuditWriterConfig, KafkaAuditLog, read_all
from sidecar.proxy import ProxyConfig, SidecarApp
from sidecar.rules import Rules
from sidecar.tokens import Issuer, TokenVerifier
from tests.unit.sidecar.sidecar_harness import EchoService, raw_request, serve
from tests.unit.sidecar.sidecar_mint import AUDIENCE, SigningKey, claims, jwks, mint
from troupe.bus.topics import ensure_topics
from troupe.cli import main
from troupe.kafka.local import LocalCluster
from troupe.settings import KafkaSettings, settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
KEY = SigningKey.generate("RS256", "rsa-audit")
RULES_YAML = """
service: tickets
rules:
  - {roles: [operator], methods: [GET, POST], paths: ["/tickets/{entity}"]}
"""


def instance_records(kafka: KafkaSettings, instance: str) -> list[AuditRecord]:
    return [r for r in read_all(kafka) if r.instance_id == instance]


@pytest.fixture
def start_log(
    kafka: KafkaSettings, tmp_path: Path, unique_name: Callable[[str], str]
) -> Iterator[Callable[..., KafkaAuditLog]]:
    instance = unique_name("tickets")
    started: list[KafkaAuditLog] = []

    def start(**config: Any) -> KafkaAuditLog:
        log = KafkaAuditLog(kafka, AuditWriterConfig(
            instance_id=instance, spool_dir=tmp_path / "spool", **config))
        log.start()
        assert log.wait_ready(30)
        started.append(log)
        return log

    yield start
    for log in started:
        log.stop()


def test_records_are_durable_in_kafka_and_a_restart_continues_the_chain(
    kafka: KafkaSettings, start_log: Callable[..., KafkaAuditLog]
) -> None:
    log = start_log()

    async def write(count: int) -> list[AuditRecord]:
        return list(await asyncio.gather(*(
            log.write(AuditEntry(entity_id=f"T-{n}")) for n in range(count))))

    written = asyncio.run(write(50))
    assert sorted(r.sequence for r in written) == list(range(1, 51))
    instance = log.config.instance_id
    log.stop()
    log = start_log()
    assert log.chain is not None
    assert log.chain.head.sequence == 50
    asyncio.run(write(5))
    found = instance_records(kafka, instance)
    assert [r.sequence for r in found] == list(range(1, 56))
    assert verify_records(found).ok
    assert log.spooled == 0


@dataclass
class Sidecar:
    port: int
    echo: EchoService
    log: KafkaAuditLog


@pytest.fixture
def sidecar(start_log: Callable[..., KafkaAuditLog]) -> Iterator[Sidecar]:
    log = start_log(kafka_timeout=3.0)
    echo = EchoService()
    issuer = Issuer(issuer="https://idp.test", jwks_url="https://idp.test/jwks",
                    audiences=(AUDIENCE,))
    verifier = TokenVerifier([issuer], fetch=lambda _url, _timeout: jwks(KEY))
    with serve(echo) as upstream:
        app = SidecarApp(ProxyConfig(service="tickets", upstream=f"http://127.0.0.1:{upstream}",
                                     rules=Rules.from_yaml(RULES_YAML), verifier=verifier,
                                     audit=log))
        with serve(app, backlog=4096) as port:
            yield Sidecar(port, echo, log)


def token() -> str:
    result: str = mint(KEY, claims(iss="https://idp.test"))
    return result


async def post_many(port: int, ids: list[str], concurrency: int,
                    tok: str | None = None, on_done: Callable[[int], None] | None = None,
                    ) -> dict[str, int]:
    """POSTs one change per id (its request id) at most ``concurrency`` at a time;
    returns the status per id (0: the connection failed)."""
    statuses: dict[str, int] = {}
    limit = asyncio.Semaphore(concurrency)
    authorization = f"Bearer {tok or token()}"

    async def one(request_id: str) -> None:
        async with limit:
            try:
                status, _ = await raw_request(
                    port, "POST", f"/tickets/{request_id}",
                    {"Authorization": authorization, "X-Request-Id": request_id,
                     "Content-Type": "application/json"}, b"{}", timeout=30)
            except (OSError, TimeoutError, IndexError, ValueError):
                status = 0
            statuses[request_id] = status
            if on_done is not None:
                on_done(len(statuses))

    await asyncio.gather(*(one(i) for i in ids))
    return statuses


def test_1000_concurrent_changes_give_1000_records_whose_chain_verifies(
    kafka: KafkaSettings, sidecar: Sidecar
) -> None:
    ids = [f"c-{n}" for n in range(1000)]
    started = time.monotonic()
    statuses = asyncio.run(post_many(sidecar.port, ids, concurrency=1000))
    elapsed = time.monotonic() - started
    assert set(statuses.values()) == {200}, elapsed
    found = instance_records(kafka, sidecar.log.config.instance_id)
    assert len(found) == 1000
    assert verify_records(found).ok
    entries = [entry_of(r) for r in found]
    assert sorted(e.request_id for e in entries) == sorted(ids)
    assert {e.outcome for e in entries} == {AUDIT_OUTCOME_ALLOWED}
    assert {e.entity_id for e in entries} == set(ids)
    assert sorted(s.headers["x-request-id"] for s in sidecar.echo.seen) == sorted(ids)


def test_kill_9_mid_load_loses_and_duplicates_nothing(
    kafka: KafkaSettings, tmp_path: Path, unique_name: Callable[[str], str]
) -> None:
    instance = unique_name("tickets-k9")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_YAML)
    echo = EchoService()

    async def keys_app(scope: Any, _receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": jwks(KEY)})

    with serve(echo) as upstream, serve(keys_app) as keys_port:
        issuer = f"http://127.0.0.1:{keys_port}"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = [
            sys.executable, "-m", "troupe.cli", "sidecar", "run", "--service", "tickets",
            "--rules", str(rules), "--upstream", f"http://127.0.0.1:{upstream}",
            "--listen", f"127.0.0.1:{port}", "--issuer", issuer,
            "--jwks-url", f"{issuer}/jwks", "--audience", AUDIENCE, "--instance-id", instance,
            "--spool-dir", str(tmp_path / "spool"),
        ]
        env = {**os.environ, "TROUPE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers}

        def start() -> subprocess.Popen[bytes]:
            process = subprocess.Popen(command, cwd=ROOT, env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/tickets/x", timeout=1)
                    return process
                except httpx.HTTPError:
                    time.sleep(0.2)
            process.kill()
            raise AssertionError(process.stderr.read().decode() if process.stderr else "")

        tok = mint(KEY, claims(iss=issuer))

        def load(ids: list[str], process: subprocess.Popen[bytes],
                 kill_after: int | None = None) -> dict[str, int]:
            def done(count: int) -> None:
                if count == kill_after:
                    os.kill(process.pid, signal.SIGKILL)

            return asyncio.run(post_many(port, ids, 50, tok, done))

        first = start()
        before = load([f"a-{n}" for n in range(600)], first, kill_after=150)
        first.wait(10)
        assert first.returncode == -signal.SIGKILL
        second = start()
        try:
            after = load([f"b-{n}" for n in range(200)], second)
        finally:
            second.terminate()
            second.wait(20)

    ok_before = {i for i, s in before.items() if s == 200}
    assert 150 <= len(ok_before) < 600  # the kill happened mid-load
    assert set(after.values()) == {200}
    found = instance_records(kafka, instance)
    report = verify_records(found)
    assert report.ok, report.problems[:5]
    sequences = [r.sequence for r in found]
    assert sequences == list(range(1, len(found) + 1))  # none lost, none duplicated
    audited = [entry_of(r).request_id for r in found]
    assert len(audited) == len(set(audited))
    forwarded = {s.headers["x-request-id"] for s in echo.seen}
    assert forwarded <= set(audited), "a change reached the service unaudited"
    assert ok_before | set(after) <= set(audited)
    assert len(echo.seen) == len(forwarded)  # every change forwarded once


# How long the broker stays down: a minute, the scenario the audit must survive
# (TROUPE_SIDECAR_TEST_OUTAGE_SECONDS shortens it while working on the sidecar).
OUTAGE_SECONDS = float(os.environ.get("TROUPE_SIDECAR_TEST_OUTAGE_SECONDS", "60"))


def test_kafka_stopped_changes_wait_in_the_spool_and_are_forwarded_later(
    kafka: KafkaSettings, kafka_cluster: LocalCluster, sidecar: Sidecar
) -> None:
    assert set(asyncio.run(post_many(sidecar.port, ["s-0", "s-1"], 2)).values()) == {200}
    kafka_cluster.stop_broker(0)
    down: dict[str, int] = {}
    try:
        stopped = time.monotonic()
        batch = 0
        while time.monotonic() - stopped < OUTAGE_SECONDS:
            ids = [f"down-{batch}-{n}" for n in range(5)]
            down.update(asyncio.run(post_many(sidecar.port, ids, 5)))
            batch += 1
            time.sleep(0.5)
        # Every change either waited in the spool (200) or was refused (503); none
        # reached the service without its record.
        assert set(down.values()) <= {200, 503}
        assert sidecar.log.spooled >= list(down.values()).count(200) > 0
        assert len(sidecar.log.spool.records) == sidecar.log.spooled
    finally:
        kafka_cluster.start_broker(0)
    deadline = time.monotonic() + 90
    while sidecar.log.spool.records and time.monotonic() < deadline:
        time.sleep(0.5)
    assert sidecar.log.spool.records == []
    assert set(asyncio.run(post_many(sidecar.port, ["after-1"], 1)).values()) == {200}
    found = instance_records(kafka, sidecar.log.config.instance_id)
    assert verify_records(found).ok
    audited = [entry_of(r).request_id for r in found]
    forwarded = [s.headers["x-request-id"] for s in sidecar.echo.seen]
    assert sorted(audited) == sorted(forwarded)  # each change once, each with its record
    assert {i for i, status in down.items() if status == 200} <= set(audited)


def test_troupe_audit_verify_detects_missing_altered_and_reordered_records(
    kafka: KafkaSettings, unique_name: Callable[[str], str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    chain = Chain("verify-0")
    sealed = [chain.seal(AuditEntry(entity_id=f"T-{n}").SerializeToString()) for n in range(6)]
    altered = AuditRecord()
    altered.CopyFrom(sealed[1])
    altered.entry = AuditEntry(entity_id="T-999").SerializeToString()
    clean_topic, bad_topic = unique_name("audit.clean"), unique_name("audit.bad")
    ensure_topics(kafka, [clean_topic, bad_topic])
    producer = Producer(kafka.client_config())
    for record in sealed:
        producer.produce(clean_topic, record.SerializeToString(), b"verify-0", partition=0)
    for record in (sealed[0], altered, sealed[3], sealed[5], sealed[4]):
        producer.produce(bad_topic, record.SerializeToString(), b"verify-0", partition=0)
    assert producer.flush(30) == 0
    monkeypatch.setenv("TROUPE_KAFKA__BOOTSTRAP_SERVERS", kafka.bootstrap_servers)
    settings.cache_clear()
    try:
        assert main(["audit", "verify", "--topic", clean_topic]) == 0
        assert "OK: 6 records, 1 chains, 0 problems" in capsys.readouterr().out
        assert main(["audit", "verify", "--topic", bad_topic]) == 1
        out = capsys.readouterr().out
    finally:
        settings.cache_clear()
    assert "PROBLEM verify-0 #2: altered" in out
    assert "PROBLEM verify-0 #3: missing" in out
    assert "PROBLEM verify-0 #5: reordered" in out
    assert "FAILED: 5 records, 1 chains, 3 problems" in out
