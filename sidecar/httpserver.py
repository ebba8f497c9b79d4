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
"""

from __future__ import annotations

import asyncio
import collections
import http
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

import httptools  # type: ignore[import-untyped]
from uvicorn import Config
from uvicorn.server import ServerState

if TYPE_CHECKING:
    from sidecar.proxy import SidecarApp

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]
# Request body bytes buffered before the client is read no further.
_HIGH_WATER = 256 * 1024
_NO_BODY_STATUS = frozenset({204, 304})
# Request line plus headers; llhttp sets no limit of its own.
MAX_HEAD_BYTES = 64 * 1024


class Disconnected(Exception):
    """The client went away before the exchange was over."""


def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")


_STATUS_LINES = {status.value: _status_line(status.value) for status in http.HTTPStatus}


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

    async def body(self) -> AsyncIterator[bytes]:
        """The request body as it arrives; raises Disconnected if the client leaves."""
        if self._expect_continue and not self.started:
            self._expect_continue = False
            self._protocol.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        while True:
            while self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                yield chunk
            self._protocol.resume_reading()
            if self.body_complete:
                return
            if self.disconnected:
                raise Disconnected
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    # -- the response ----------------------------------------------------------------
    def start(self, status: int, headers: Headers) -> None:
        """Sends the status line and headers; framing and keep-alive are added here."""
        if self.disconnected:
            raise Disconnected
        self.started = True
        parts = [_STATUS_LINES.get(status) or _status_line(status)]
        has_length = False
        for name, value in headers:
            has_length = has_length or name.lower() == b"content-length"
            parts += (name, b": ", value, b"\r\n")
        if self._head or status in _NO_BODY_STATUS or has_length:
            pass
        else:
            self._chunked = True
            parts.append(b"transfer-encoding: chunked\r\n")
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        self._protocol.write(b"".join(parts))

    async def write(self, chunk: bytes) -> None:
        if self.disconnected:
            raise Disconnected
        if not chunk or self._head:
            return
        self._protocol.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if self._chunked else chunk)
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


class HttpProtocol(asyncio.Protocol):
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
        self._current: Exchange | None = None  # the exchange being answered
        self._pending: collections.deque[Exchange] = collections.deque()
        self._parsing: Exchange | None = None  # the exchange whose body is arriving
        self._upgrade = False
        self._reading_paused = False
        self._writable: asyncio.Future[None] | None = None
        self._keep_alive_timer: asyncio.TimerHandle | None = None
        self._closing = False

    # -- asyncio.Protocol ----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.server_state.connections.add(self)  # type: ignore[arg-type]
        peer = transport.get_extra_info("peername")
        self.client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""

    def connection_lost(self, _exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        self._cancel_keep_alive()
        for exchange in (self._current, self._parsing, *self._pending):
            if exchange is not None:
                exchange._disconnect()
        self._pending.clear()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._cancel_keep_alive()
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

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: close when idle, else after the current answer."""
        self._closing = True
        if self._current is None and self.transport is not None:
            self.transport.close()

    # -- httptools callbacks -----------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_bytes = 0

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
        method = self.parser.get_method().decode("ascii")
        if self.parser.should_upgrade():
            self._upgrade = _upgrade_of(self._headers) == b"websocket"
            return
        url = httptools.parse_url(self._url)
        expect = any(n == b"expect" and v.lower() == b"100-continue" for n, v in self._headers)
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        exchange = Exchange(self, method, url.path, url.query or b"", self._headers,
                            keep_alive and not self._closing, expect)
        self._parsing = exchange
        if self._current is None:
            self._start(exchange)
        else:  # pipelined: answered after the current one
            self._pending.append(exchange)

    def on_body(self, body: bytes) -> None:
        if self._parsing is not None:
            self._parsing._feed(body)

    def on_message_complete(self) -> None:
        if self._parsing is not None:
            self._parsing._complete()
            self._parsing = None

    # -- running exchanges -------------------------------------------------------------
    def _start(self, exchange: Exchange) -> None:
        self._current = exchange
        task = self.loop.create_task(self._run(exchange))
        self.server_state.tasks.add(task)
        task.add_done_callback(self.server_state.tasks.discard)

    async def _run(self, exchange: Exchange) -> None:
        try:
            await self.app.http(exchange)
        except Disconnected:
            pass
        except Exception:
            log.exception("request %s failed", exchange.method)
            if not exchange.started and not exchange.disconnected:
                await exchange.respond(500, [(b"content-type", b"text/plain")],
                                       b"internal error")
            exchange.keep_alive = False
        self._done(exchange)

    def _done(self, exchange: Exchange) -> None:
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
            self._keep_alive_timer = self.loop.call_later(
                self.config.timeout_keep_alive, transport.close)

    # -- helpers for the exchange ------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        if self._writable is not None:
            await self._writable

    def pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    def _cancel_keep_alive(self) -> None:
        if self._keep_alive_timer is not None:
            self._keep_alive_timer.cancel()
            self._keep_alive_timer = None

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
        self._cancel_keep_alive()
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

