"""Where a span's slowest calls come from.

Two questions the p99 alone does not answer:

- Are the slow calls alone (one call's bad luck somewhere on its path) or in
  bursts of calls sent close together (the whole layer slowed for a moment:
  the machine busier, a collector's pause, a tick's batch)?
- Which hop of the chain made the slowest calls slow: each hop's time in the
  slowest 1 % against that hop's median.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# The hops a call waits for one after the other, by the event that ends each.
CHAIN = ("InteractionReceived", "OperatorOffered", "OperatorReserved", "InteractionAssigned")
READ_BACK = "read back"
# Slow calls sent closer together than this belong to one burst (at 50 calls/s,
# five calls apart; the slowest 5 % scattered at random would put about a tenth of
# them in bursts).
BURST_GAP_S = 0.1
# Fewer slow calls in a row than this are not called a burst.
BURST_MIN_CALLS = 3


@dataclass(slots=True)
class Call:
    """One assigned call: when it was sent, when its assignment was read back, and
    when each step of the chain happened, all in seconds on the same clock."""

    sent: float
    read_back: float
    steps: Mapping[str, float]

    @property
    def latency_ms(self) -> float:
        return (self.read_back - self.sent) * 1000

    def hops_ms(self) -> dict[str, float] | None:
        """The time each hop of the chain took, and the read-back after the last;
        None when a step was not seen."""
        hops, before = {}, self.sent
        for step in CHAIN:
            at = self.steps.get(step)
            if at is None:
                return None
            hops[step] = (at - before) * 1000
            before = at
        hops[READ_BACK] = (self.read_back - before) * 1000
        return hops


def bursts(calls: Sequence[Call], threshold_ms: float) -> list[list[Call]]:
    """The calls at or above ``threshold_ms`` that were sent within ``BURST_GAP_S``
    of the previous such call, in groups of at least ``BURST_MIN_CALLS``."""
    slow = sorted((call for call in calls if call.latency_ms >= threshold_ms), key=lambda call: call.sent)
    groups: list[list[Call]] = []
    for call in slow:
        if groups and call.sent - groups[-1][-1].sent <= BURST_GAP_S:
            groups[-1].append(call)
        else:
            groups.append([call])
    return [group for group in groups if len(group) >= BURST_MIN_CALLS]


def excess_per_hop(calls: Sequence[Call], threshold_ms: float) -> dict[str, float]:
    """How much longer than its median each hop took, on average, in the calls at
    or above ``threshold_ms``."""
    hops = [(call, timed) for call in calls if (timed := call.hops_ms()) is not None]
    if not hops:
        return {}
    names = [*CHAIN, READ_BACK]
    medians = {name: statistics.median(timed[name] for _, timed in hops) for name in names}
    slow = [timed for call, timed in hops if call.latency_ms >= threshold_ms]
    if not slow:
        return {}
    return {name: round(statistics.fmean(timed[name] for timed in slow) - medians[name], 1) for name in names}


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def describe(calls: Sequence[Call]) -> dict[str, object]:
    """The span's tail: the share of its slowest 5 % that came in bursts, and each
    hop's excess in its slowest 1 %."""
    if not calls:
        return {}
    latencies = [call.latency_ms for call in calls]
    p95, p99 = percentile(latencies, 0.95), percentile(latencies, 0.99)
    slow = sum(1 for latency in latencies if latency >= p95)
    found = bursts(calls, p95)
    return {
        "p95_ms": round(p95, 1),
        "bursts": len(found),
        "share_in_bursts": round(sum(len(group) for group in found) / slow, 2),
        "longest_burst_s": round(max((group[-1].sent - group[0].sent for group in found), default=0.0), 2),
        "slowest_1_percent_excess_ms": excess_per_hop(calls, p99),
    }
