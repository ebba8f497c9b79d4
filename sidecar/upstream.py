"""A small HTTP/1.1 client for the one service behind a sidecar: keep-alive
connections (TCP_NODELAY) to one host, bodies streamed both ways, responses parsed
by httptools (llhttp, in C).

Each connection is an ``asyncio.Protocol`` with one parser for its whole life that
is fed as data arrives; a request waits on a plain future with a timer for its
timeout. The sidecar sits on every request, and on this 2-core machine httpx added
~15 ms per request, h11 took most of the proxy's CPU time, and StreamReader plus
``asyncio.wait_for`` (a task per read) a fifth of it (see docs/sidecar.md,
Benchmarks).

The fast path (``UpstreamPool.relay``) needs no task nor future at all: a request
without body is written to an idle connection, and the parser's callbacks hand the
response to a ``ResponseRelay`` (the client's side) as it arrives.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, cast

import httptools  # type: ignore[import-untyped]

Headers = list[tuple[bytes, bytes]]
# Response bytes buffered for a slow client before the service is read no further.
_HIGH_WATER = 256 * 1024


class UpstreamError(Exception):
    """The service could not be reached or broke the exchange."""


class UpstreamTimeout(UpstreamError):
    """The service did not answer within the read timeout."""


class ResponseRelay(Protocol):
    """Where ``UpstreamPool.relay`` delivers a response: ``relay_response`` after each
    read that brought some of it once its head is complete, up to the one with ``end``;
    or ``relay_failed``."""

    def relay_response(self, status: int, headers: Headers, body: list[bytes],
                       end: bool) -> None: ...

    def relay_failed(self, error: UpstreamError) -> None: ...


def header_lines(headers: Headers) -> bytes:
    """Headers as they go on the wire: a ``name: value`` line each, ending in CRLF."""
    return b"".join([name + b": " + value + b"\r\n" for name, value in headers])


def line_breaks(data: bytes) -> int:
    """How many lines ``data`` has, or -1 if a CR or LF stands alone (or is doubled)."""
    lines = data.count(b"\n")
    return lines if data.count(b"\r") == lines else -1


class ReadPausing:
    """Pausing and resuming a protocol's reading, each only when it changes anything."""

    transport: asyncio.Transport | None = None
    _reading_paused = False

    def pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()


