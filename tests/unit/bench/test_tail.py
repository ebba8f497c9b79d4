"""The cascade benchmark's reading of its slowest calls (pure logic)."""

from __future__ import annotations

from bench.cascade.tail import CHAIN, READ_BACK, Call, bursts, describe, excess_per_hop


def call(sent: float, hops_ms: tuple[float, float, float, float, float]) -> Call:
    """A call sent at ``sent`` whose chain's hops and read-back took ``hops_ms``."""
    steps, at = {}, sent
    for step, millis in zip(CHAIN, hops_ms[:4], strict=True):
        at += millis / 1000
        steps[step] = at
    return Call(sent, at + hops_ms[4] / 1000, steps)


USUAL = (10.0, 8.0, 10.0, 10.0, 8.0)  # 46 ms in all


def test_slow_calls_sent_close_together_are_a_burst_and_a_lone_slow_call_is_not() -> None:
    # given calls every 20 ms, three slow ones in a row at 1 s and one alone at 3 s
    calls = [call(i * 0.02, USUAL) for i in range(200)]
    for i in (50, 51, 52, 150):
        calls[i] = call(i * 0.02, (10.0, 8.0, 60.0, 10.0, 8.0))
    # when the calls above 90 ms are grouped
    found = bursts(calls, 90.0)
    # then the three in a row are one burst, and the lone one is in none
    assert [[round(c.sent, 2) for c in burst] for burst in found] == [[1.0, 1.02, 1.04]]


def test_the_hop_that_grew_in_the_slowest_calls_shows_its_excess_over_its_median() -> None:
    # given calls whose reservation hop took 50 ms more in the slowest two
    calls = [call(i * 0.02, USUAL) for i in range(100)]
    calls[10] = call(0.2, (10.0, 8.0, 60.0, 10.0, 8.0))
    calls[70] = call(1.4, (10.0, 8.0, 60.0, 10.0, 8.0))
    # when the slowest calls' hops are set against the medians
    excess = excess_per_hop(calls, 90.0)
    # then the reservation hop stands out and the others do not
    assert round(excess["OperatorReserved"]) == 50
    assert all(abs(excess[hop]) < 0.01 for hop in (*CHAIN, READ_BACK) if hop != "OperatorReserved")


def test_a_slow_call_whose_step_was_not_seen_is_left_out_of_the_hops_but_not_of_the_bursts() -> None:
    # given two slow calls in a row, one of whose offers the benchmark did not see
    calls = [call(i * 0.02, USUAL) for i in range(100)]
    calls[40] = call(0.8, (10.0, 8.0, 60.0, 10.0, 8.0))
    calls[41] = call(0.82, (10.0, 8.0, 110.0, 10.0, 8.0))
    calls[41].steps = {step: at for step, at in calls[41].steps.items() if step != "OperatorOffered"}
    calls[42] = call(0.84, (10.0, 8.0, 60.0, 10.0, 8.0))
    # when the calls above 90 ms are looked at
    found = bursts(calls, 90.0)
    # then the unseen one counts in the burst, and only the seen ones in the hops
    assert calls[41].hops_ms() is None
    assert [len(burst) for burst in found] == [3]
    assert round(excess_per_hop(calls, 90.0)["OperatorReserved"]) == 50


def test_the_summary_gives_the_share_of_the_slowest_5_percent_that_came_in_bursts() -> None:
    # given 100 calls of 40 to 89 ms, the five slowest of them two in a row and three apart
    calls = [call(i * 0.02, (10.0, 8.0, 10.0 + i / 2, 10.0, 2.0)) for i in range(100)]
    for i, sent in zip((95, 96, 97, 98, 99), (0.5, 0.52, 1.2, 1.6, 1.9), strict=True):
        calls[i].sent, calls[i].read_back = sent, sent + calls[i].latency_ms / 1000
    # when the tail is described
    summary = describe(calls)
    # then no three slow calls came close together: no bursts
    assert summary["p95_ms"] == 87.5
    assert summary["bursts"] == 0
    assert summary["share_in_bursts"] == 0
