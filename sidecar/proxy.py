"""The sidecar proxy in front of one service instance. HTTP requests come from
``sidecar.httpserver`` (a lean protocol run by uvicorn), WebSockets through ASGI.

For each request: normalize the path, verify the bearer token, find a rule that
allows the method and path for one of the token's roles (deny by default), write
the audit record of a change or a refusal and wait until it is durable, then
forward the request with the verified identity to the service, streaming both
ways. WebSocket upgrades are passed through; each message from the client is an
action that is audited before the service sees it.

The common request — a GET or HEAD without body, its token verified before, a rule
allowing it — is decided by ``fast_request`` from the HTTP parser's callback and
forwarded without a task (see ``sidecar.httpserver``); the same checks, cached:
the token's validity window and key (``TokenVerifier.cached``), the rules' answer
per roles, method and raw path, the identity headers per token.

What the service receives (anything the client sent under these names is dropped):
``X-Troupe-Subject``, ``X-Troupe-Name`` (percent-encoded UTF-8), ``X-Troupe-Roles``
(comma-separated), ``X-Troupe-Issuer``, ``X-Troupe-Audit`` (``instance#sequence``
of the change's audit record), ``X-Request-Id``, ``X-Correlation-Id`` and
``X-Forwarded-For`` (the connection's peer address).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from google.protobuf.timestamp_pb2 import Timestamp
from mypy_extensions import mypyc_attr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from contracts.audit.v1.audit_pb2 import (
    AUDIT_KIND_HTTP,
    AUDIT_KIND_WEBSOCKET_CONNECT,
    AUDIT_KIND_WEBSOCKET_MESSAGE,
    AUDIT_OUTCOME_ALLOWED,
    AUDIT_OUTCOME_DENIED_FORBIDDEN,
    AUDIT_OUTCOME_DENIED_UNAUTHENTICATED,
    AUDIT_OUTCOME_REJECTED,
    AuditActor,
    AuditEntry,
    AuditKind,
    AuditOutcome,
    AuditRecord,
)
from sidecar.audit import AuditLog, AuditUnavailableError
from sidecar.httpserver import HOP_BY_HOP, Disconnected, Exchange
from sidecar.rules import SAFE_METHODS, NormalizedPath, PathError, Rules, normalize_path
from sidecar.tokens import Identity, TokenError, TokenVerifier
from sidecar.upstream import UpstreamError, UpstreamPool, header_lines, line_breaks

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Headers a client could use to pretend to be someone (or somewhere) else.
IDENTITY_PREFIXES = ("x-troupe-", "x-forwarded-", "x-user", "x-remote-", "x-auth-", "x-original-")
IDENTITY_HEADERS = frozenset({
    "forwarded", "x-real-ip", "x-client-ip", "remote-user", "x-request-id", "x-correlation-id",
})
WS_CLIENT_ONLY = frozenset({
    b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions",
    b"sec-websocket-protocol", b"sec-websocket-accept", b"content-length",
})
IDENTITY_PREFIXES_BYTES = tuple(prefix.encode() for prefix in IDENTITY_PREFIXES)
_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# What the fast path does with a request header, by its name: pass it on, drop it, read
# it, or leave the request to ``http`` (a body, an Expect).
_PASS, _DROP, _AUTHORIZATION, _REQUEST_ID, _CORRELATION_ID, _NOT_FAST = range(6)
_FAST_READS = {b"authorization": _AUTHORIZATION, b"x-request-id": _REQUEST_ID,
               b"x-correlation-id": _CORRELATION_ID, b"content-length": _NOT_FAST,
               b"transfer-encoding": _NOT_FAST, b"expect": _NOT_FAST}
# The fast path's caches (tokens, rule answers) are emptied when they reach this size.
_FAST_CACHE_SIZE = 10_000


@dataclass
class ProxyConfig:
    service: str
    upstream: str  # e.g. http://127.0.0.1:8001
    rules: Rules
    verifier: TokenVerifier
    audit: AuditLog
    forward_authorization: bool = True
    ws_auth_timeout: float = 10.0
    upstream_timeout: float = 60.0
    extra_identity_headers: frozenset[str] = field(default_factory=frozenset)


@dataclass
class _Request:
    kind: AuditKind
    method: str
    path: str
    request_id: str
    correlation_id: str
    client: str
    user_agent: str
    headers: list[tuple[bytes, bytes]]
    identity: Identity | None = None
    entity_id: str = ""
    rule: str = ""


class Refusal(Exception):
    def __init__(self, status: int, error: str, detail: str, outcome: AuditOutcome) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.outcome = outcome


class _Routes:
    """The rules' answer for one set of roles (``None``: no token), by method and raw
    path: the normalized, re-encoded path to forward, or ``None`` when the path is
    refused or no rule allows it (``http`` then refuses and audits)."""

    def __init__(self, rules: Rules, roles: tuple[str, ...] | None) -> None:
        self._rules = rules
        self._roles = roles
        self._targets: dict[tuple[str, bytes], bytes | None] = {}

    def target(self, method: str, raw_path: bytes) -> bytes | None:
        key = (method, raw_path)
        try:
            return self._targets[key]
        except KeyError:
            pass
        try:
            path = normalize_path(raw_path)
        except PathError:
            target = None
        else:
            allowed = self._rules.authorize(method, path, self._roles).allowed
            target = path.encoded.encode() if allowed else None
        if len(self._targets) >= _FAST_CACHE_SIZE:
            self._targets.clear()
        self._targets[key] = target
        return target


@dataclass(frozen=True, slots=True)
class _KnownToken:
    """A verified token as the fast path keeps it: by its Authorization header's bytes."""

    token: str
    identity: Identity
    routes: _Routes
    headers: bytes  # its header lines for the service: Authorization, the identity

