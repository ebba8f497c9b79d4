"""How a contestant process talks to the benchmark: JSON lines on stdout, one
word a line on stdin ("stop", or a contestant-specific question).

Standard library only: it is imported in the Quix Streams virtualenv too.
"""

from __future__ import annotations

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
