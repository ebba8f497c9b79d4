"""W3C trace context carried in Kafka headers, so one cascade is one trace.

With an OpenTelemetry SDK configured, handling a record is a span whose context
goes into the records it produces. Without one, nothing would be recorded, so
the runtime skips the span machinery and passes the incoming trace context on
as it is: the cascade still shares one trace id, at no cost per record.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

Headers = list[tuple[str, str | bytes | None]]
TRACE_HEADERS = ("traceparent", "tracestate")

_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("troupe")


_recording = {"checked_at": -1.0, "value": False}


def recording() -> bool:
    """True when an OpenTelemetry SDK (a real tracer provider) is installed;
    looked up at most once a second, as it is asked for every record."""
    now = time.monotonic()
    if now - _recording["checked_at"] > 1.0:
        provider = trace.get_tracer_provider()
        _recording["value"] = not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)
        _recording["checked_at"] = now
    return bool(_recording["value"])


def _carrier(headers: Sequence[tuple[str, str | bytes | None]] | None) -> dict[str, str]:
    carrier: dict[str, str] = {}
    for key, value in headers or ():
        if key in TRACE_HEADERS and value is not None:
            carrier[key] = value.decode() if isinstance(value, bytes) else value
    return carrier


class Span:
    """Handling one record: ``with Span(name, headers) as out`` gives the trace
    headers for the records it produces. A class, not a generator context
    manager: it is entered for every record, and this costs a third as much."""

    __slots__ = ("_active", "_name", "_parent_headers")

    def __init__(self, name: str, parent_headers: Sequence[tuple[str, str | bytes | None]] | None) -> None:
        self._name = name
        self._parent_headers = parent_headers
        self._active: AbstractContextManager[Any] | None = None

    def __enter__(self) -> Headers:
        if not recording():
            return [(key, value) for key, value in self._parent_headers or () if key in TRACE_HEADERS]
        parent = _propagator.extract(_carrier(self._parent_headers))
        self._active = _tracer.start_as_current_span(self._name, context=parent, kind=trace.SpanKind.CONSUMER)
        self._active.__enter__()
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
        return [(key, value.encode()) for key, value in carrier.items()]

    def __exit__(self, *exc_info: Any) -> None:
        if self._active is not None:
            self._active.__exit__(*exc_info)


def new_trace_headers() -> Headers:
    """Headers for a record that starts a cascade (an outside request)."""
    if recording():
        with _tracer.start_as_current_span("troupe.request", kind=trace.SpanKind.PRODUCER):
            carrier: dict[str, str] = {}
            _propagator.inject(carrier)
            return [(key, value.encode()) for key, value in carrier.items()]
    return [("traceparent", f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01".encode())]
