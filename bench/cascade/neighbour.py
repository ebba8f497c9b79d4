"""A busy neighbour: processes that take a given number of the machine's cores, as
another tenant of the host does, so that a run shows how the layer's figures hold
with less of the machine left to it (``--busy-neighbour-cores``)."""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager

# A burner catches up at most this much CPU at a time, and sleeps at most this long:
# its work spread over time like a neighbour's, not one long stall.
STEP_S = 0.005


def shares(cores: float) -> list[float]:
    """The share of a core each burner takes: as few burners as can hold ``cores``,
    evenly loaded."""
    if cores < 0:
        raise ValueError(f"a neighbour cannot take {cores} cores")
    count = math.ceil(cores)
    return [cores / count] * count if count else []


def burn(share: float) -> None:
    """Uses ``share`` of a core's CPU time, whatever else runs: a burner the
    scheduler held back makes it up (a wall-clock duty cycle would yield to the
    layer and take less)."""
    started, used_before = time.perf_counter(), time.process_time()
    while True:
        behind = share * (time.perf_counter() - started) - (time.process_time() - used_before)
        if behind > 0:
            until = time.process_time() + min(behind, STEP_S)
            while time.process_time() < until:
                pass
        else:
            time.sleep(min(-behind / share, STEP_S))


@contextmanager
def busy_neighbour(cores: float) -> Iterator[None]:
    """Burners taking ``cores`` while the block runs (none for 0)."""
    # Spawned, not forked: the benchmark's process has threads and open clients.
    context = multiprocessing.get_context("spawn")
    burners = [context.Process(target=burn, args=(share,), daemon=True) for share in shares(cores)]
    for burner in burners:
        burner.start()
    try:
        yield
    finally:
        for burner in burners:
            burner.terminate()
            burner.join(5)
