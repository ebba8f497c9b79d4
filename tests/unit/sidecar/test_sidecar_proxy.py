"""The proxy between real sockets: an echo upstream, the sidecar, and httpx/websockets
clients. Audit goes to an in-memory log with the real chain (Kafka: integration)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from contracts.audit.v1.audit_pb2 import (
    AUDIT_KIND_HTTP,
    AUDIT_KIND_WEBSOCKET_MESSAGE,
    AUDIT_OUTCOME_ALLOWED,
    AUDIT_OUTCOME_DENIED_FORBIDDEN,
    AUDIT_OUTCOME_DENIED_UNAUTHENTICATED,
    AUDIT_OUTCOME_REJECTED,
)
from sidecar.audit import verify_records
from sidecar.proxy import ProxyConfig, SidecarApp
from sidecar.rules import Rules
from sidecar.tokens import Issuer, TokenVerifier
from tests.unit.sidecar.sidecar_harness import (
    SPOOFED,
    EchoService,
    MemoryAuditLog,
    assert_verified_identity,
    serve,
)
from tests.unit.sidecar.sidecar_mint import AUDIENCE, ISSUER, SigningKey, claims, jwks, mint

KEY = SigningKey.generate("ES256", "ec-proxy")
RULES = Rules.from_yaml("""
service: tickets
rules:
  - {public: true, methods: [GET], paths: [/health]}
  - {roles: [operator, supervisor], methods: [GET], paths: [/tickets, "/tickets/{entity}", /stream]}
  - {roles: [operator], methods: [POST, PUT], paths: [/tickets, "/tickets/{entity}/resolve"]}
  - {roles: [operator], methods: [WEBSOCKET], paths: [/live]}
