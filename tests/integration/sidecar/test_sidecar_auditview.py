"""The audit view against the real broker: queries by user, entity, service, time and
outcome; each change joined through its correlation id with the entity's events."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from confluent_kafka import Producer
from fastapi.testclient import TestClient
from google.protobuf import any_pb2
from playwright.sync_api import Browser, Page

from adapters.serving import BackgroundServer
from contracts.audit.v1.audit_pb2 import (
    AUDIT_OUTCOME_ALLOWED,
    AUDIT_OUTCOME_DENIED_FORBIDDEN,
    AuditActor,
    AuditEntry,
    AuditOutcome,
)
from contracts.customer.v1.customer_pb2 import Customer
from contracts.events.v1.envelope_pb2 import Envelope
from sidecar import devidp
from sidecar.audit import Chain
from sidecar.auditview import AuditQuery, create_app, query_audit
from sidecar.proxy import ProxyConfig, SidecarApp
from sidecar.rules import Rules
from sidecar.tokens import Issuer, Policy, TokenVerifier
from tests.unit.sidecar.sidecar_harness import MemoryAuditLog, serve
from troupe.bus.topics import ensure_topics, events_topic
from troupe.cli import main
from troupe.settings import KafkaSettings, settings

pytestmark = pytest.mark.integration
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def entry(seconds_ago: int, who: str, roles: list[str], outcome: AuditOutcome, entity: str,
          correlation: str, service: str) -> AuditEntry:
    result = AuditEntry(
        service=service, method="POST", path=f"/customers/{entity}", entity_id=entity,
        outcome=outcome, correlation_id=correlation, request_id=correlation,
        actor=AuditActor(subject=f"user:{who}", name=f"{who.title()} Person", roles=roles),
    )
    result.occurred_at.FromDatetime(NOW - dt.timedelta(seconds=seconds_ago))
    return result


def event(entity: str, version: int, correlation: str, name: str) -> Envelope:
    state = any_pb2.Any()
    state.Pack(Customer(customer_id=entity, name=name))
    return Envelope(event_id=f"{entity}-{version}", type="CustomerChanged", entity_id=entity,
                    entity_version=version, correlation_id=correlation, state=state)


@pytest.fixture(scope="module")
def audit_topic(kafka: KafkaSettings) -> tuple[str, str]:
    suffix = dt.datetime.now().strftime("%H%M%S%f")
    topic, service = f"audit.view-{suffix}", f"customers-{suffix}"
    ensure_topics(kafka, [topic, events_topic(service)])
    producer = Producer(kafka.client_config())
    for envelope in (event("C-1", 1, "corr-create", "Ann"), event("C-2", 1, "corr-other", "Bo"),
                     event("C-1", 2, "corr-rename", "Anna")):
        producer.produce(events_topic(service), envelope.SerializeToString(),
                         envelope.entity_id.encode())
    chain = Chain("view-0")
    for item in (
        entry(120, "olga", ["operator"], AUDIT_OUTCOME_ALLOWED, "C-1", "corr-create", service),
        entry(60, "olga", ["operator"], AUDIT_OUTCOME_ALLOWED, "C-1", "corr-rename", service),
        entry(30, "ada", ["auditor"], AUDIT_OUTCOME_DENIED_FORBIDDEN, "C-2", "corr-x", service),
        entry(10, "sam", ["supervisor"], AUDIT_OUTCOME_ALLOWED, "C-2", "corr-other", service),
        entry(5, "sam", ["supervisor"], AUDIT_OUTCOME_ALLOWED, "T-1", "corr-t", "tickets"),
    ):
        record = chain.seal(item.SerializeToString())
        producer.produce(topic, record.SerializeToString(), b"view-0", partition=0)
    assert producer.flush(30) == 0
    return topic, service


def test_changes_of_an_entity_with_state_before_and_after(
    kafka: KafkaSettings, audit_topic: tuple[str, str]
) -> None:
    topic, _ = audit_topic
    rows = query_audit(kafka, AuditQuery(entity="C-1"), topic)
    assert [r["correlation_id"] for r in rows] == ["corr-rename", "corr-create"]  # newest first
    assert rows[0]["before"]["name"] == "Ann"
    assert rows[0]["after"]["name"] == "Anna"
    assert rows[1]["before"] is None
    assert rows[1]["after"]["name"] == "Ann"
    assert rows[0]["actor"]["name"] == "Olga Person"
    assert rows[0]["record"] == "view-0#2"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (AuditQuery(user="user:olga"), ["corr-rename", "corr-create"]),
        (AuditQuery(user="ada"), ["corr-x"]),
        (AuditQuery(outcome="denied_forbidden"), ["corr-x"]),
        (AuditQuery(service="tickets"), ["corr-t"]),
        (AuditQuery(since=NOW - dt.timedelta(seconds=45)), ["corr-t", "corr-other", "corr-x"]),
        (AuditQuery(until=NOW - dt.timedelta(seconds=45)), ["corr-rename", "corr-create"]),
        (AuditQuery(user="sam", entity="C-2"), ["corr-other"]),
        (AuditQuery(limit=1), ["corr-t"]),
    ],
)
def test_queries(kafka: KafkaSettings, audit_topic: tuple[str, str], query: AuditQuery,
                 expected: list[str]) -> None:
    rows = query_audit(kafka, query, audit_topic[0])
    assert [r["correlation_id"] for r in rows] == expected


def test_rest_api_page_and_cli(
    kafka: KafkaSettings, audit_topic: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic, _ = audit_topic
    client = TestClient(create_app(kafka, topic))
    rows = client.get("/audit/api/records", params={"entity": "C-2",
                                                    "outcome": "allowed"}).json()
    assert [(r["correlation_id"], r["after"]["name"]) for r in rows] == [("corr-other", "Bo")]
    assert client.get("/audit/api/records", params={"outcome": "nonsense"}).status_code == 422
    assert "<form" in client.get("/audit").text
    monkeypatch.setenv("TROUPE_KAFKA__BOOTSTRAP_SERVERS", kafka.bootstrap_servers)
    settings.cache_clear()
    try:
        assert main(["audit", "query", "--topic", topic, "--entity", "C-1"]) == 0
    finally:
        settings.cache_clear()
    out = capsys.readouterr().out
    lines = [line.strip() for line in out.splitlines()]
    assert lines[1].startswith("before: {")
    assert lines[1].endswith('"name": "Ann"}')
    assert lines[2].startswith("after:  {")
    assert lines[2].endswith('"name": "Anna"}')
    assert lines[4] == "before: null"


def test_the_page_in_a_browser(kafka: KafkaSettings, audit_topic: tuple[str, str],
                               chromium: Browser) -> None:
    # given the audit view serving the records above
    topic, _ = audit_topic
    server = BackgroundServer(create_app(kafka, topic)).start()
    try:
        page = chromium.new_page()
        page.goto(server.url + "/audit")
        # when an auditor asks for the allowed changes of customer C-1
        rows = search_allowed_changes_of_c1(page)
        # then both changes are listed, newest first, each with who and the state
        # before and after it
        assert len(rows) == 2
        (_, who, what, outcome, before, after), (*_, first_before, first_after) = rows
        assert who == "Olga Person (operator)"
        assert what.endswith("POST /customers/C-1 [C-1]")
        assert outcome == "allowed"
        assert json.loads(before)["name"] == "Ann"
        assert json.loads(after)["name"] == "Anna"
        assert first_before == ""
        assert json.loads(first_after)["name"] == "Ann"
    finally:
        server.stop()


def test_an_auditor_signs_in_and_reads_the_audit_through_the_sidecar(
    kafka: KafkaSettings, audit_topic: tuple[str, str], chromium: Browser, tmp_path: Path,
) -> None:
    # given the audit view behind its sidecar (the rules it ships with), and the
    # development identity provider whose tokens the sidecar trusts
    topic, _ = audit_topic
    issuer = "https://idp.audit.test"
    idp_app = devidp.create_app(issuer, "troupe", devidp.KeyStore(tmp_path / "keys"))
    with serve(idp_app) as idp_port:
        idp = f"http://127.0.0.1:{idp_port}"
        verifier = TokenVerifier([Issuer(issuer=issuer, jwks_url=f"{idp}/jwks.json",
                                         audiences=("troupe",))], Policy())
        with serve(create_app(kafka, topic, sign_in_url=f"{idp}/login")) as view_port:
            guard = SidecarApp(ProxyConfig(
                service="audit", upstream=f"http://127.0.0.1:{view_port}",
                rules=Rules.load(Path("sidecar/auditview-rules.yaml")), verifier=verifier,
                audit=MemoryAuditLog()))
            with serve(guard) as port:
                page = chromium.new_page()
                # when an operator signs in and searches, they are refused
                rows = sign_in_and_search(page, f"http://127.0.0.1:{port}/audit", "olga")
                assert rows == [["error 403: not an auditor"]]
                # and when an auditor does, the audit is there
                rows = sign_in_and_search(page, f"http://127.0.0.1:{port}/audit", "ada")
                assert [row[2].rsplit(" ", 1)[-1] for row in rows] == ["[C-1]", "[C-1]"]
                # and without a token the API is closed, whatever the page does
                assert page.evaluate(
                    "fetch('/audit/api/records').then(answer => answer.status)") == 401


def sign_in_and_search(page: Page, url: str, user: str) -> list[list[str]]:
    page.goto(url)
    page.click("#signin")
    page.click(f"button[value={user}]")  # the identity provider's login page
    page.wait_for_url(url)  # back, the token taken out of the address
    return search_allowed_changes_of_c1(page)


def search_allowed_changes_of_c1(page: Page) -> list[list[str]]:
    """Fills in the page's form, searches, and reads the table back, cell by cell."""
    page.fill("input[name=entity]", "C-1")
    page.select_option("select[name=outcome]", "allowed")
    page.click("form#q button")
    page.wait_for_function("document.querySelectorAll('#rows tr').length > 0")
    rows: list[list[str]] = page.eval_on_selector_all(
        "#rows tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    return rows
