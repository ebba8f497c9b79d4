"""Routing's choices within one batch, without Kafka: the CPU per call of routing
n calls one after the other against a real store, before the store shows any of
the offers (as in one transaction of the routing service).

    .venv/bin/python -m bench.cascade.routing_batch [--operators-per-site 300] [--batches 50 200 500 800] [--repeat 5]

Each call is decided by the routing service's own ``route`` rule; the operators
are indexed with the look-ups the service declares, as its replica indexes them.
It prints the median of ``--repeat`` batches of each size.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from contracts.operator.v1 import operator_pb2 as operator
from contracts.routing.v1 import routing_pb2 as pb
from services.routing import service as rules
from troupe.service import records
from troupe.service.declaration import Cause, CommandContext
from troupe.state.store import EntityChange, Store
from troupe.state.views import Views

from .bench_cascade import SITES


def store_with_operators(path: Path, per_site: int) -> Store:
    """A store whose operators projection holds ``per_site`` available operators at each site."""
    store = Store(path)
    keys = rules.routing.lookup_keys_for(rules.OPERATORS)
    assert keys is not None
    changes = []
    for site in SITES:
        for n in range(per_site):
            person = operator.Operator(
                operator_id=f"{site}-{n}", site=site, skills=["orders"], presence=operator.PRESENCE_AVAILABLE
            )
            person.presence_since.FromSeconds(1_000 + n)
            state = person.SerializeToString()
            change = EntityChange(rules.OPERATORS, person.operator_id, 1, "PresenceChanged", state, lookups=keys(state))
            changes.append(change)
    store.apply(changes, {})
    return store


def route_batch(views: Views, calls: int) -> float:
    """Seconds to route ``calls`` calls, round the sites, in one go; a fresh thread's
    holds each time (the processor's thread keeps its own)."""
    now = datetime.now(UTC)
    cause = Cause("bench", "bench", records.system("bench"), "bench")
    started = time.perf_counter()
    for number in range(calls):
        request = pb.RouteInteractionRequest(interaction_id=f"call-{number}", site=SITES[number % len(SITES)])
        request.queued_at.FromDatetime(now)
        decision = rules.route(None, request, CommandContext(cause, "RouteInteraction", 0, views))
        assert decision.type == "OperatorOffered", "more calls than operators: use --operators-per-site"
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--operators-per-site", type=int, default=300)
    parser.add_argument("--batches", type=int, nargs="+", default=[50, 200, 500, 800])
    parser.add_argument("--repeat", type=int, default=5, help="batches of each size; the median is printed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        store = store_with_operators(Path(work) / "store.sqlite", args.operators_per_site)
        views = Views(store, rules.routing.view_types())
        print(f"{args.operators_per_site * len(SITES)} operators available; one batch of routing decisions each:")
        for calls in args.batches:
            times = []
            for _ in range(args.repeat):
                store.close()  # a new connection: none of the last batch's holds
                times.append(route_batch(views, calls))
            seconds = statistics.median(times)
            print(f"  {calls:5d} calls: {seconds * 1000 / calls:6.3f} ms per call, {seconds * 1000:7.1f} ms in all")


if __name__ == "__main__":
    main()
