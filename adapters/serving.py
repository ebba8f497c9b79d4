"""Running an HTTP app (an adapter or a simulator): in a background thread for
tests, benchmarks and the local run, and as an adapter process of its own."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from troupe.observability import logs
from troupe.settings import settings


class BackgroundServer:
    def __init__(self, app: FastAPI, port: int = 0, host: str = "127.0.0.1") -> None:
        if not port:
            with socket.socket() as probe:
                probe.bind((host, 0))
                port = int(probe.getsockname()[1])
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.url} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


# -- an adapter as a process (``python -m adapters.<name>``) -------------------


def demo() -> bool:
    """The local run (``troupe up``) asks adapters to bring their simulators."""
    return os.environ.get("TROUPE_DEMO") == "1"


def http_port(default: int) -> int:
    return int(os.environ.get("TROUPE_HTTP_PORT", str(default)))


def start_process(component: str) -> None:
    """Logs as JSON lines naming the component, like the services; without a line
    per HTTP request or SMTP conversation."""
    logs.configure(settings().log_level, component=component)
    for chatty in ("httpx", "mail.log"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def run_until_stopped(alive: Callable[[], bool] = lambda: True) -> None:
    """Blocks until SIGTERM/SIGINT (or until ``alive`` says the work stopped)."""
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    while alive() and not stopping.wait(0.5):
        pass
