"""The sidecar's HTTP client to its service: keep-alive reuse, streaming, HEAD,
a connection the service closed, and header injection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from sidecar.upstream import UpstreamError, UpstreamPool
from tests.unit.sidecar.sidecar_harness import EchoService, serve


async def read(pool: UpstreamPool, method: str, target: str,
               body: Callable[[], Awaitable[bytes]] | None = None,
               headers: list[tuple[bytes, bytes]] | None = None) -> tuple[int, bytes]:
    response = await pool.request(method, target, headers or [], body)
    try:
        parts = []
        while part := await response.read():
            parts.append(part)
        return response.status, b"".join(parts)
    finally:
        response.close()


def chunks(*parts: bytes) -> Callable[[], Awaitable[bytes]]:
    """A body reader that gives ``parts`` one by one, then ``b""``."""
    remaining = list(parts)

    async def read_part() -> bytes:
        return remaining.pop(0) if remaining else b""

    return read_part


def test_connections_are_kept_alive_and_bodies_stream_both_ways() -> None:
    echo = EchoService()
    with serve(echo) as port:
        async def run() -> None:
            pool = UpstreamPool("127.0.0.1", port)
            for n in range(5):
                status, body = await read(pool, "GET", f"/x/{n}?q=1")
                assert status == 200
                assert json.loads(body)["path"] == f"/x/{n}"
                assert len(pool._idle) == 1  # the same connection, again and again
            status, body = await read(pool, "POST", "/up", chunks(b"a" * 70000, b"b"))
            assert json.loads(body)["body_length"] == 70001
            status, body = await read(pool, "GET", "/stream")
            assert body.decode().splitlines() == [f"chunk {n}" for n in range(5)]
            status, body = await read(pool, "HEAD", "/x")
            assert (status, body) == (200, b"")
            pool.close()

        asyncio.run(run())


def test_a_connection_the_service_closed_is_replaced_for_requests_without_body() -> None:
    with serve(EchoService()) as port:
        async def run() -> None:
            pool = UpstreamPool("127.0.0.1", port)
            await read(pool, "GET", "/a")
            pool._idle[0].transport.abort()  # type: ignore[union-attr]  # as if the service dropped it
            await asyncio.sleep(0.05)
            assert (await read(pool, "GET", "/b"))[0] == 200

        asyncio.run(run())


def test_line_breaks_in_headers_and_unreachable_services_are_errors() -> None:
    async def run() -> None:
        pool = UpstreamPool("127.0.0.1", 1, connect_timeout=1)
        with pytest.raises(UpstreamError):
            await read(pool, "GET", "/", headers=[(b"x-a", b"1\r\nx-injected: 1")])
        with pytest.raises(UpstreamError, match="cannot connect"):
            await read(pool, "GET", "/")

    asyncio.run(run())
