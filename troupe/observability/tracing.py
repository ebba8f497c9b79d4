"""W3C trace context carried in Kafka headers, so one cascade is one trace.

Without an OpenTelemetry SDK configured the spans are not recorded, but the
trace id still flows from record to record; with one, every hop is a span.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

Headers = Sequence[tuple[str, str | bytes | None]]

_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("troupe")


def _carrier(headers: Headers | None) -> dict[str, str]:
    carrier: dict[str, str] = {}
    for key, value in headers or ():
        if key in ("traceparent", "tracestate") and value is not None:
            carrier[key] = value.decode() if isinstance(value, bytes) else value
    return carrier


@contextmanager
def span(
    name: str, parent_headers: Headers | None = None, kind: trace.SpanKind = trace.SpanKind.CONSUMER
) -> Iterator[None]:
    """A span for handling one record, child of the trace in its headers."""
    parent = _propagator.extract(_carrier(parent_headers)) if parent_headers else context.get_current()
    with _tracer.start_as_current_span(name, context=parent, kind=kind):
        yield


def current_headers() -> list[tuple[str, str | bytes | None]]:
    """Headers that continue the current trace in the records a handler produces."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return [(key, value.encode()) for key, value in carrier.items()]


def new_trace_headers() -> list[tuple[str, str | bytes | None]]:
    """Headers for a record that starts a cascade (an outside request)."""
    with _tracer.start_as_current_span("troupe.request", kind=trace.SpanKind.PRODUCER):
        headers = current_headers()
    if headers:
        return headers
    # No SDK: make up a sampled root context so the cascade still shares a trace id.
    import secrets

    return [("traceparent", f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01".encode())]
