"""The sidecar's HTTP/1.1 server side: an ``asyncio.Protocol`` that uvicorn runs
(``uvicorn.Config(http=...)``) in place of its own HTTP protocol.

Requests are parsed by httptools (llhttp, in C) and handed to ``SidecarApp.http``
as an ``Exchange`` — method, raw path, headers, peer, a streamed body and a
streamed response — without ASGI's per-message dictionaries and the task-per-read
of a generic server: profiled, uvicorn's HTTP cycle was a third of the sidecar's
CPU time per request (docs/sidecar.md, Benchmarks). A WebSocket upgrade is handed
to uvicorn's WebSocket protocol exactly as uvicorn's own HTTP protocol does it, so
WebSockets still run through the ASGI side of ``SidecarApp``.

Requests on one connection are answered in order (pipelined ones wait); uvicorn's
server still owns the sockets, lifespan, signals and graceful shutdown.

The common request takes a fast path without any task or coroutine: when
``SidecarApp.fast_request`` finds, from the parser's callback, that a GET or HEAD
needs nothing but forwarding (its token already verified, a rule allows it), it
returns the request for the service, which is written at once to a pooled
connection (``UpstreamPool.relay``); the service's response is written back to the
client as its parser's callbacks see it (``_Relay``). Anything else — and a fast
request that finds no idle connection to the service or whose connection turns out
closed — runs as an ``Exchange`` through ``SidecarApp.http``.
"""

from __future__ import annotations

import asyncio
import collections
import http
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import httptools  # type: ignore[import-untyped]
from uvicorn import Config
from uvicorn.server import ServerState

from sidecar.upstream import ReadPausing, UpstreamError, UpstreamTimeout

if TYPE_CHECKING:
    from sidecar.proxy import SidecarApp
    from sidecar.upstream import _Connection

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]
# Request body bytes buffered before the client is read no further.
_HIGH_WATER = 256 * 1024
_NO_BODY_STATUS = frozenset({204, 304})
# Request line plus headers; llhttp sets no limit of its own.
MAX_HEAD_BYTES = 64 * 1024
# Headers about one connection, not the message: never passed on, either way.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "expect",
})
HOP_BY_HOP_BYTES = frozenset(name.encode() for name in HOP_BY_HOP)
FAST_METHODS = frozenset({"GET", "HEAD"})


class Disconnected(Exception):
    """The client went away before the exchange was over."""


def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")


_STATUS_LINES = {status.value: _status_line(status.value) for status in http.HTTPStatus}


def response_head(status: int, headers: Headers, head_request: bool,
                  keep_alive: bool) -> tuple[bytes, bool]:
    """The status line and headers for the client, hop-by-hop headers left out, framing
    and keep-alive added; and whether the body must be sent chunked (nothing else says
    where it ends)."""
    parts = [_STATUS_LINES.get(status) or _status_line(status)]
    has_length = False
    kinds = _response_header_kinds
    for name, value in headers:
        kind = kinds.get(name)
        if kind is None:
            kind = _response_header_kind(name)
        if kind is not _HOP_BY_HOP:
            has_length = has_length or kind is _LENGTH
            parts.append(name + b": " + value + b"\r\n")
    chunked = not (head_request or status in _NO_BODY_STATUS or has_length)
    if chunked:
        parts.append(b"transfer-encoding: chunked\r\n")
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    return b"".join(parts), chunked


# Response header names as the service spells them, and what response_head does with
# them: the service sends the same few names again and again.
_HOP_BY_HOP, _LENGTH, _OTHER = "hop-by-hop", "length", "other"
_response_header_kinds: dict[bytes, str] = {}


def _response_header_kind(name: bytes) -> str:
    lower = name.lower()
    kind = (_HOP_BY_HOP if lower in HOP_BY_HOP_BYTES
            else _LENGTH if lower == b"content-length" else _OTHER)
    if len(_response_header_kinds) < 1024:
        _response_header_kinds[name] = kind
    return kind


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


