"""Waiting in tests for what happens elsewhere (a broker, another thread, another process)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 20.0, what: str = "") -> T:
    """Calls ``check`` until it returns something true, and returns that; fails the
    test after ``timeout`` seconds, saying what it waited for."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.02)
