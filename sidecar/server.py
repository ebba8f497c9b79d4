"""Running one sidecar: its settings, and the uvicorn server around the proxy."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from sidecar.audit_kafka import AuditWriterConfig, KafkaAuditLog
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


def run(settings: SidecarSettings) -> None:
    app, audit, verifier = build(settings)
    verifier.start_refresher()
    audit.start()
    if not audit.wait_ready(settings.kafka_timeout * 3):
        log.warning("audit log not ready yet: changes get 503 until Kafka answers")
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="warning",
        proxy_headers=False,  # the client address is the peer's, never X-Forwarded-For
        server_header=False, lifespan="on", timeout_keep_alive=30,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        verifier.stop_refresher()
        audit.stop()
