"""Running one sidecar: its settings, the uvicorn server around the proxy, and its
worker processes."""

from __future__ import annotations

import dataclasses
import gc
import logging
import multiprocessing
import multiprocessing.connection
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from sidecar.audit_kafka import AuditWriterConfig, KafkaAuditLog
from sidecar.httpserver import protocol_factory
from sidecar.proxy import ProxyConfig, SidecarApp
from sidecar.rules import Rules
from sidecar.tokens import Issuer, Policy, TokenVerifier
from troupe.settings import KafkaSettings

log = logging.getLogger(__name__)


@dataclass
class SidecarSettings:
    service: str
    rules_file: Path
    upstream: str
    issuers: list[Issuer]
    kafka: KafkaSettings
    host: str = "127.0.0.1"
    port: int = 8100
    instance_id: str = ""
    spool_dir: Path = Path(".troupe/sidecar")
    policy: Policy = field(default_factory=Policy)
    kafka_timeout: float = 5.0
    # Processes serving the port (SO_REUSEPORT); each writes its own audit chain.
    workers: int = 1

    def resolved_instance_id(self) -> str:
        """Stable across restarts, so a restarted sidecar continues its own chain."""
        return self.instance_id or f"{self.service}-{socket.gethostname()}-{self.port}"


def build(settings: SidecarSettings) -> tuple[SidecarApp, KafkaAuditLog, TokenVerifier]:
    rules = Rules.load(settings.rules_file)
    if rules.service != settings.service:
        raise ValueError(f"{settings.rules_file} is for {rules.service}, not {settings.service}")
    verifier = TokenVerifier(settings.issuers, settings.policy)
    audit = KafkaAuditLog(settings.kafka, AuditWriterConfig(
        instance_id=settings.resolved_instance_id(), spool_dir=settings.spool_dir,
        kafka_timeout=settings.kafka_timeout,
    ))
    app = SidecarApp(ProxyConfig(service=settings.service, upstream=settings.upstream,
                                 rules=rules, verifier=verifier, audit=audit))
    return app, audit, verifier


def uvicorn_config(app: SidecarApp, **options: Any) -> uvicorn.Config:
    """uvicorn around the sidecar: HTTP through ``sidecar.httpserver``, WebSockets
    through the ASGI app, and the client address always the TCP peer's."""
    options = {"log_level": "warning", "server_header": False, "lifespan": "on",
               "timeout_keep_alive": 30, **options}
    # With its default, uvicorn would believe a client's X-Forwarded-For from 127.0.0.1.
    # uvloop named, not "auto": without it the sidecar would run, on asyncio's own loop,
    # at a fraction of the speed.
    return uvicorn.Config(app, http=protocol_factory(app), proxy_headers=False, loop="uvloop",
                          **options)


def listen_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                         socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:  # the kernel spreads new connections over the workers' sockets
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def run(settings: SidecarSettings) -> None:
    """Runs the sidecar; with ``workers`` > 1, that many processes on one port."""
    if settings.workers <= 1:
        _serve(settings, None)
        return
    context = multiprocessing.get_context("spawn")  # no threads or Kafka clients forked
    workers = [context.Process(target=_serve, args=(settings, n), name=f"sidecar-worker-{n}")
               for n in range(settings.workers)]
    for worker in workers:
        worker.start()

    def stop(_signum: int, _frame: object) -> None:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # One worker gone means the sidecar is not what was configured: stop all, and let
    # whatever supervises the sidecar restart it.
    multiprocessing.connection.wait([worker.sentinel for worker in workers])
    stop(signal.SIGTERM, None)
    for worker in workers:
        worker.join()


def _serve(settings: SidecarSettings, worker: int | None) -> None:
    if worker is not None:
        # Each worker is its own audit chain (instance id + worker number), and must
        # keep its number across restarts, like a single sidecar keeps its instance id.
        settings = dataclasses.replace(
            settings, instance_id=f"{settings.resolved_instance_id()}-w{worker}")
    app, audit, verifier = build(settings)
    verifier.start_refresher()
    audit.start()
    if not audit.wait_ready(settings.kafka_timeout * 3):
        log.warning("audit log not ready yet: changes get 503 until Kafka answers")
    sock = listen_socket(settings.host, settings.port, reuse_port=worker is not None)
    # What start-up made (modules, rules, clients) stays: the collector need not scan it
    # again and again while requests come and go.
    gc.collect()
    gc.freeze()
    try:
        uvicorn.Server(uvicorn_config(app)).run(sockets=[sock])
    finally:
        sock.close()
        verifier.stop_refresher()
        audit.stop()
