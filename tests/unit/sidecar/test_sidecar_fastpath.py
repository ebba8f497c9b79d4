"""The fast path (GET/HEAD without body, token verified before, rule allows): no task,
the service's response relayed from its parser's callbacks. The same checks as the
full path must hold on it — expiry, identity headers, path normalization, deny by
default — and the HTTP details a relay can get wrong: pipelining order, chunked and
close-delimited responses, a response cut short, interim responses, a kept-alive
connection the service had closed, a service that does not answer.

The service here is written by hand (``ScriptedService``) so it can misbehave."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httptools  # type: ignore[import-untyped]
import pytest

from contracts.audit.v1.audit_pb2 import (
    AUDIT_OUTCOME_DENIED_FORBIDDEN,
    AUDIT_OUTCOME_DENIED_UNAUTHENTICATED,
    AUDIT_OUTCOME_REJECTED,
)
from sidecar.httpserver import Exchange
from sidecar.proxy import ProxyConfig, SidecarApp
from sidecar.rules import Rules
from sidecar.tokens import Issuer, Policy, TokenVerifier
from tests.unit.sidecar.sidecar_harness import (
    SPOOFED,
    MemoryAuditLog,
    assert_verified_identity,
    serve,
)
from tests.unit.sidecar.sidecar_mint import AUDIENCE, ISSUER, SigningKey, claims, jwks, mint

KEY = SigningKey.generate("ES256", "ec-fast")
OTHER_KEY = SigningKey.generate("ES256", "ec-fast")  # same kid, other key material
RULES = Rules.from_yaml("""
service: scripted
rules:
  - {public: true, methods: [GET], paths: [/health]}
  - {roles: [operator], methods: [GET, POST], paths: ["/plain/**", /chunked, /until-close,
      /cut, /early-hints, /hang, /close-first, /twice]}
