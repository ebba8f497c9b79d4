"""A small HTTP/1.1 client for the one service behind a sidecar: keep-alive
connections (TCP_NODELAY) to one host, bodies streamed both ways, responses parsed
by httptools (llhttp, in C). The sidecar sits on every request, and on this 2-core
machine httpx added ~15 ms per request and h11 most of the proxy's CPU time (see
docs/sidecar.md, Benchmarks).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import httptools  # type: ignore[import-untyped]

Headers = list[tuple[bytes, bytes]]
_READ = 65536


class UpstreamError(Exception):
    """The service could not be reached or broke the exchange."""


class _Response:
    """httptools callbacks: collects the status, headers and body chunks."""

    def __init__(self) -> None:
        self.headers: Headers = []
        self.chunks: list[bytes] = []
        self.headers_done = False
        self.done = False
        self.keep_alive = False
        self.parser: httptools.HttpResponseParser | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        # Asked now: once the message is complete the parser has reset and says False.
        self.keep_alive = self.parser is not None and self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def close(self) -> None:
        self.writer.close()


class UpstreamResponse:
    def __init__(self, pool: UpstreamPool, connection: _Connection,
                 parser: httptools.HttpResponseParser, state: _Response, head: bool) -> None:
        self.status: int = parser.get_status_code()
        self.headers = state.headers
        self._pool = pool
        self._connection: _Connection | None = connection
        self._parser = parser
        self._state = state
        self._head = head

    async def body(self) -> AsyncIterator[bytes]:
        connection, state = self._connection, self._state
        assert connection is not None
        if self._head:  # no body follows, whatever the headers say; do not reuse
            return
        while True:
            if state.chunks:
                chunks, state.chunks = state.chunks, []
                for chunk in chunks:
                    yield chunk
            if state.done:
                break
            data = await self._pool._read(connection)
            if not data:  # a body delimited by the end of the connection
                self.close()
                return
            _feed(self._parser, data)
        self._connection = None
        if state.keep_alive:
            self._pool._release(connection)
        else:
            connection.close()

    def close(self) -> None:
        """Drops the connection unless the body was read to its end."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _feed(parser: httptools.HttpResponseParser, data: bytes) -> None:
    try:
        parser.feed_data(data)
    except httptools.HttpParserError as error:
        raise UpstreamError(f"invalid response from the service: {error}") from None


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

    async def request(self, method: str, target: str, headers: Headers,
                      body: AsyncIterator[bytes] | None) -> UpstreamResponse:
        chunked = body is not None and not any(n == b"content-length" for n, _ in headers)
        head = self._head(method, target, headers, chunked)
        # Without a body the request can be sent again on a fresh connection when a
        # kept-alive one turns out closed; a body can be streamed only once.
        attempts = 1 if body is not None else 2
        for attempt in range(attempts):
            connection = await self._acquire(fresh=attempt > 0)
            try:
                writer = connection.writer
                writer.write(head)
                if body is not None:
                    async for chunk in body:
                        writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                        await writer.drain()
                    if chunked:
                        writer.write(b"0\r\n\r\n")
                await writer.drain()
                state = _Response()
                parser = state.parser = httptools.HttpResponseParser(state)
                while not state.headers_done:
                    data = await self._read(connection)
                    if not data:
                        raise UpstreamError("the service closed the connection")
                    _feed(parser, data)
                return UpstreamResponse(self, connection, parser, state, method == "HEAD")
            except (OSError, UpstreamError, asyncio.IncompleteReadError) as error:
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
        parts = [f"{method} {target} HTTP/1.1\r\n".encode("latin-1"), self._host_header]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        if chunked:
            parts.append(b"transfer-encoding: chunked\r\n")
        parts.append(b"\r\n")
        head = b"".join(parts)
        lines = len(headers) + 3 + chunked
        if head.count(b"\n") != lines or head.count(b"\r") != lines:
            raise UpstreamError("a header or the target contains a line break")
        return head

    async def _acquire(self, fresh: bool) -> _Connection:
        now = time.monotonic()
        while self._idle and not fresh:
            connection = self._idle.pop()
            if now - connection.idle_since < self._idle_timeout and not (
                connection.reader.at_eof() or connection.writer.is_closing()
            ):
                return connection
            connection.close()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=_READ * 4),
                self._connect_timeout,
            )
        except (OSError, TimeoutError) as error:
            raise UpstreamError(f"cannot connect: {error!r}") from error
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Connection(reader, writer)

    async def _read(self, connection: _Connection) -> bytes:
        try:
            return await asyncio.wait_for(connection.reader.read(_READ), self._read_timeout)
        except TimeoutError:
            raise UpstreamError("the service did not answer in time") from None

    def _release(self, connection: _Connection) -> None:
        if len(self._idle) < self._max_idle:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()