# Compiled (troupe.compiled), yet tests subclass it to watch which path a request takes.
@mypyc_attr(allow_interpreted_subclasses=True)
class SidecarApp:
    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self._upstream = config.upstream.rstrip("/")
        stripped = HOP_BY_HOP | IDENTITY_HEADERS | config.extra_identity_headers
        if not config.forward_authorization:
            stripped |= {"authorization"}
        self._stripped = frozenset(name.encode("latin-1") for name in stripped)
        url = urlsplit(self._upstream)
        if url.scheme != "http" or not url.hostname or url.path not in ("", "/"):
            raise ValueError("the upstream is http://host:port of the service instance")
        self.upstream = UpstreamPool(url.hostname, url.port or 80,
                                     read_timeout=config.upstream_timeout)
        self._ws_upstream = re.sub(r"^http", "ws", self._upstream)
        self._routes: dict[tuple[str, ...] | None, _Routes] = {}
        self._public = self._routes_of(None)
        self._tokens: dict[bytes, _KnownToken] = {}
        self._header_kinds: dict[bytes, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raise RuntimeError("HTTP is served by sidecar.httpserver (see sidecar.server)")
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def aclose(self) -> None:
        self.upstream.close()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- checks shared by HTTP and WebSocket ------------------------------------------
    def _describe(self, headers: list[tuple[bytes, bytes]], client: str, kind: AuditKind,
                  method: str) -> _Request:
        request_id, correlation_id = _ids(_header(headers, b"x-request-id"),
                                          _header(headers, b"x-correlation-id"))
        return _Request(
            kind=kind, method=method, path="", request_id=request_id,
            correlation_id=correlation_id, client=client,
            user_agent=_header(headers, b"user-agent")[:256], headers=headers,
        )

    async def _authorize(self, request: _Request, raw_path: bytes, token: str | None,
                         method: str) -> NormalizedPath:
        try:
            path = normalize_path(raw_path)
        except PathError as error:
            raise Refusal(400, "bad_request", str(error), AUDIT_OUTCOME_REJECTED) from None
        request.path = path.text
        if token is not None:
            try:
                request.identity = await self.config.verifier.verify_async(token)
            except TokenError as error:
                raise Refusal(401, "unauthorized", str(error),
                              AUDIT_OUTCOME_DENIED_UNAUTHENTICATED) from None
        roles = request.identity.roles if request.identity else None
        decision = self.config.rules.authorize(method, path, roles)
        if not decision.allowed:
            request.entity_id = self.config.rules.entity_of(method, path)
            if request.identity is None:
                raise Refusal(401, "unauthorized", "a bearer token is required",
                              AUDIT_OUTCOME_DENIED_UNAUTHENTICATED)
            raise Refusal(403, "forbidden",
                          f"no rule allows {method} {path.text} for roles "
                          f"{', '.join(roles or ()) or '(none)'}",
                          AUDIT_OUTCOME_DENIED_FORBIDDEN)
        request.entity_id = decision.entity_id
        request.rule = decision.rule.name if decision.rule else ""
        return path

    async def _audit(self, request: _Request, outcome: AuditOutcome, reason: str = "",
                     status: int = 0) -> AuditRecord:
        entry = AuditEntry(
            occurred_at=_now(), service=self.config.service, kind=request.kind,
            method=request.method, path=request.path, entity_id=request.entity_id,
            outcome=outcome, reason=reason, status_code=status, request_id=request.request_id,
            correlation_id=request.correlation_id, client_address=request.client,
            user_agent=request.user_agent, rule=request.rule,
        )
        if request.identity is not None:
            identity = request.identity
            entry.actor.CopyFrom(AuditActor(subject=identity.subject, name=identity.name,
                                            roles=identity.roles, issuer=identity.issuer))
        return await self.config.audit.write(entry)

    async def _audit_refusal(self, request: _Request, refusal: Refusal) -> None:
        try:
            await self._audit(request, refusal.outcome, refusal.detail, refusal.status)
        except AuditUnavailableError:
            log.error("audit unavailable: refusal of %s %s (request %s) not recorded",
                      request.method, request.path, request.request_id)

    def _passes(self, name: bytes) -> bool:
        """Whether a client's request header (name in lower case) goes on to the service."""
        return name not in self._stripped and not name.startswith(IDENTITY_PREFIXES_BYTES)

    def _forward_headers(self, request: _Request, record: AuditRecord | None,
                         drop: frozenset[bytes] = frozenset()) -> list[tuple[bytes, bytes]]:
        headers = [(name, value) for name, value in request.headers
                   if self._passes(name) and name not in drop]
        if request.identity is not None:
            headers += _identity_headers(request.identity)
        if record is not None:
            headers.append((b"x-troupe-audit", f"{record.instance_id}#{record.sequence}".encode()))
        headers += _request_headers(request.request_id, request.correlation_id, request.client)
        return headers

    # -- the fast path ------------------------------------------------------------------
    def fast_request(self, method: str, url: bytes, headers: list[tuple[bytes, bytes]],
                     client: str) -> bytes | None:
        """The request for the service, when this one needs nothing but forwarding: a GET
        or HEAD (``method``) without body nor ``Expect``, without a token or with one
        verified before and valid now, on a path a rule allows for its roles. ``None``
        when it needs anything else (verifying a token, refusing, auditing, a body):
        then ``http`` decides. Same checks, same request to the service as ``http``.
        Called from the HTTP parser's callback, so nothing here may wait."""
        path, _, query = url.partition(b"?")
        if b"#" in query:  # a fragment: http reads the URL as its parser does
            return None
        lines: list[bytes] = []
        authorization: bytes | None = None
        request_id = correlation_id = ""
        kinds = self._header_kinds
        for name, value in headers:  # names are in lower case (sidecar.httpserver)
            kind = kinds.get(name)
            if kind is None:
                kind = self._header_kind(name)
            if kind == _PASS:
                lines.append(name + b": " + value + b"\r\n")
            elif kind == _DROP:
                pass
            elif kind == _AUTHORIZATION:
                if authorization is not None:
                    return None  # refused by http
                authorization = value
            elif kind == _REQUEST_ID:
                request_id = request_id or value.decode("latin-1")
            elif kind == _CORRELATION_ID:
                correlation_id = correlation_id or value.decode("latin-1")
            else:
                return None
        if authorization is None:
            routes = self._public
        else:
            known = self._tokens.get(authorization)
            if known is None or self.config.verifier.cached(known.token) is not known.identity:
                known = self._know(authorization)
                if known is None:
                    return None
            routes = known.routes
            lines.append(known.headers)
        target = routes.target(method, path)
        if target is None:
            return None
        if query:
            target += b"?" + query
        request_id, correlation_id = _ids(request_id, correlation_id)
        lines.append(header_lines(_request_headers(request_id, correlation_id, client)))
        # No line break can hide in these lines: llhttp refuses CR and LF in header
        # values and the URL, the path is percent-encoded, ids are plain, and _know
        # checked the token's lines.
        return self.upstream.request_head(method.encode(), target, lines)

    def _header_kind(self, name: bytes) -> int:
        kind = _FAST_READS.get(name)
        if kind is None:
            kind = _PASS if self._passes(name) else _DROP
        if len(self._header_kinds) < 1024:  # names are the client's to choose
            self._header_kinds[name] = kind
        return kind

    def _know(self, authorization: bytes) -> _KnownToken | None:
        """The fast path's entry for a token ``TokenVerifier`` verified before and still
        accepts now, else ``None`` (the entry, if any, is dropped)."""
        self._tokens.pop(authorization, None)
        try:
            token = _bearer_token(authorization)
        except Refusal:
            return None
        identity = self.config.verifier.cached(token)
        if identity is None:
            return None
        headers = _identity_headers(identity)
        if self._passes(b"authorization"):
            headers = [(b"authorization", authorization), *headers]
        lines = header_lines(headers)
        if line_breaks(lines) != len(headers):
            return None  # http refuses to send it (sidecar.upstream)
        known = _KnownToken(token, identity, self._routes_of(identity.roles), lines)
        if len(self._tokens) >= _FAST_CACHE_SIZE:
            self._tokens.clear()
        self._tokens[authorization] = known
        return known

    def _routes_of(self, roles: tuple[str, ...] | None) -> _Routes:
        routes = self._routes.get(roles)
        if routes is None:
            if len(self._routes) >= _FAST_CACHE_SIZE:
                self._routes.clear()
            routes = self._routes[roles] = _Routes(self.config.rules, roles)
        return routes

    async def bad_gateway(self, exchange: Exchange) -> None:
        """The answer to a fast request the service did not answer in time."""
        request = self._describe(exchange.headers, exchange.client, AUDIT_KIND_HTTP,
                                 exchange.method)
        await _send_json(exchange, 502, "bad_gateway", "the service did not answer",
                         request.request_id)

    # -- HTTP -----------------------------------------------------------------------
    async def http(self, exchange: Exchange) -> None:
        """One HTTP request, from the lean server (``sidecar.httpserver``)."""
        method = exchange.method.upper()
        request = self._describe(exchange.headers, exchange.client, AUDIT_KIND_HTTP, method)
        request.path = exchange.raw_path.decode("latin-1")  # until normalized
        try:
            token = _bearer(request.headers)
            path = await self._authorize(request, exchange.raw_path, token, method)
        except Refusal as refusal:
            await self._audit_refusal(request, refusal)
            await _send_json(exchange, refusal.status, refusal.error, refusal.detail,
                             request.request_id)
            return
        record = None
        if method not in SAFE_METHODS:
            try:
                record = await self._audit(request, AUDIT_OUTCOME_ALLOWED)
            except AuditUnavailableError as error:
                await _send_json(exchange, 503, "audit_unavailable",
                                 f"the change was not made: {error}", request.request_id)
                return
        await self._forward(exchange, request, path, record)

    async def _forward(self, exchange: Exchange, request: _Request, path: NormalizedPath,
                       record: AuditRecord | None) -> None:
        target = path.encoded
        if exchange.query:
            target += "?" + exchange.query.decode("latin-1")
        headers = self._forward_headers(request, record)
        has_body = any(
            name in (b"content-length", b"transfer-encoding") for name, _ in request.headers
        ) and _header(request.headers, b"content-length") != "0"
        try:
            response = await self.upstream.request(
                request.method, target, headers, exchange.read if has_body else None)
        except UpstreamError as error:
            log.warning("upstream %s%s failed: %s", self._upstream, target, error)
            await _send_json(exchange, 502, "bad_gateway", "the service did not answer",
                             request.request_id)
            return
        try:
            exchange.start(response.status, response.headers)
            while chunk := await response.read():
                await exchange.write(chunk)
            exchange.end()
        except UpstreamError as error:
            log.warning("upstream %s%s broke off: %s", self._upstream, target, error)
            exchange.keep_alive = False  # the response is cut short: the client must see it
        finally:
            response.close()

    # -- WebSocket --------------------------------------------------------------------
    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        request = self._describe(scope["headers"], f"{peer[0]}:{peer[1]}" if peer else "",
                                 AUDIT_KIND_WEBSOCKET_CONNECT, "WEBSOCKET")
        request.path = scope.get("path", "")
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        token = _bearer(request.headers)
        accepted = False
        try:
            if token is None:  # the token comes as the first message
                await send({"type": "websocket.accept"})
                accepted = True
                token = await self._first_message_token(receive)
            path = await self._authorize(request, raw_path, token, "WEBSOCKET")
        except Refusal as refusal:
            await self._audit_refusal(request, refusal)
            await _ws_refuse(scope, send, refusal, request.request_id, accepted)
            return
        except Disconnected:
            return
        url = self._ws_upstream + path.encoded
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        protocols = [p.strip() for p in _header(request.headers, b"sec-websocket-protocol")
                     .split(",") if p.strip()]
        try:
            upstream = await connect(
                url, additional_headers=[
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in self._forward_headers(request, None, WS_CLIENT_ONLY)],
                subprotocols=protocols or None, compression=None, proxy=None,  # type: ignore[arg-type]
                user_agent_header=None,
            )
        except (OSError, InvalidHandshake, TimeoutError) as error:
            log.warning("upstream websocket %s failed: %s", url, error)
            status = error.response.status_code if isinstance(error, InvalidStatus) else 502
            failure = Refusal(502 if status < 400 else status, "bad_gateway",
                              "the service refused the connection", AUDIT_OUTCOME_REJECTED)
            await _ws_refuse(scope, send, failure, request.request_id, accepted)
            return
        if not accepted:
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
        await self._pump(request, receive, send, upstream)

    async def _first_message_token(self, receive: Receive) -> str:
        try:
            message = await asyncio.wait_for(receive(), self.config.ws_auth_timeout)
        except TimeoutError:
            raise Refusal(401, "unauthorized", "no token within the time allowed",
                          AUDIT_OUTCOME_DENIED_UNAUTHENTICATED) from None
        if message["type"] == "websocket.disconnect":
            raise Disconnected
        try:
            body = json.loads(message.get("text") or message.get("bytes") or b"")
            token = body["access_token"] if isinstance(body, dict) else None
        except (ValueError, KeyError):
            token = None
        if not isinstance(token, str):
            raise Refusal(401, "unauthorized",
                          'the first message must be {"access_token": "<token>"}',
                          AUDIT_OUTCOME_DENIED_UNAUTHENTICATED)
        return token

    async def _pump(self, request: _Request, receive: Receive, send: Send,
                    upstream: ClientConnection) -> None:
        async def client_to_service() -> None:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                text: str | None = message.get("text")
                data: str | bytes = text if text is not None else (message.get("bytes") or b"")
                if not await self._audit_ws_message(request, data, send):
                    continue
                await upstream.send(data)

        async def service_to_client() -> None:
            try:
                async for data in upstream:
                    key = "text" if isinstance(data, str) else "bytes"
                    await send({"type": "websocket.send", key: data})
            except ConnectionClosed:
                pass
            code = upstream.close_code or 1000
            await send({"type": "websocket.close", "code": code,
                        "reason": upstream.close_reason or ""})

        tasks = [asyncio.create_task(client_to_service()),
                 asyncio.create_task(service_to_client())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await upstream.close()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _audit_ws_message(self, request: _Request, data: str | bytes, send: Send) -> bool:
        """Audits one client message (an action); False when it must not be forwarded."""
        identity = request.identity
        action = dataclasses.replace(request, kind=AUDIT_KIND_WEBSOCKET_MESSAGE,
                                     request_id=_new_id(),
                                     entity_id=_message_entity(data) or request.entity_id)
        correlation = _message_field(data, "correlation_id")
        if correlation and _ID.fullmatch(correlation):
            action.correlation_id = correlation
        if identity is not None and identity.expires_at < time.time():
            refusal = Refusal(401, "unauthorized", "the token has expired",
                              AUDIT_OUTCOME_DENIED_UNAUTHENTICATED)
            await self._audit_refusal(action, refusal)
            await send({"type": "websocket.close", "code": 4401, "reason": "token expired"})
            raise Disconnected
        try:
            await self._audit(action, AUDIT_OUTCOME_ALLOWED)
        except AuditUnavailableError:
            await send({"type": "websocket.send", "text": json.dumps({
                "error": "audit_unavailable", "detail": "the action was not forwarded",
                "request_id": action.request_id})})
            return False
        return True


@functools.lru_cache(maxsize=4096)
def _identity_headers(identity: Identity) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-troupe-subject", quote(identity.subject, safe="").encode()),
        (b"x-troupe-name", quote(identity.name, safe=" ").encode()),
        (b"x-troupe-roles", ",".join(quote(r, safe="") for r in identity.roles).encode()),
        (b"x-troupe-issuer", identity.issuer.encode("latin-1", "replace")),
    ]


def _new_id() -> str:
    """128 random bits. A request id is no secret (a client may bring its own), so the
    process's generator (seeded from the system's) serves, without a system call."""
    return random.randbytes(16).hex()


def _ids(request_id: str, correlation_id: str) -> tuple[str, str]:
    """The request id (the client's if it is a plain id, else a new one) and the
    correlation id (the client's if plain, else the request id)."""
    request_id = request_id if request_id and _ID.fullmatch(request_id) else _new_id()
    plain = correlation_id and _ID.fullmatch(correlation_id)
    return request_id, correlation_id if plain else request_id


def _request_headers(request_id: str, correlation_id: str,
                     client: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-request-id", request_id.encode()),
        (b"x-correlation-id", correlation_id.encode()),
        (b"x-forwarded-for", client.rsplit(":", 1)[0].encode()),
    ]


def _message_field(data: str | bytes, name: str) -> str:
    if not data or (data[:1] not in ("{", b"{")):
        return ""
    try:
        body = json.loads(data)
    except ValueError:
        return ""
    value = body.get(name) if isinstance(body, dict) else None
    return value[:256] if isinstance(value, str) else ""


def _message_entity(data: str | bytes) -> str:
    return _message_field(data, "entity_id")


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    values = [v for k, v in headers if k.lower() == b"authorization"]
    if not values:
        return None
    if len(values) > 1:
        raise Refusal(401, "unauthorized", "more than one Authorization header",
                      AUDIT_OUTCOME_DENIED_UNAUTHENTICATED)
    return _bearer_token(values[0])


def _bearer_token(authorization: bytes) -> str:
    scheme, _, token = authorization.decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refusal(401, "unauthorized", "the Authorization header must be 'Bearer <token>'",
                      AUDIT_OUTCOME_DENIED_UNAUTHENTICATED)
    return token.strip()


def _error_body(error: str, detail: str, request_id: str) -> bytes:
    return json.dumps({"error": error, "detail": detail, "request_id": request_id}).encode()


async def _send_json(exchange: Exchange, status: int, error: str, detail: str,
                     request_id: str) -> None:
    headers = [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode())]
    if status == 401:
        description = re.sub(r'["\\\r\n]', "'", detail)
        challenge = f'Bearer error="invalid_token", error_description="{description}"'
        headers.append((b"www-authenticate", challenge.encode()))
    await exchange.respond(status, headers, _error_body(error, detail, request_id))


async def _ws_refuse(scope: Scope, send: Send, refusal: Refusal, request_id: str,
                     accepted: bool) -> None:
    if accepted:
        await send({"type": "websocket.send", "text": _error_body(
            refusal.error, refusal.detail, request_id).decode()})
        code = {401: 4401, 403: 4403, 400: 4400}.get(refusal.status, 1011)
        await send({"type": "websocket.close", "code": code, "reason": refusal.error})
    elif "websocket.http.response" in scope.get("extensions", {}):
        body = _error_body(refusal.error, refusal.detail, request_id)
        await send({"type": "websocket.http.response.start", "status": refusal.status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})