class _Connection(ReadPausing, asyncio.Protocol):
    """One keep-alive connection; its parser callbacks collect the current response,
    which a ``ResponseRelay`` is handed after each read (the fast path) or an
    ``UpstreamResponse`` waits for."""

    def __init__(self, pool: UpstreamPool, read_timeout: float) -> None:
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.closed = False
        self._pool = pool
        self._loop = asyncio.get_running_loop()
        self._read_timeout = read_timeout
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self.error: UpstreamError | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.busy = False  # a request was sent; its response is not over yet
        self.status = 0
        self.headers: Headers = []
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.headers_done = False
        self.done = False
        self.keep_alive = False
        self._interim = False  # the response being parsed is a 1xx before the real one
        # The fast path: where the response goes, and its read timeout (one timer per
        # connection, re-armed while data keeps arriving, not one per request).
        self.relay_to: ResponseRelay | None = None
        self._head_request = False
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if not self.busy:  # nothing was asked: the service is confused
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self.error = UpstreamError(f"invalid response from the service: {error}")
            self.close()  # a relay hears of it from connection_lost
        relay = self.relay_to
        if relay is None:
            if self.buffered > _HIGH_WATER:
                self.pause_reading()
            self._wake()
        elif self.headers_done and not self.closed:
            self._relay(relay)
        else:
            self._last_read = self._loop.time()

    def connection_lost(self, _exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        relay, self.relay_to = self.relay_to, None
        if relay is not None:
            if self.error is None and self.headers_done and not self.framed():
                relay.relay_response(self.status, self.headers, [], True)  # ended by the close
            else:
                relay.relay_failed(self.error or UpstreamError("the service closed the connection"))
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # -- httptools callbacks ---------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.done:  # raised out of feed_data as a parser error: the connection closes
            raise UpstreamError("the service sent a response nobody asked for")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200 and status != 101:  # 100 Continue, 103 Early Hints: not the answer
            self.headers = []
            self._interim = True
            return
        self.status = status
        self.headers_done = True
        # Asked now: once the message is complete the parser has reset and says False.
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
        else:
            self.done = True

    # -- the exchange's side -----------------------------------------------------------
    def start(self) -> None:
        """Resets the response state for a new request."""
        self.busy = True
        self.headers, self.chunks, self.buffered = [], [], 0
        self.headers_done = self.done = self.keep_alive = False
        self.resume_reading()

    def send(self, head: bytes, relay: ResponseRelay, head_request: bool) -> None:
        """Sends a request without body; its response goes to ``relay``."""
        self.start()
        self.relay_to = relay
        self._head_request = head_request
        self._last_read = self._loop.time()
        if self._timer is None:
            self._timer = self._loop.call_later(self._read_timeout, self._check_time)
        self.write(head)

    def _check_time(self) -> None:
        self._timer = None
        if self.relay_to is None:
            return
        quiet = self._loop.time() - self._last_read
        if quiet < self._read_timeout:
            self._timer = self._loop.call_later(self._read_timeout - quiet, self._check_time)
            return
        self.error = UpstreamTimeout("the service did not answer in time")
        self.close()  # connection_lost tells the relay

    def _relay(self, relay: ResponseRelay) -> None:
        """Hands what this read brought to the relay; at the end, the connection goes back
        to the pool first (the relay may start the client's next request at once)."""
        body, self.chunks = self.chunks, []
        end = self.done or self._head_request
        if self._head_request:
            body = []  # whatever a service sends after the head of a HEAD is no body
        if not end:
            self._last_read = self._loop.time()
        elif self.done and self.keep_alive and not self._head_request:
            self.relay_to = None
            self._pool._release(self)
        else:  # after a HEAD the parser would expect the body its headers announce
            self.relay_to = None
            self.close()
        relay.relay_response(self.status, self.headers, body, end)

    def abandon(self) -> None:
        """The client went away in the middle of the response: nobody is told."""
        self.relay_to = None
        self.close()

    def framed(self) -> bool:
        """Whether the response's headers say where its body ends (else the close does)."""
        return any(name.lower() in (b"content-length", b"transfer-encoding")
                   for name, _ in self.headers)

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise UpstreamError("the service closed the connection")
        self.transport.write(data)

    async def drain(self) -> None:
        if self._writable is not None:
            await self._writable
        if self.closed:
            raise UpstreamError("the service closed the connection")

    def take(self) -> list[bytes]:
        chunks, self.chunks, self.buffered = self.chunks, [], 0
        self.resume_reading()
        return chunks

    async def wait(self) -> None:
        """Waits for more of the response (or the end of the connection)."""
        self._raise_error()
        if self.closed:
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(self._read_timeout, self._time_out, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        self._raise_error()

    def _raise_error(self) -> None:
        # A method of its own: checked inline, mypy would take self.error for still None
        # after the await, and the compiled code (troupe.compiled) enforces what mypy says.
        if self.error is not None:
            raise self.error

    def _time_out(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(UpstreamTimeout("the service did not answer in time"))

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def reusable(self, now: float, idle_timeout: float) -> bool:
        return not self.closed and now - self.idle_since < idle_timeout

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class UpstreamResponse:
    def __init__(self, pool: UpstreamPool, connection: _Connection, head: bool) -> None:
        self.status: int = connection.status
        self.headers = connection.headers
        self._pool = pool
        self._connection: _Connection | None = connection
        self._head = head
        self._taken: collections.deque[bytes] = collections.deque()

    async def read(self) -> bytes:
        """The next piece of the body, ``b""`` at its end (the connection then goes back
        to the pool)."""
        connection = self._connection
        if connection is None or self._head:  # no body follows a HEAD's; do not reuse
            return b""
        while not self._taken:
            if connection.chunks:
                self._taken.extend(connection.take())
            elif connection.done:
                self._connection = None
                if connection.keep_alive:
                    self._pool._release(connection)
                else:
                    connection.close()
                return b""
            elif connection.closed:  # a body delimited by the end of the connection, or cut
                self.close()
                if connection.error is not None or connection.framed():
                    raise UpstreamError("the service broke off its response")
                return b""
            else:
                await connection.wait()
        return self._taken.popleft()

    def close(self) -> None:
        """Drops the connection unless the body was read to its end."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class UpstreamPool:
    def __init__(self, host: str, port: int, max_idle: int = 128, connect_timeout: float = 5.0,
                 read_timeout: float = 60.0, idle_timeout: float = 2.0) -> None:
        self.host = host
        self.port = port
        self._idle: list[_Connection] = []
        self._max_idle = max_idle
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        # Reuse a connection only while the service surely still keeps it open
        # (uvicorn closes idle connections after 5 s).
        self._idle_timeout = idle_timeout
        self._host_header = f"host: {host}:{port}\r\n".encode()

    def relay(self, head: bytes, relay: ResponseRelay, head_request: bool) -> _Connection | None:
        """The fast path: sends a request without body (``head``: its request line and
        headers, ``request_head``) on an idle connection; the response goes to ``relay``.
        ``None`` when no connection is idle: the caller takes the path that connects."""
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable(now, self._idle_timeout):
                connection.send(head, relay, head_request)
                return connection
            connection.close()
        return None

    async def request(self, method: str, target: str, headers: Headers,
                      body: Callable[[], Awaitable[bytes]] | None) -> UpstreamResponse:
        """Sends a request; ``body`` reads its body piece by piece (``b""``: the end)."""
        chunked = body is not None and not any(n == b"content-length" for n, _ in headers)
        head = self._head(method, target, headers, chunked)
        # Without a body the request can be sent again on a fresh connection when a
        # kept-alive one turns out closed; a body can be streamed only once.
        attempts = 1 if body is not None else 2
        for attempt in range(attempts):
            connection = await self._acquire(fresh=attempt > 0)
            try:
                connection.start()
                connection.write(head)
                if body is not None:
                    while chunk := await body():
                        connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked
                                         else chunk)
                        await connection.drain()
                    if chunked:
                        connection.write(b"0\r\n\r\n")
                while not connection.headers_done:
                    await connection.wait()  # raises the parser's or the timer's error
                    if connection.closed and not connection.headers_done:
                        raise UpstreamError("the service closed the connection")
                return UpstreamResponse(self, connection, method == "HEAD")
            except (OSError, UpstreamError) as error:
                connection.close()
                if attempt + 1 >= attempts:
                    if isinstance(error, UpstreamError):
                        raise
                    raise UpstreamError(str(error) or type(error).__name__) from error
            except BaseException:
                connection.close()
                raise
        raise UpstreamError("unreachable")

    def _head(self, method: str, target: str, headers: Headers, chunked: bool) -> bytes:
        if chunked:
            headers = [*headers, (b"transfer-encoding", b"chunked")]
        head = self.request_head(method.encode("latin-1"), target.encode("latin-1"),
                                 [header_lines(headers)])
        if line_breaks(head) != len(headers) + 3:
            raise UpstreamError("a header or the target contains a line break")
        return head

    def request_head(self, method: bytes, target: bytes, lines: list[bytes]) -> bytes:
        """The request line, ``Host`` and the header ``lines`` (``header_lines``; a
        line break anywhere else is the caller's to rule out)."""
        return b"".join([method, b" ", target, b" HTTP/1.1\r\n", self._host_header, *lines,
                         b"\r\n"])

    async def _acquire(self, fresh: bool) -> _Connection:
        now = time.monotonic()
        while self._idle and not fresh:
            connection = self._idle.pop()
            if connection.reusable(now, self._idle_timeout):
                return connection
            connection.close()
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self, self._read_timeout),
                                       self.host, self.port),
                self._connect_timeout,
            )
        except (OSError, TimeoutError) as error:
            raise UpstreamError(f"cannot connect: {error!r}") from error
        return connection

    def _release(self, connection: _Connection) -> None:
        connection.busy = False
        if len(self._idle) < self._max_idle and not connection.closed:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()