class Exchange:
    """One request and its response, as the proxy sees them."""

    def __init__(self, protocol: HttpProtocol, method: str, raw_path: bytes, query: bytes,
                 headers: Headers, keep_alive: bool, expect_continue: bool) -> None:
        self.method = method
        self.raw_path = raw_path
        self.query = query
        self.headers = headers
        self.client = protocol.client
        self.keep_alive = keep_alive
        self._protocol = protocol
        self._expect_continue = expect_continue
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self.body_complete = False
        self._waiter: asyncio.Future[None] | None = None
        self.disconnected = False
        self.started = False
        self.finished = False
        self._chunked = False
        self._head = method == "HEAD"

    # -- the request body (fed by the protocol) ------------------------------------
    def _feed(self, chunk: bytes) -> None:
        if not chunk:  # b"" is the end of the body to read()
            return
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._buffered > _HIGH_WATER:
            self._protocol.pause_reading()
        self._wake()

    def _complete(self) -> None:
        self.body_complete = True
        self._wake()

    def _disconnect(self) -> None:
        self.disconnected = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self) -> bytes:
        """The next piece of the request body as it arrives, ``b""`` at its end; raises
        Disconnected if the client leaves."""
        if self._expect_continue and not self.started:
            self._expect_continue = False
            self._protocol.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        while not self._chunks:
            self._protocol.resume_reading()
            if self.body_complete:
                return b""
            if self.disconnected:
                raise Disconnected
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        return chunk

    # -- the response ----------------------------------------------------------------
    def start(self, status: int, headers: Headers) -> None:
        """Sends the status line and headers (``response_head``)."""
        if self.disconnected:
            raise Disconnected
        self.started = True
        head, self._chunked = response_head(status, headers, self._head, self.keep_alive)
        self._protocol.write(head)

    async def write(self, chunk: bytes) -> None:
        if self.disconnected:
            raise Disconnected
        if not chunk or self._head:
            return
        self._protocol.write(_chunk(chunk) if self._chunked else chunk)
        await self._protocol.drain()

    def end(self) -> None:
        if self._chunked and not self.disconnected:
            self._protocol.write(b"0\r\n\r\n")
        self.finished = True

    async def respond(self, status: int, headers: Headers, body: bytes) -> None:
        """A whole response at once (the proxy's own answers)."""
        self.start(status, [*headers, (b"content-length", str(len(body)).encode())])
        await self.write(body)
        self.end()


