"""A real Apache Kafka cluster on this machine, for development and tests.

The broker jars come from Maven Central (``pom.xml`` next to this file) and each
node runs in combined KRaft mode (broker and controller in one JVM). Processes
are detached and leave pid files in the data directory, so one command can
start the cluster and another can stop it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient

KAFKA_VERSION = "4.3.1"

POM = Path(__file__).with_name("pom.xml")
# Small heap and G1: the machine has 2 cores and the test suite runs alongside.
JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx768m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)
# Broker log kept across restarts, but rotated once at start when it grows past this.
LOG_ROTATE_BYTES = 50 * 1024 * 1024
CONTROLLER_PORT_OFFSET = 100

# Console only (stdout goes to the node's log file). Log4j's own shutdown hook is off so
# that Kafka's shutdown messages still reach the log.
LOG4J2_CONFIG = """\
status = warn
shutdownHook = disable
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
"""
REQUEST_LOG = "requests.log"
# With ``log_requests``: every request the node completes, one line each (epoch ms, then
# Kafka's JSON of it), in ``requests.log`` of the node's directory (its working
# directory; the file is made on the first request, so formatting a node, run from
# elsewhere, leaves none behind). Costly: for diagnosis.
REQUEST_LOG_CONFIG = f"""\
appender.requests.type = File
appender.requests.name = requests
appender.requests.fileName = {REQUEST_LOG}
appender.requests.createOnDemand = true
appender.requests.layout.type = PatternLayout
appender.requests.layout.pattern = %d{{UNIX_MILLIS}} %m%n
logger.request.level = DEBUG
logger.request.additivity = false
logger.request.appenderRef.requests.ref = requests
"""


class LocalKafkaError(RuntimeError):
    """The local broker could not be fetched, started or stopped."""


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        hint = "a JDK 17 or newer" if tool == "java" else "Apache Maven"
        raise LocalKafkaError(f"`{tool}` is not on PATH; install {hint} to run the local Kafka")
    return path


def fetch(cache_dir: Path) -> Path:
    """Download the Kafka jars into ``<cache_dir>/kafka-<version>/libs`` once; return that dir."""
    home = cache_dir.resolve() / f"kafka-{KAFKA_VERSION}"
    libs = home / "libs"
    marker = home / ".fetched"
    if marker.exists():
        return libs
    mvn = _require("mvn")
    _require("java")
    # A directory without the marker is a half-finished download: start it over.
    shutil.rmtree(libs, ignore_errors=True)
    command = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        f"-Dkafka.version={KAFKA_VERSION}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-4000:]
        raise LocalKafkaError(f"mvn could not fetch Kafka {KAFKA_VERSION}:\n{output}")
    marker.write_text(KAFKA_VERSION + "\n")
    return libs


def _new_cluster_id() -> str:
    # Kafka's cluster id: 16 random bytes, base64url without padding, never starting with '-'.
    while True:
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log yet)"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _quiet(config: dict[str, str | int | float | bool]) -> dict[str, str | int | float | bool]:
    # librdkafka would print every refused connection while the brokers boot.
    return {**config, "log_level": 0}


class LocalCluster:
    """``brokers`` KRaft nodes on 127.0.0.1, node i listening on ``base_port + i``."""

    def __init__(
        self,
        data_dir: Path,
        brokers: int = 1,
        base_port: int = 19092,
        cache_dir: Path = Path(".cache"),
        log_requests: bool = False,
    ) -> None:
        if brokers < 1:
            raise ValueError("brokers must be at least 1")
        self.data_dir = data_dir.resolve()
        self.brokers = brokers
        self.base_port = base_port
        self.cache_dir = cache_dir
        self.log_requests = log_requests
        # Processes this object started; polling them reaps them (no zombies).
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    @classmethod
    def load(cls, data_dir: Path, cache_dir: Path = Path(".cache")) -> LocalCluster:
        """The cluster last started in ``data_dir`` (its size and ports), or a 1-broker default."""
        layout = data_dir / "cluster.json"
        if not layout.exists():
            return cls(data_dir, cache_dir=cache_dir)
        saved = json.loads(layout.read_text())
        return cls(data_dir, int(saved["brokers"]), int(saved["base_port"]), cache_dir)

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{self.port(i)}" for i in range(self.brokers))

    def port(self, i: int) -> int:
        return self.base_port + i

    def log_file(self, i: int) -> Path:
        return self._node_dir(i) / "kafka.log"

    def request_log(self, i: int) -> Path:
        """Node i's request log (written with ``log_requests`` only)."""
        return self._node_dir(i) / REQUEST_LOG

    def pid(self, i: int) -> int | None:
        """Pid of node ``i`` if it is running (whoever started it), else None."""
        proc = self._procs.get(i)
        if proc is not None:
            return proc.pid if proc.poll() is None else None
        try:
            pid = int(self._pid_file(i).read_text())
        except (FileNotFoundError, ValueError):
            return None
        if not Path("/proc").is_dir():
            # Not Linux: trust the pid file if the process exists.
            try:
                os.kill(pid, 0)
            except OSError:
                return None
            return pid
        # The pid file may be stale and the pid reused: check it is this node's JVM.
        # A zombie has an empty cmdline, so it counts as stopped too.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if str(self._config_file(i)).encode() in cmdline else None

    def broker_running(self, i: int) -> bool:
        return self.pid(i) is not None

    def running(self) -> bool:
        """True when every node's process is alive."""
        return all(self.broker_running(i) for i in range(self.brokers))

    def start(self, timeout: float = 60) -> None:
        """Start the nodes not running yet and wait until the cluster serves transactions."""
        self._check_layout()
        if self.running():
            return
        deadline = time.monotonic() + timeout
        java = _require("java")
        libs = fetch(self.cache_dir)
        self._prepare()
        self._format(java, libs)
        launched: list[int] = []
        try:
            for i in range(self.brokers):
                if not self.broker_running(i):
                    launched.append(i)
                    self._launch(java, libs, i)
            self._wait_ready(range(self.brokers), deadline)
            self._wait_transactions(deadline)
        except BaseException:
            # No half-started JVMs left behind eating the CPU (also on Ctrl-C).
            for i in launched:
                self.stop_broker(i, timeout=10)
            raise

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM every node at once, wait for clean exits, then SIGKILL what is left."""
        nodes = [i for i in range(self.brokers) if self.broker_running(i)]
        for i in nodes:
            self._signal(i, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for i in nodes:
            self._await_exit(i, deadline)

    def start_broker(self, i: int, timeout: float = 60) -> None:
        """Start node ``i`` again and wait until the cluster lists it."""
        if self.broker_running(i):
            return
        deadline = time.monotonic() + timeout
        java = _require("java")
        self._launch(java, fetch(self.cache_dir), i)
        try:
            self._wait_ready([i], deadline)
        except BaseException:
            self.stop_broker(i, timeout=10)
            raise

    def stop_broker(self, i: int, timeout: float = 30) -> None:
        """Stop node ``i`` cleanly (controlled shutdown), SIGKILL after ``timeout``."""
        if self.broker_running(i):
            self._signal(i, signal.SIGTERM)
            self._await_exit(i, time.monotonic() + timeout)

    def kill_broker(self, i: int) -> None:
        """SIGKILL node ``i``: a crash, without controlled shutdown."""
        if self.broker_running(i):
            self._signal(i, signal.SIGKILL)
            self._await_exit(i, time.monotonic() + 10)

    # Layout: data_dir/cluster.id, cluster.json, log4j2.properties, node-<i>/{server.properties,
    # kafka.pid, kafka.log, data/}.
    def _node_dir(self, i: int) -> Path:
        return self.data_dir / f"node-{i}"

    def _config_file(self, i: int) -> Path:
        return self._node_dir(i) / "server.properties"

    def _pid_file(self, i: int) -> Path:
        return self._node_dir(i) / "kafka.pid"

    def _check_layout(self) -> None:
        """Refuse a size or port change that the data or the running nodes cannot take."""
        if not (self.data_dir / "cluster.json").exists():
            return
        saved = LocalCluster.load(self.data_dir, self.cache_dir)
        # The quorum voters are baked into the formatted metadata log.
        if saved.brokers != self.brokers:
            raise LocalKafkaError(
                f"{self.data_dir} holds a {saved.brokers}-broker cluster; keep that number of "
                "brokers, or stop it and delete the directory"
            )
        if saved.base_port != self.base_port and any(saved.broker_running(i) for i in range(saved.brokers)):
            raise LocalKafkaError(
                f"the cluster in {self.data_dir} runs on port {saved.base_port}; stop it before changing the port"
            )

    def _prepare(self) -> None:
        """Write the cluster id (once), layout and per-node configs."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        layout = self.data_dir / "cluster.json"
        layout.write_text(json.dumps({"brokers": self.brokers, "base_port": self.base_port}))
        id_file = self.data_dir / "cluster.id"
        if not id_file.exists():
            id_file.write_text(_new_cluster_id() + "\n")
        log_config = LOG4J2_CONFIG + (REQUEST_LOG_CONFIG if self.log_requests else "")
        (self.data_dir / "log4j2.properties").write_text(log_config)
        for i in range(self.brokers):
            self._node_dir(i).mkdir(exist_ok=True)
            self._config_file(i).write_text(self._server_properties(i))

    def _server_properties(self, i: int) -> str:
        replicated = self.brokers >= 3
        voters = ",".join(f"{n}@127.0.0.1:{self.port(n) + CONTROLLER_PORT_OFFSET}" for n in range(self.brokers))
        props: dict[str, object] = {
            "process.roles": "broker,controller",
            "node.id": i,
            "controller.quorum.voters": voters,
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port(i)},CONTROLLER://127.0.0.1:{self.port(i) + CONTROLLER_PORT_OFFSET}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port(i)}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": self._node_dir(i) / "data",
            "num.partitions": 6,
            "auto.create.topics.enable": "false",
            "default.replication.factor": 3 if replicated else 1,
            "min.insync.replicas": 2 if replicated else 1,
            "offsets.topic.replication.factor": 3 if replicated else 1,
            "transaction.state.log.replication.factor": 3 if replicated else 1,
            "transaction.state.log.min.isr": 2 if replicated else 1,
            # Small internal topics are created in a blink; tests need no more.
            "offsets.topic.num.partitions": 6,
            "transaction.state.log.num.partitions": 6,
            "share.coordinator.state.topic.replication.factor": 3 if replicated else 1,
            "share.coordinator.state.topic.min.isr": 2 if replicated else 1,
            "share.coordinator.state.topic.num.partitions": 6,
            # Consumers join at once instead of waiting 3 s for more members.
            "group.initial.rebalance.delay.ms": 0,
            # A crashed (SIGKILLed) node is fenced and leaves the ISR sooner than the defaults.
            "broker.heartbeat.interval.ms": 1000,
            "broker.session.timeout.ms": 6000,
            # Fewer threads: 2 cores shared by every node and the test suite.
            "num.network.threads": 2,
            "num.io.threads": 4,
            "background.threads": 4,
        }
        return "".join(f"{key}={value}\n" for key, value in props.items())

    def _java_command(self, java: str, libs: Path, main: str, *args: str) -> list[str]:
        log_config = f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}"
        return [java, *JVM_OPTIONS, log_config, "-cp", f"{libs}/*", main, *args]

    def _format(self, java: str, libs: Path) -> None:
        """Format the storage of nodes never formatted, in parallel (one JVM each)."""
        cluster_id = (self.data_dir / "cluster.id").read_text().strip()
        pending = {
            i: subprocess.Popen(
                self._java_command(
                    java,
                    libs,
                    "kafka.tools.StorageTool",
                    "format",
                    "--ignore-formatted",
                    "-t",
                    cluster_id,
                    "-c",
                    str(self._config_file(i)),
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for i in range(self.brokers)
            if not (self._node_dir(i) / "data" / "meta.properties").exists()
        }
        for i, proc in pending.items():
            output, _ = proc.communicate()
            if proc.returncode != 0:
                raise LocalKafkaError(f"formatting node {i} failed:\n{output.decode(errors='replace')[-4000:]}")

    def _launch(self, java: str, libs: Path, i: int) -> None:
        for port in (self.port(i), self.port(i) + CONTROLLER_PORT_OFFSET):
            if _listening(port):
                raise LocalKafkaError(f"port {port} is already taken by another process")
        log = self.log_file(i)
        if log.exists() and log.stat().st_size > LOG_ROTATE_BYTES:
            log.replace(log.with_suffix(".log.1"))
        with log.open("ab") as out:
            # The log is appended to across restarts; mark where this run begins.
            out.write(f"=== troupe: starting node {i} at {time.ctime()} ===\n".encode())
            out.flush()
            # A process group of its own: the node outlives this process and Ctrl-C of
            # the caller. Not a session of its own: Linux schedules each session as
            # a group (autogroup), and a broker in a group apart from the services
            # that share its cores cost the call cascade 4-7 % more CPU per call
            # (docs/benchmarks.md, "Twelfth session").
            proc = subprocess.Popen(
                self._java_command(java, libs, "kafka.Kafka", str(self._config_file(i))),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self._node_dir(i),
                process_group=0,
            )
        self._procs[i] = proc
        self._pid_file(i).write_text(f"{proc.pid}\n")

    def _fail(self, message: str, nodes: list[int]) -> LocalKafkaError:
        logs = "\n".join(f"--- {self.log_file(i)} ---\n{_tail(self.log_file(i))}" for i in nodes)
        return LocalKafkaError(f"{message}\n{logs}")

    def _wait_ready(self, nodes: range | list[int], deadline: float) -> None:
        """Until each node answers metadata itself and the cluster metadata lists every node."""
        wanted = set(nodes)
        waiting = list(nodes)
        while waiting:
            i = waiting[0]
            if not self.broker_running(i):
                raise self._fail(f"Kafka node {i} exited while starting", [i])
            if self._answers(i, wanted):
                waiting.pop(0)
                continue
            if time.monotonic() > deadline:
                raise self._fail(f"Kafka node {i} not ready in time", list(nodes))
            time.sleep(0.5)

    def _answers(self, i: int, wanted: set[int]) -> bool:
        # Bootstrapped with this node only, so the first request goes to it.
        admin = AdminClient(_quiet({"bootstrap.servers": f"127.0.0.1:{self.port(i)}"}))
        try:
            metadata = admin.list_topics(timeout=2)
        except KafkaException:
            return False
        # Fenced (not yet registered) brokers are left out of metadata responses.
        return wanted <= set(metadata.brokers)

    def _wait_transactions(self, deadline: float) -> None:
        """init_transactions succeeds only once the transaction coordinator is ready."""
        producer = Producer(
            _quiet(
                {
                    "bootstrap.servers": self.bootstrap_servers,
                    "transactional.id": "troupe-local-kafka-readiness",
                }
            )
        )
        try:
            while True:
                try:
                    producer.init_transactions(max(1.0, min(10.0, deadline - time.monotonic())))
                    return
                except KafkaException as exc:
                    if time.monotonic() > deadline:
                        raise self._fail(
                            f"transaction coordinator not ready in time: {exc}",
                            list(range(self.brokers)),
                        ) from exc
                    time.sleep(0.5)
        finally:
            producer.close()

    def _signal(self, i: int, sig: signal.Signals) -> None:
        pid = self.pid(i)
        if pid is not None:
            # It may have exited since pid() looked.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _await_exit(self, i: int, deadline: float) -> None:
        """Wait for node ``i`` to exit until ``deadline``, then SIGKILL it."""
        while self.broker_running(i) and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.broker_running(i):
            self._signal(i, signal.SIGKILL)
            while self.broker_running(i):
                time.sleep(0.1)
        self._procs.pop(i, None)
        self._pid_file(i).unlink(missing_ok=True)
