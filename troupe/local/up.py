"""``troupe up``: the whole layer on this machine, with demo traffic.

Starts the local Kafka broker, then every component that can run on its own
(a folder with ``__main__.py`` under services/, adapters/, and the sidecar and
composer once present), each as its own process with its log under
``<state_dir>/logs``: services first, then adapters, then the demo traffic
(``adapters/demo``), then the development identity provider and the audit view
behind its sidecar; then prints live cascades until Ctrl-C stops everything.

Ports follow the broker's (``--port``, default 19092), so two runs with
different ports do not collide: component n serves gRPC on port+1000+n and HTTP
on port+1100+n; the e-mail adapter's SMTP server listens on port+1200.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from troupe.kafka.local import LocalCluster
from troupe.local.tail import tail
from troupe.settings import KafkaSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
GRPC_OFFSET, HTTP_OFFSET, SMTP_OFFSET = 1000, 1100, 1200
DEMO = "demo"


@dataclass
class Component:
    kind: str
    name: str
    module: str
    grpc_port: int = 0
    http_port: int = 0
    # Arguments after ``python -m <module>``.
    args: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        if self.kind == "service":
            return f"grpc 127.0.0.1:{self.grpc_port}"
        return f"http://127.0.0.1:{self.http_port}"


def components(root: Path = ROOT, base_port: int = 19092) -> list[Component]:
    """Every runnable component of the tree: services first (they create topics),
    then adapters, composer and sidecar, the demo traffic last."""
    found = []
    for kind in ("services", "adapters"):
        for main in sorted((root / kind).glob("*/__main__.py")):
            name = main.parent.name
            if name != DEMO:
                found.append(Component(kind.rstrip("s"), name, f"{kind}.{name}"))
    for name in ("composer", "sidecar"):
        if (root / name / "__main__.py").exists():
            found.append(Component(name, name, name))
    if (root / "adapters" / DEMO / "__main__.py").exists():
        found.append(Component(DEMO, DEMO, f"adapters.{DEMO}"))
    for n, component in enumerate(found):
        component.grpc_port = base_port + GRPC_OFFSET + n
        component.http_port = base_port + HTTP_OFFSET + n
    return found


class Supervisor:
    def __init__(self, settings: Settings, kafka: KafkaSettings) -> None:
        self.settings = settings
        self.kafka = kafka
        self.logs = settings.state_dir / "logs"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, component: Component, shared: dict[str, str]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **shared,
            "TROUPE_KAFKA__BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "TROUPE_STATE_DIR": str(self.settings.state_dir.resolve()),
            "TROUPE_GRPC_ADDRESS": f"127.0.0.1:{component.grpc_port}",
            "TROUPE_HTTP_PORT": str(component.http_port),
            "TROUPE_DEMO": "1",
        }
        log = (self.logs / f"{component.name}.log").open("ab")
        self.processes[component.name] = subprocess.Popen(
            [sys.executable, "-m", component.module, *component.args], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        print(f"  {component.kind:<9} {component.name:<20} {component.address}")

    def failed(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is not None]

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to all at once; what has not exited after ``timeout`` (in all) is killed."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def identity_and_audit(base_port: int, first: int) -> list[Component]:
    """The development identity provider, and the audit view behind a sidecar that
    lets only auditors read it (docs/sidecar.md), on the HTTP ports after the
    ``first`` components'."""
    idp_port, view_port, guard_port = (base_port + HTTP_OFFSET + first + n for n in range(3))
    idp, view = f"http://127.0.0.1:{idp_port}", f"http://127.0.0.1:{view_port}"
    sidecar = (
        "sidecar", "run", "--service", "audit", "--rules", str(ROOT / "sidecar" / "auditview-rules.yaml"),
        "--upstream", view, "--listen", f"127.0.0.1:{guard_port}", "--issuer", idp,
        "--jwks-url", f"{idp}/jwks.json", "--audience", "troupe", "--instance-id", "audit-view-0",
    )
    return [
        Component("identity", "idp", "troupe.cli", http_port=idp_port,
                  args=("idp", "run", "--listen", f"127.0.0.1:{idp_port}")),
        Component("audit", "audit-view", "troupe.cli", http_port=view_port,
                  args=("audit", "serve", "--listen", f"127.0.0.1:{view_port}", "--sign-in-url", f"{idp}/login")),
        Component("sidecar", "audit-sidecar", "troupe.cli", http_port=guard_port, args=sidecar),
    ]


def shared_env(found: list[Component], base_port: int) -> dict[str, str]:
    """What every component is told: where the others are (``TROUPE_URL_<NAME>``),
    the SMTP port of the simulated mail server, and the demo's short wrap-up."""
    env = {f"TROUPE_URL_{c.name.upper()}": f"http://127.0.0.1:{c.http_port}" for c in found}
    env["TROUPE_SMTP_PORT"] = str(base_port + SMTP_OFFSET)
    env["TROUPE_OPERATOR_WRAP_UP_SECONDS"] = os.environ.get("TROUPE_OPERATOR_WRAP_UP_SECONDS", "5")
    return env


def up(settings: Settings, brokers: int = 1, seconds: float | None = None, port: int = 19092) -> int:
    """Runs the layer until Ctrl-C (or for ``seconds``); returns an exit code."""
    cluster = LocalCluster(settings.state_dir / "kafka", brokers=brokers, base_port=port, cache_dir=settings.cache_dir)
    print(f"starting Apache Kafka ({brokers} broker{'s' if brokers > 1 else ''}) ...")
    cluster.start(timeout=180)
    kafka = settings.kafka.model_copy(
        update={
            "bootstrap_servers": cluster.bootstrap_servers,
            "replication_factor": min(brokers, 3),
        }
    )
    print(f"kafka at {kafka.bootstrap_servers}")
    supervisor = Supervisor(settings, kafka)
    started = datetime.now(UTC)
    print("starting components:")
    found = components(base_port=port)
    shared = shared_env(found, port)
    audit = identity_and_audit(port, len(found))
    for component in [*found, *audit]:
        supervisor.start(component, shared)
    print(f"  smtp      (simulated customers' mail)  127.0.0.1:{shared['TROUPE_SMTP_PORT']}")
    print(f"the audit, for auditors: http://127.0.0.1:{audit[-1].http_port}/audit (sign in as Ada)")
    print(f"logs in {supervisor.logs}; live cascades follow (Ctrl-C stops; `troupe kafka down` stops Kafka)")
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    deadline = time.monotonic() + seconds if seconds else None
    try:
        tail(kafka, since=started, stop=lambda: stopping or (deadline is not None and time.monotonic() > deadline))
    finally:
        failed = supervisor.failed()
        supervisor.stop()
    for name in failed:
        print(f"{name} exited early; see {supervisor.logs / (name + '.log')}", file=sys.stderr)
    return 1 if failed else 0
