"""Test harness for the sidecar: real uvicorn servers on 127.0.0.1, an upstream that
echoes what it received, and an in-memory audit log with the real hash chain."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from contracts.audit.v1.audit_pb2 import AuditEntry, AuditRecord
from sidecar.audit import AuditUnavailableError, Chain, entry_of
from sidecar.proxy import SidecarApp
from sidecar.server import uvicorn_config

Scope = MutableMapping[str, Any]


@contextlib.contextmanager
def serve(app: Any, **config: Any) -> Iterator[int]:
    """Runs an ASGI app with uvicorn in a thread; yields its port."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only then
    # (without it every response pays Nagle + delayed ACK, about 40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    if isinstance(app, SidecarApp):  # served as in production
        server = uvicorn.Server(uvicorn_config(app, **config))
    else:
        config.setdefault("proxy_headers", False)  # never trust a client's X-Forwarded-For
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class EchoService:
    """An upstream that records each request and answers with what it saw."""

    seen: list[Seen] = field(default_factory=list)
    ws_messages: list[str | bytes] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].replace("lifespan.", "")
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        path = scope.get("raw_path", b"").decode() or scope["path"]
        if scope["type"] == "websocket":
            await self._websocket(receive, send, headers, path)
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen = Seen(scope["method"], path, scope["query_string"].decode(), headers, bytes(body))
        self.seen.append(seen)
        if path == "/stream":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain")]})
            for n in range(5):
                await send({"type": "http.response.body", "body": f"chunk {n}\n".encode(),
                            "more_body": True})
                await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": b""})
            return
        answer = json.dumps({"method": seen.method, "path": seen.path, "query": seen.query,
                             "headers": headers, "body_length": len(body),
                             "body_sha": hashlib.sha256(body).hexdigest()})
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"x-upstream", b"echo")]})
        await send({"type": "http.response.body", "body": answer.encode()})

    async def _websocket(self, receive: Any, send: Any, headers: dict[str, str], path: str) -> None:
        await receive()  # connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send",
                    "text": json.dumps({"hello": path, "headers": headers})})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("text") or message.get("bytes") or b""
            self.ws_messages.append(data)
            key = "text" if isinstance(data, str) else "bytes"
            await send({"type": "websocket.send", key: data})


# Headers by which a client pretends to be someone (or somewhere) else.
SPOOFED = {
    "X-Troupe-Subject": "admin", "X-Troupe-Roles": "supervisor", "X-Forwarded-For": "10.0.0.1",
    "Forwarded": "for=10.0.0.1", "X-Real-IP": "10.0.0.1", "X-User": "admin",
    "X-Remote-User": "admin", "X-Auth-Request-User": "admin",
}


def assert_verified_identity(headers: dict[str, str], issuer: str) -> None:
    """What the service saw of a request that came with ``SPOOFED`` and the token of
    user-1, "Zoë Operator", roles operator and auditor: the token's word only."""
    assert headers["x-troupe-subject"] == "user-1"
    assert headers["x-troupe-roles"] == "operator,auditor"
    assert headers["x-troupe-name"] == "Zo%C3%AB Operator"
    assert headers["x-troupe-issuer"] == issuer
    assert headers["x-forwarded-for"] == "127.0.0.1"
    for name in ("forwarded", "x-real-ip", "x-user", "x-remote-user", "x-auth-request-user"):
        assert name not in headers


class MemoryAuditLog:
    """The real hash chain, kept in memory; can be switched to failing."""

    def __init__(self, instance_id: str = "test-0") -> None:
        self.chain = Chain(instance_id)
        self.records: list[AuditRecord] = []
        self.failing = False

    async def write(self, entry: AuditEntry) -> AuditRecord:
        if self.failing:
            raise AuditUnavailableError("audit log down (test)")
        record = self.chain.seal(entry.SerializeToString())
        self.records.append(record)
        return record

    def entries(self) -> list[AuditEntry]:
        return [entry_of(record) for record in self.records]


async def raw_request(port: int, method: str, path: str, headers: dict[str, str],
                      body: bytes = b"", timeout: float = 60) -> tuple[int, bytes]:
    """One HTTP/1.1 request on its own connection, written by hand: a load generator
    much lighter than an HTTP client library, and it sends the path byte for byte."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
                 f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, content = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), content