""")
LEEWAY = 30.0


class ScriptedService:
    """A keep-alive HTTP/1.1 service that answers by path, some answers on purpose
    broken. ``/plain/...`` echoes the request line and headers as JSON (with a body
    even to a HEAD, which must not reach the client)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self._closed_once: set[str] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *lines = head.decode("latin-1").split("\r\n")
                method, target, _ = line.split(" ")
                headers = {}
                for header in filter(None, lines):
                    name, _, value = header.partition(":")
                    headers[name.lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.seen.append((method, target, headers))
                if not await self._answer(method, target, headers, body, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client left, or the service stops
        finally:
            writer.close()

    async def _answer(self, method: str, target: str, headers: dict[str, str], body: bytes,
                      writer: asyncio.StreamWriter) -> bool:
        """Writes the answer; False: the connection is to be closed."""
        path = target.partition("?")[0]
        if path == "/chunked":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"6\r\n world\r\n0\r\n\r\n")
        elif path == "/until-close":
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
            return False
        elif path == "/cut":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
            return False
        elif path == "/early-hints":
            writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                         b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        elif path == "/hang":
            await asyncio.sleep(30)
        elif path == "/close-first" and path not in self._closed_once:
            self._closed_once.add(path)  # as if it had closed an idle connection
            return False
        elif path == "/twice":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"
                         b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo")
        else:
            answer = json.dumps({"method": method, "target": target, "headers": headers,
                                 "body": body.decode()}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
                         b"Content-Length: %d\r\n\r\n%b" % (len(answer), answer))
        await writer.drain()
        return True


@contextlib.contextmanager
def run_service(service: ScriptedService) -> Iterator[int]:
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()
    ports: list[int] = []

    async def main() -> None:
        server = await asyncio.start_server(service.handle, "127.0.0.1", 0)
        ports.append(server.sockets[0].getsockname()[1])
        started.set()
        async with server:
            await stop.wait()
        handlers = asyncio.all_tasks() - {asyncio.current_task()}
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(10)
    yield ports[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)


class CountingApp(SidecarApp):
    """The sidecar, counting the requests that took the full path."""

    def __init__(self, config: ProxyConfig) -> None:
        super().__init__(config)
        self.full = 0
        self.loops: set[str] = set()

    async def http(self, exchange: Exchange) -> None:
        self.full += 1
        await super().http(exchange)

    def fast_request(self, method: str, url: bytes, headers: list[tuple[bytes, bytes]],
                     client: str) -> bytes | None:
        self.loops.add(type(asyncio.get_running_loop()).__module__)
        return super().fast_request(method, url, headers, client)


@dataclass
class Stack:
    port: int
    app: CountingApp
    service: ScriptedService
    audit: MemoryAuditLog
    verifier: TokenVerifier
    clock: list[float]
    keys: list[SigningKey]

    def token(self, roles: list[str] | None = None, **extra: Any) -> str:
        return mint(KEY, claims(roles=roles or ["operator"], **extra))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    service = ScriptedService()
    audit = MemoryAuditLog()
    clock = [time.time()]
    keys = [KEY]
    issuer = Issuer(issuer=ISSUER, jwks_url="https://idp.test/jwks", audiences=(AUDIENCE,),
                    algorithms=("ES256",))
    verifier = TokenVerifier([issuer], Policy(leeway_seconds=LEEWAY, jwks_min_refresh_seconds=0),
                             fetch=lambda _url, _timeout: jwks(*keys), clock=lambda: clock[0])
    with run_service(service) as upstream_port:
        app = CountingApp(ProxyConfig(
            service="scripted", upstream=f"http://127.0.0.1:{upstream_port}", rules=RULES,
            verifier=verifier, audit=audit, upstream_timeout=0.5))
        with serve(app) as port:
            yield Stack(port, app, service, audit, verifier, clock, keys)


@pytest.fixture
def fresh(stack: Stack) -> Stack:
    stack.service.seen.clear()
    stack.audit.records.clear()
    stack.clock[0] = time.time()
    if stack.keys != [KEY]:
        stack.keys[:] = [KEY]
        stack.verifier.jwks(ISSUER).refresh()
    return stack


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Client:
    """One connection; responses parsed with httptools as a client would."""

    port: int
    sock: socket.socket = field(init=False)
    responses: list[Response] = field(default_factory=list)
    partial: bytes = b""
    closed: bool = False

    def __post_init__(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self._parser = httptools.HttpResponseParser(self)
        self._headers: dict[str, str] = {}

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.partial += body

    def on_message_complete(self) -> None:
        self.responses.append(Response(self._parser.get_status_code(), self._headers,
                                       self.partial))
        self._headers, self.partial = {}, b""

    def send(self, *requests: bytes) -> None:
        self.sock.sendall(b"".join(requests))

    def read(self, count: int) -> list[Response]:
        """The next ``count`` responses (fewer if the server closes the connection)."""
        wanted = len(self.responses) + count
        while len(self.responses) < wanted and not self.closed:
            data = self.sock.recv(65536)
            if not data:
                self.closed = True
            else:
                self._parser.feed_data(data)
        return self.responses[wanted - count:]

    def ask(self, request: bytes) -> Response:
        self.send(request)
        [response] = self.read(1)
        return response

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def client(fresh: Stack) -> Iterator[Client]:
    client = Client(fresh.port)
    yield client
    client.close()


def get(path: str, token: str | None = None, method: str = "GET", **headers: str) -> bytes:
    """A request, written by hand; ``X_Request_Id="a"`` is the header ``X-Request-Id: a``."""
    lines = [f"{method} {path} HTTP/1.1", "Host: sidecar.test"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def warm(stack: Stack, client: Client, token: str) -> None:
    """The first request with a token takes the full path (verification); the next ones
    may take the fast path."""
    assert client.ask(get("/plain/warm", token)).status == 200


def test_the_fast_path_forwards_the_verified_identity_and_drops_claimed_ones(
    fresh: Stack, client: Client
) -> None:
    token = fresh.token(["operator", "auditor"], name="Zoë Operator")
    warm(fresh, client, token)
    full = fresh.app.full
    response = client.ask(get("/plain/T-1?x=1&y=%2F", token, X_Request_Id="req-7",
                              Accept="application/json", **SPOOFED))
    assert fresh.app.full == full  # not the full path
    assert fresh.app.loops == {"uvloop"}
    assert response.status == 200
    assert "keep-alive" not in response.headers  # hop-by-hop: not relayed
    seen = json.loads(response.body)
    assert seen["target"] == "/plain/T-1?x=1&y=%2F"
    headers = seen["headers"]
    assert_verified_identity(headers, ISSUER)
    assert headers["x-request-id"] == headers["x-correlation-id"] == "req-7"
    assert headers["authorization"] == f"Bearer {token}"
    assert headers["accept"] == "application/json"
    assert headers["host"].startswith("127.0.0.1:")
    assert fresh.audit.records == []  # reads are not changes


def test_pipelined_requests_fast_and_full_are_answered_in_order(
    fresh: Stack, client: Client
) -> None:
    token = fresh.token()
    warm(fresh, client, token)
    body = b'{"state": "done"}'
    post = (f"POST /plain/2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    client.send(get("/plain/1", token), post, get("/chunked", token), get("/plain/3", token),
                get("/health"))
    responses = client.read(5)
    assert [r.status for r in responses] == [200] * 5
    assert json.loads(responses[0].body)["target"] == "/plain/1"
    assert json.loads(responses[1].body)["body"] == body.decode()
    assert responses[2].body == b"hello world"
    assert json.loads(responses[3].body)["target"] == "/plain/3"
    assert [target for _, target, _ in fresh.service.seen[1:]] == [
        "/plain/1", "/plain/2", "/chunked", "/plain/3", "/health"]
    assert len(fresh.audit.records) == 1  # the POST


def test_chunked_and_close_delimited_responses_keep_the_client_connection(
    fresh: Stack, client: Client
) -> None:
    token = fresh.token()
    warm(fresh, client, token)
    full = fresh.app.full
    chunked = client.ask(get("/chunked", token))
    assert (chunked.status, chunked.body) == (200, b"hello world")
    until_close = client.ask(get("/until-close", token))
    assert (until_close.status, until_close.body) == (200, b"until the end")
    assert until_close.headers["transfer-encoding"] == "chunked"
    assert "connection" not in until_close.headers
    assert fresh.app.full == full
    assert client.ask(get("/plain/again", token)).status == 200  # the same connection


def test_a_response_cut_short_closes_the_client_connection(fresh: Stack, client: Client) -> None:
    token = fresh.token()
    warm(fresh, client, token)
    client.send(get("/cut", token))
    assert client.read(1) == []
    assert client.closed
    assert client.partial == b"only this"


def test_interim_responses_are_skipped(fresh: Stack, client: Client) -> None:
    token = fresh.token()
    warm(fresh, client, token)
    response = client.ask(get("/early-hints", token))
    assert (response.status, response.body) == (200, b"ok")
    assert client.ask(get("/plain/next", token)).status == 200


def test_a_kept_alive_connection_the_service_closed_is_tried_again(
    fresh: Stack, client: Client
) -> None:
    token = fresh.token()
    warm(fresh, client, token)
    response = client.ask(get("/close-first", token))
    assert response.status == 200
    assert [target for _, target, _ in fresh.service.seen[1:]] == ["/close-first"] * 2


def test_a_service_that_answers_twice_or_not_at_all_gets_502(
    fresh: Stack, client: Client
) -> None:
    token = fresh.token()
    warm(fresh, client, token)
    twice = client.ask(get("/twice", token))
    assert twice.status == 502
    hang = client.ask(get("/hang", token))
    assert hang.status == 502
    assert json.loads(hang.body)["error"] == "bad_gateway"
    assert client.ask(get("/plain/after", token)).status == 200


def test_head_on_the_fast_path(fresh: Stack, client: Client) -> None:
    token = fresh.token()
    warm(fresh, client, token)
    full = fresh.app.full
    client.send(get("/plain/h", token, method="HEAD"))
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += client.sock.recv(1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: " in head.lower()
    assert fresh.app.full == full
    client._parser = httptools.HttpResponseParser(client)  # no body follows a HEAD
    assert client.ask(get("/plain/next", token)).status == 200
    assert fresh.service.seen[-2][0] == "HEAD"


def test_an_expired_cached_token_is_refused_at_its_expiry(fresh: Stack, client: Client) -> None:
    now = fresh.clock[0]
    token = fresh.token(exp=int(now) + 60, iat=int(now), nbf=int(now))
    warm(fresh, client, token)
    fresh.clock[0] = int(now) + 60 + LEEWAY - 0.001  # the last moment it is valid
    assert client.ask(get("/plain/1", token)).status == 200
    fresh.clock[0] = int(now) + 60 + LEEWAY
    response = client.ask(get("/plain/2", token))
    assert response.status == 401
    assert json.loads(response.body)["detail"] == "the token has expired"
    [entry] = fresh.audit.entries()
    assert entry.outcome == AUDIT_OUTCOME_DENIED_UNAUTHENTICATED
    assert [target for _, target, _ in fresh.service.seen[1:]] == ["/plain/1"]


def test_a_cached_token_is_not_used_once_the_key_set_changed(
    fresh: Stack, client: Client
) -> None:
    token = fresh.token()
    warm(fresh, client, token)
    fresh.keys[:] = [OTHER_KEY]  # the same kid now names another key
    fresh.verifier.jwks(ISSUER).refresh()
    response = client.ask(get("/plain/1", token))
    assert response.status == 401
    assert "signature" in json.loads(response.body)["detail"]


@pytest.mark.parametrize(
    ("path", "status", "forwarded"),
    [("//plain//T-1/", 200, "/plain/T-1"), ("/health/../plain/T-1", 200, "/plain/T-1"),
     ("/plain/%54-1", 200, "/plain/T-1"), ("/plain/a?b#c", 200, "/plain/a?b"),
     ("/plain%2FT-1", 400, None), ("/plain/T-1;x=1", 400, None),
     ("/plain/..%2F..%2Fadmin", 400, None), ("/plain/%252e%252e", 400, None),
     ("/../plain", 400, None), ("/admin", 403, None)],
)
def test_path_tricks_are_normalized_or_refused_on_the_fast_path(
    fresh: Stack, client: Client, path: str, status: int, forwarded: str | None
) -> None:
    token = fresh.token()
    warm(fresh, client, token)
    for _ in range(2):  # the second time from the fast path's caches
        fresh.audit.records.clear()
        response = client.ask(get(path, token))
        assert response.status == status
        if forwarded:
            assert json.loads(response.body)["target"] == forwarded
        else:
            client = Client(fresh.port)  # a refusal closes the connection
            assert fresh.service.seen[1:] == []
            expected = AUDIT_OUTCOME_REJECTED if status == 400 else AUDIT_OUTCOME_DENIED_FORBIDDEN
            assert [e.outcome for e in fresh.audit.entries()] == [expected]
    client.close()


def test_deny_by_default_holds_on_the_fast_path(fresh: Stack, client: Client) -> None:
    auditor = fresh.token(["auditor"])
    response = client.ask(get("/plain/1", auditor))
    assert response.status == 403
    client = Client(fresh.port)
    assert client.ask(get("/plain/1", auditor)).status == 403  # and again, from the caches
    client = Client(fresh.port)
    assert client.ask(get("/plain/1")).status == 401
    client = Client(fresh.port)
    full = fresh.app.full
    assert client.ask(get("/health")).status == 200  # public: fast without a token
    assert client.ask(get("/health")).status == 200
    assert fresh.app.full == full
    assert fresh.service.seen[-1][2].get("x-troupe-subject") is None
    client.close()


def test_a_get_with_a_body_takes_the_full_path(fresh: Stack, client: Client) -> None:
    token = fresh.token()
    warm(fresh, client, token)
    full = fresh.app.full
    response = client.ask(get("/plain/b", token, Content_Length="2") + b"hi")
    assert json.loads(response.body)["body"] == "hi"
    assert fresh.app.full == full + 1


def test_idle_connections_close_after_the_keep_alive_timeout_busy_ones_do_not(
    stack: Stack,
) -> None:
    app = SidecarApp(ProxyConfig(service="scripted", upstream=stack.app.config.upstream,
                                 rules=RULES, verifier=stack.verifier, audit=stack.audit))
    with serve(app, timeout_keep_alive=0.6) as port:
        busy, idle = Client(port), Client(port)
        assert idle.ask(get("/health")).status == 200
        for _ in range(6):  # a request every 0.2 s: never idle for 0.6 s
            assert busy.ask(get("/health")).status == 200
            time.sleep(0.2)
        assert idle.read(1) == []
        assert idle.closed
        assert busy.ask(get("/health")).status == 200
        busy.close()
        idle.close()
