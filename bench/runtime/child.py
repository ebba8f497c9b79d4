"""How a contestant process talks to the benchmark: JSON lines on stdout, one
word a line on stdin ("stop", or a contestant-specific question).

Standard library only: it is imported in the Quix Streams virtualenv too.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable


def emit(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def listen(on_line: Callable[[str], bool]) -> threading.Thread:
    """Reads stdin lines on a daemon thread until ``on_line`` returns False or the
    parent closes the pipe (then "stop" is delivered)."""

    def run() -> None:
        for raw in sys.stdin:
            line = raw.strip()
            if line and not on_line(line):
                return
        on_line("stop")

    thread = threading.Thread(target=run, name="bench-control", daemon=True)
    thread.start()
    return thread


def arguments(*extra: tuple[str, dict[str, object]]) -> argparse.ArgumentParser:
    """The arguments every contestant takes (where to read and write, its group),
    and its own ``extra`` (name, keyword arguments of ``add_argument``)."""
    parser = argparse.ArgumentParser()
    for name in ("--bootstrap", "--input", "--output", "--group"):
        parser.add_argument(name, required=True)
    for name, options in extra:
        parser.add_argument(name, **options)  # type: ignore[arg-type]
    return parser


def listen_for_stop(stop: Callable[[], object]) -> threading.Thread:
    """Calls ``stop`` when the benchmark says "stop" (or closes the pipe)."""

    def on_line(line: str) -> bool:
        if line == "stop":
            stop()
            return False
        return True

    return listen(on_line)