class _Relay:
    """A request on the fast path and its response (see the module's doc). It has no
    body; once it is on its way, the service's response arrives through the
    ``ResponseRelay`` callbacks from the upstream connection's parser."""

    __slots__ = (
        "_chunked",
        "_protocol",
        "_request",
        "finished",
        "headers",
        "keep_alive",
        "method",
        "started",
        "upstream",
        "url",
    )
    body_complete = True

    def __init__(self, protocol: HttpProtocol, method: str, url: bytes, headers: Headers,
                 keep_alive: bool, request: bytes) -> None:
        self._protocol = protocol
        self.method = method
        self.url = url
        self.headers = headers
        self.keep_alive = keep_alive
        self._request = request
        self.started = False
        self.finished = False
        self.upstream: _Connection | None = None
        self._chunked = False

    def start(self) -> None:
        self.upstream = self._protocol.app.upstream.relay(self._request, self, self.method == "HEAD")
        if self.upstream is None:  # no idle connection: the full path connects
            self._protocol._run_full(self, self._protocol.app.http)

    # -- sidecar.upstream.ResponseRelay ----------------------------------------------
    def relay_response(self, status: int, headers: Headers, body: list[bytes],
                       end: bool) -> None:
        parts: list[bytes] = []
        if not self.started:
            head, self._chunked = response_head(status, headers, self.method == "HEAD",
                                                self.keep_alive)
            self.started = True
            parts.append(head)
        parts += map(_chunk, body) if self._chunked else body
        if end and self._chunked:
            parts.append(b"0\r\n\r\n")
        if parts:
            self._protocol.write(b"".join(parts))  # one write (one system call) per read
        if end:
            self.upstream = None
            self.finished = True
            self._protocol._done(self)

    def relay_failed(self, error: UpstreamError) -> None:
        self.upstream = None
        if self.started:  # the client has part of the answer: closing tells it the rest is lost
            log.warning("upstream broke off %s %s: %s", self.method, self.url, error)
            self._protocol._done(self)
        elif isinstance(error, UpstreamTimeout):
            log.warning("upstream %s %s: %s", self.method, self.url, error)
            self._protocol._run_full(self, self._protocol.app.bad_gateway)
        else:  # a kept-alive connection the service had closed: sent again on a new one
            self._protocol._run_full(self, self._protocol.app.http)

    # -- the client's side -------------------------------------------------------------
    def _disconnect(self) -> None:
        if self.upstream is not None:
            self.upstream.abandon()
            self.upstream = None

    def pause(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()


class HttpProtocol(ReadPausing, asyncio.Protocol):
    """One client connection (see the module's doc)."""

    def __init__(self, app: SidecarApp, config: Config, server_state: ServerState,
                 app_state: dict[str, Any], _loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.app = app
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.loop = _loop or asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.client = ""
        self._url = b""
        self._headers: Headers = []
        self._head_bytes = 0
        self._current: Exchange | _Relay | None = None  # the request being answered
        self._pending: collections.deque[Exchange | _Relay] = collections.deque()
        self._parsing: Exchange | None = None  # the exchange whose body is arriving
        self._upgrade = False
        self._writable: asyncio.Future[None] | None = None
        # Idle keep-alive connections are closed after config.timeout_keep_alive: one
        # timer per connection that looks at when it went idle, not one per request.
        self._keep_alive_timer: asyncio.TimerHandle | None = None
        # uvicorn's annotation says int; a float works as well, and compiled code
        # (troupe.compiled) would refuse one read through an int annotation.
        self._keep_alive_seconds: float = cast(Any, config).timeout_keep_alive
        self._idle_since: float | None = None
        self._closing = False

    # -- asyncio.Protocol ----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.server_state.connections.add(self)  # type: ignore[arg-type]
        peer = transport.get_extra_info("peername")
        self.client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""

    def connection_lost(self, _exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        self._idle_since = None
        if self._keep_alive_timer is not None:
            self._keep_alive_timer.cancel()
            self._keep_alive_timer = None
        for exchange in (self._current, self._parsing, *self._pending):
            if exchange is not None:
                exchange._disconnect()
        self._pending.clear()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._idle_since = None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            if self._upgrade:
                self._hand_over_websocket(data[upgrade.args[0]:])
            else:
                self._refuse(400, b"unsupported upgrade")
        except httptools.HttpParserError:
            self._refuse(400, b"invalid HTTP request")

    def pause_writing(self) -> None:
        self._writable = self.loop.create_future()
        if isinstance(self._current, _Relay):
            self._current.pause()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None
        if isinstance(self._current, _Relay):
            self._current.resume()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: close when idle, else after the current answer."""
        self._closing = True
        if self._current is None and self.transport is not None:
            self.transport.close()

    # -- httptools callbacks (a message's URL and headers are reset once it is taken) ----
    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))
        self._count(len(name) + len(value))

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:  # refused as an invalid request (400)
            raise ValueError("the request head is too large")

    def on_headers_complete(self) -> None:
        parser = self.parser
        method = parser.get_method().decode("ascii")
        if parser.should_upgrade():
            self._upgrade = _upgrade_of(self._headers) == b"websocket"
            return
        keep_alive = (parser.get_http_version() != "1.0" and parser.should_keep_alive()
                      and not self._closing)
        url, headers = self._url, self._headers
        self._url, self._headers, self._head_bytes = b"", [], 0
        request: Exchange | _Relay
        fast = (self.app.fast_request(method, url, headers, self.client)
                if method in FAST_METHODS else None)
        if fast is not None:
            request = _Relay(self, method, url, headers, keep_alive, fast)
        else:
            expect = any(n == b"expect" and v.lower() == b"100-continue" for n, v in headers)
            request = self._parsing = self._exchange(method, url, headers, keep_alive, expect)
        if self._current is None:
            self._start(request)
        else:  # pipelined: answered after the current one
            self._pending.append(request)

    def on_body(self, body: bytes) -> None:
        if self._parsing is not None:
            self._parsing._feed(body)

    def on_message_complete(self) -> None:
        if self._parsing is not None:
            self._parsing._complete()
            self._parsing = None

    # -- running exchanges -------------------------------------------------------------
    def _exchange(self, method: str, url: bytes, headers: Headers, keep_alive: bool,
                  expect: bool) -> Exchange:
        parsed = httptools.parse_url(url)
        return Exchange(self, method, parsed.path, parsed.query or b"", headers, keep_alive,
                        expect)

    def _start(self, request: Exchange | _Relay) -> None:
        self._current = request
        if isinstance(request, _Relay):
            request.start()
        else:
            self._run_task(request, self.app.http)

    def _run_full(self, relay: _Relay, handler: Callable[[Exchange], Awaitable[None]]) -> None:
        """A fast request the fast path could not finish, run as an exchange instead."""
        exchange = self._exchange(relay.method, relay.url, relay.headers, relay.keep_alive,
                                  False)
        exchange.body_complete = True
        self._current = exchange
        self._run_task(exchange, handler)

    def _run_task(self, exchange: Exchange,
                  handler: Callable[[Exchange], Awaitable[None]]) -> None:
        task = self.loop.create_task(self._run(exchange, handler))
        self.server_state.tasks.add(task)
        task.add_done_callback(self.server_state.tasks.discard)

    async def _run(self, exchange: Exchange,
                   handler: Callable[[Exchange], Awaitable[None]]) -> None:
        try:
            await handler(exchange)
        except Disconnected:
            pass
        except Exception:
            log.exception("request %s failed", exchange.method)
            if not exchange.started and not exchange.disconnected:
                await exchange.respond(500, [(b"content-type", b"text/plain")],
                                       b"internal error")
            exchange.keep_alive = False
        self._done(exchange)

    def _done(self, exchange: Exchange | _Relay) -> None:
        self._current = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        # A request refused before its body was read: the rest of that body may still be
        # on its way (and reading may be paused), so the connection is not reused.
        if not exchange.keep_alive or not exchange.finished or not exchange.body_complete:
            transport.close()
            return
        self.resume_reading()
        if self._pending:
            self._start(self._pending.popleft())
        elif self._closing:
            transport.close()
        else:
            self._idle_since = self.loop.time()
            if self._keep_alive_timer is None:
                self._keep_alive_timer = self.loop.call_later(
                    self._keep_alive_seconds, self._check_keep_alive)

    def _check_keep_alive(self) -> None:
        self._keep_alive_timer = None
        if self._idle_since is None or self.transport is None:
            return  # busy: the timer starts again when it is idle
        idle = self.loop.time() - self._idle_since
        if idle >= self._keep_alive_seconds:
            self.transport.close()
        else:
            self._keep_alive_timer = self.loop.call_later(
                self._keep_alive_seconds - idle, self._check_keep_alive)

    # -- helpers for the exchange ------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        if self._writable is not None:
            await self._writable

    def _refuse(self, status: int, message: bytes) -> None:
        if self.transport is None:
            return
        if self._current is None or not self._current.started:
            self.transport.write(_STATUS_LINES[status] + b"content-type: text/plain\r\n"
                                 b"content-length: %d\r\nconnection: close\r\n\r\n%b"
                                 % (len(message), message))
        self.transport.close()

    def _hand_over_websocket(self, rest: bytes) -> None:
        """Gives the connection to uvicorn's WebSocket protocol, which runs the ASGI app,
        replaying the upgrade request to it (as uvicorn's own HTTP protocol does)."""
        assert self.transport is not None
        if self._current is not None or self.config.ws_protocol_class is None:
            self._refuse(400, b"unsupported upgrade")
            return
        self.server_state.connections.discard(self)
        self._idle_since = None
        method = self.parser.get_method()
        output = [method, b" ", self._url, b" HTTP/1.1\r\n"]
        for name, value in self._headers:
            output += (name, b": ", value, b"\r\n")
        output.append(b"\r\n")
        protocol = self.config.ws_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.app_state)
        protocol.connection_made(self.transport)
        protocol.data_received(b"".join(output) + rest)
        self.transport.set_protocol(protocol)


def _upgrade_of(headers: Headers) -> bytes | None:
    connection: list[bytes] = []
    upgrade = None
    for name, value in headers:
        if name == b"connection":
            connection = [token.strip().lower() for token in value.split(b",")]
        elif name == b"upgrade":
            upgrade = value.lower()
    return upgrade if b"upgrade" in connection else None


def protocol_factory(app: SidecarApp) -> type[asyncio.Protocol]:
    """The ``http`` of ``uvicorn.Config`` that serves ``app``'s HTTP requests."""

    def create(**kwargs: Any) -> asyncio.Protocol:
        return HttpProtocol(app, **kwargs)

    # uvicorn only ever calls it with keyword arguments, as it would a protocol class.
    return cast("type[asyncio.Protocol]", create)