""")


@dataclass
class Stack:
    url: str
    ws_url: str
    echo: EchoService
    audit: MemoryAuditLog

    def token(self, roles: list[str] | None = None, **extra: Any) -> str:
        return mint(KEY, claims(roles=roles or ["operator"], **extra))

    def auth(self, roles: list[str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(roles)}"}


def raw_get(base: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """A GET with the path sent byte for byte (HTTP clients normalize paths themselves)."""
    host, port = base.removeprefix("http://").split(":")
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    echo = EchoService()
    audit = MemoryAuditLog()
    issuer = Issuer(issuer=ISSUER, jwks_url="https://idp.test/jwks", audiences=(AUDIENCE,),
                    algorithms=("ES256",))
    verifier = TokenVerifier([issuer], fetch=lambda _url, _timeout: jwks(KEY))
    with serve(echo) as upstream_port:
        app = SidecarApp(ProxyConfig(service="tickets", upstream=f"http://127.0.0.1:{upstream_port}",
                                     rules=RULES, verifier=verifier, audit=audit))
        with serve(app) as port:
            yield Stack(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", echo, audit)


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    stack.echo.seen.clear()
    stack.echo.ws_messages.clear()
    stack.audit.records.clear()
    stack.audit.failing = False
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        yield client


def test_an_allowed_read_is_forwarded_with_verified_identity(
    stack: Stack, client: httpx.Client
) -> None:
    token = stack.token(["operator", "auditor"], name="Zoë Operator")
    response = client.get("/tickets/T-1?x=1&y=%2F",
                          headers={**SPOOFED, "Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.headers["x-upstream"] == "echo"
    seen = response.json()
    assert seen["path"] == "/tickets/T-1"
    assert seen["query"] == "x=1&y=%2F"
    assert_verified_identity(seen["headers"], ISSUER)
    assert len(seen["headers"]["x-request-id"]) == 32
    assert stack.audit.records == []  # reads are not changes


def test_no_token_is_401_with_a_clear_json_error_and_audited(
    stack: Stack, client: httpx.Client
) -> None:
    response = client.get("/tickets")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.json()["detail"] == "a bearer token is required"
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert stack.echo.seen == []
    [entry] = stack.audit.entries()
    assert entry.outcome == AUDIT_OUTCOME_DENIED_UNAUTHENTICATED
    assert entry.path == "/tickets"
    assert entry.status_code == 401


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [("Bearer not-a-token", "three dot-separated segments"), ("Basic dXNlcjpwdw==", "Bearer"),
     ("Bearer", "Bearer")],
)
def test_bad_tokens_are_401_and_the_token_is_never_audited(
    stack: Stack, client: httpx.Client, authorization: str, detail: str
) -> None:
    response = client.post("/tickets", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert detail in response.json()["detail"]
    [record] = stack.audit.records
    secret = authorization.partition(" ")[2]
    assert not secret or secret.encode() not in record.SerializeToString()
    assert stack.echo.seen == []


def test_an_expired_token_is_refused_and_its_text_not_recorded(
    stack: Stack, client: httpx.Client
) -> None:
    token = stack.token(exp=1, iat=0, nbf=0)
    response = client.get("/tickets", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["detail"] == "the token has expired"
    assert token.encode() not in stack.audit.records[0].SerializeToString()


def test_forbidden_is_403_and_audited_with_the_actor(stack: Stack, client: httpx.Client) -> None:
    response = client.post("/tickets/T-7/resolve", headers=stack.auth(["supervisor"]))
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "forbidden"
    assert "POST /tickets/T-7/resolve" in body["detail"]
    [entry] = stack.audit.entries()
    assert entry.outcome == AUDIT_OUTCOME_DENIED_FORBIDDEN
    assert entry.actor.subject == "user-1"
    assert list(entry.actor.roles) == ["supervisor"]
    assert entry.entity_id == "T-7"
    assert stack.echo.seen == []


def test_public_paths_need_no_token(stack: Stack, client: httpx.Client) -> None:
    assert client.get("/health").status_code == 200
    assert "x-troupe-subject" not in stack.echo.seen[0].headers


def test_a_change_is_audited_before_it_is_forwarded(stack: Stack, client: httpx.Client) -> None:
    body = os.urandom(3 * 1024 * 1024)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = client.post(
        "/tickets/T-9/resolve", content=chunks(),
        headers={**stack.auth(), "X-Request-Id": "req-1", "X-Correlation-Id": "corr-1"},
    )
    assert response.status_code == 200
    assert response.json()["body_sha"] == hashlib.sha256(body).hexdigest()
    [entry] = stack.audit.entries()
    assert entry.outcome == AUDIT_OUTCOME_ALLOWED
    assert entry.kind == AUDIT_KIND_HTTP
    assert (entry.method, entry.path, entry.entity_id) == ("POST", "/tickets/T-9/resolve", "T-9")
    assert (entry.request_id, entry.correlation_id) == ("req-1", "corr-1")
    assert entry.actor.name == "Olga Operator"
    assert entry.client_address.startswith("127.0.0.1:")
    seen = stack.echo.seen[0].headers
    assert seen["x-troupe-audit"] == f"test-0#{stack.audit.records[0].sequence}"
    assert seen["x-request-id"] == "req-1"
    assert verify_records(stack.audit.records, from_start=False).ok


def test_a_small_body_with_content_length_arrives_intact(
    stack: Stack, client: httpx.Client
) -> None:
    response = client.put("/tickets/T-2/resolve", json={"state": "done"}, headers=stack.auth())
    assert response.status_code == 200
    assert stack.echo.seen[0].body == b'{"state":"done"}'


def test_when_the_audit_is_down_changes_get_503_and_reads_still_work(
    stack: Stack, client: httpx.Client
) -> None:
    stack.audit.failing = True
    response = client.post("/tickets", headers=stack.auth(), json={})
    assert response.status_code == 503
    assert response.json()["error"] == "audit_unavailable"
    assert stack.echo.seen == []
    assert client.get("/tickets", headers=stack.auth()).status_code == 200


@pytest.mark.parametrize(
    ("path", "status", "forwarded"),
    [("//tickets//T-1/", 200, "/tickets/T-1"), ("/health/../tickets/T-1", 200, "/tickets/T-1"),
     ("/tickets/%54-1", 200, "/tickets/T-1"), ("/tickets%2FT-1", 400, None),
     ("/tickets/T-1;x=1", 400, None), ("/tickets/..%2F..%2Fadmin", 400, None),
     ("/tickets/%252e%252e", 400, None), ("/../tickets", 400, None)],
)
@pytest.mark.usefixtures("client")
def test_path_tricks_are_normalized_or_refused(
    stack: Stack, path: str, status: int, forwarded: str | None
) -> None:
    status_code, body = raw_get(stack.url, path, stack.auth())
    assert status_code == status
    if forwarded:
        assert stack.echo.seen[0].path == forwarded
    else:
        assert json.loads(body)["error"] == "bad_request"
        assert stack.echo.seen == []
        assert stack.audit.entries()[0].outcome == AUDIT_OUTCOME_REJECTED


def test_two_authorization_headers_are_refused(stack: Stack, client: httpx.Client) -> None:
    headers = [("Authorization", f"Bearer {stack.token()}"), ("Authorization", "Bearer x")]
    response = client.get("/tickets", headers=headers)
    assert response.status_code == 401


def test_responses_stream_through(stack: Stack, client: httpx.Client) -> None:
    with client.stream("GET", "/stream", headers=stack.auth()) as response:
        lines = list(response.iter_lines())
    assert lines == [f"chunk {n}" for n in range(5)]


@pytest.mark.usefixtures("client")
def test_websocket_with_a_header_token_audits_every_message(stack: Stack) -> None:
    async def talk() -> list[str]:
        async with connect(f"{stack.ws_url}/live", additional_headers={
            **stack.auth(), "X-Troupe-Subject": "admin"}) as ws:
            hello = json.loads(await ws.recv())
            assert hello["headers"]["x-troupe-subject"] == "user-1"
            replies = []
            for n in range(3):
                await ws.send(json.dumps({"action": "take", "entity_id": f"C-{n}"}))
                replies.append(str(await ws.recv()))
            return replies

    replies = asyncio.run(talk())
    assert [json.loads(r)["entity_id"] for r in replies] == ["C-0", "C-1", "C-2"]
    entries = stack.audit.entries()
    assert [e.entity_id for e in entries] == ["C-0", "C-1", "C-2"]
    assert {e.kind for e in entries} == {AUDIT_KIND_WEBSOCKET_MESSAGE}
    assert {e.actor.subject for e in entries} == {"user-1"}


@pytest.mark.usefixtures("client")
def test_websocket_with_a_first_message_token(stack: Stack) -> None:
    async def talk() -> str:
        async with connect(f"{stack.ws_url}/live") as ws:
            await ws.send(json.dumps({"access_token": stack.token()}))
            json.loads(await ws.recv())  # hello from the service
            await ws.send("ping")
            return str(await ws.recv())

    assert asyncio.run(talk()) == "ping"
    assert stack.echo.ws_messages == ["ping"]


@pytest.mark.usefixtures("client")
def test_websocket_refusals(stack: Stack) -> None:
    async def bad_first_message() -> int | None:
        async with connect(f"{stack.ws_url}/live") as ws:
            await ws.send(json.dumps({"access_token": "nope"}))
            error = json.loads(await ws.recv())
            assert error["error"] == "unauthorized"
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code

    assert asyncio.run(bad_first_message()) == 4401

    async def forbidden() -> None:
        async with connect(f"{stack.ws_url}/live", additional_headers=stack.auth(["supervisor"])):
            pass

    with pytest.raises(InvalidStatus) as caught:
        asyncio.run(forbidden())
    assert caught.value.response.status_code == 403
    assert stack.echo.ws_messages == []
    outcomes = [e.outcome for e in stack.audit.entries()]
    assert outcomes == [AUDIT_OUTCOME_DENIED_UNAUTHENTICATED, AUDIT_OUTCOME_DENIED_FORBIDDEN]


@pytest.mark.usefixtures("client")
def test_keep_alive_pipelining_and_oversized_heads(stack: Stack) -> None:
    host, port = stack.url.removeprefix("http://").split(":")
    token = stack.token()
    one = f"GET /tickets/P-{{n}} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # Three requests in one write: answered in order on the same connection.
        sock.sendall("".join(one.format(n=n) for n in range(3)).encode())
        data = b""
        while data.count(b"\r\n0\r\n\r\n") < 3:  # the echo's answers are chunked
            data += sock.recv(65536)
        assert data.count(b"HTTP/1.1 200 OK\r\n") == 3
        assert [s.path for s in stack.echo.seen] == ["/tickets/P-0", "/tickets/P-1", "/tickets/P-2"]
    status, body = raw_get(stack.url, "/tickets", {"X-Big": "a" * 70_000})
    assert status == 400
    assert b"invalid HTTP request" in body
