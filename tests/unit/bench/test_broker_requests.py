"""The cascade benchmark's count of broker requests per call (pure logic)."""

from __future__ import annotations

from bench.cascade.broker_requests import count, describe, per_call


def line(at_ms: int, client: str, api: str) -> bytes:
    """A line of the broker's request log as the local cluster writes it."""
    header = f'{{"requestApiKey":1,"correlationId":7,"clientId":"{client}","requestApiKeyName":"{api}"}}'
    return f'{at_ms} Completed request:{{"isForwarded":false,"requestHeader":{header},"request":{{}}}}\n'.encode()


def test_requests_in_the_span_are_counted_by_client_and_kind_and_others_are_not() -> None:
    # given requests before, during and after a span from 1000 to 2000 ms, and a line that is no request
    lines = [
        line(999, "routing-bench", "FETCH"),
        line(1000, "routing-bench", "FETCH"),
        line(1500, "routing-bench", "FETCH"),
        line(1500, "routing-bench-b", "END_TXN"),
        b"[2026-11-24 15:00:00,000] WARN something else (kafka.server)\n",
        line(2000, "AddPartitionsManager-client-0", "ADD_PARTITIONS_TO_TXN"),
        line(2001, "routing-bench", "PRODUCE"),
    ]
    # when they are counted for the span
    counted = count(lines, 1000, 2000)
    # then only the span's requests count, each under its client and kind
    assert counted == {
        ("routing-bench", "FETCH"): 2,
        ("routing-bench-b", "END_TXN"): 1,
        ("AddPartitionsManager-client-0", "ADD_PARTITIONS_TO_TXN"): 1,
    }


def test_per_call_figures_sum_each_kind_and_each_client_most_first() -> None:
    # given 4 calls' requests
    counted = count([line(1, "a", "FETCH")] * 6 + [line(1, "b", "FETCH"), line(1, "b", "PRODUCE")], 0, 10)
    # when they are taken per call
    figures = per_call(counted, 4)
    # then each kind and each client is summed, the most first, and the total leads the description
    assert figures == {"by_api": {"FETCH": 1.75, "PRODUCE": 0.25}, "by_client": {"a": 1.5, "b": 0.5}}
    assert describe(figures)[0] == "broker requests per call: 2.0"
