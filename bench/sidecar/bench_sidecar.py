"""Sidecar benchmark: a trivial service called directly, through nginx (Debian's
package, plain reverse proxy) and through the sidecar, side by side in one run.

    .venv/bin/python -m bench.sidecar.bench_sidecar [--seconds 10] [--rate 1000] [--workers N]

The trivial service is an nginx server answering ``200 ok`` (so the proxies, not the
service, are what is measured). Every request carries the same valid RS256 token
from the development identity provider; the sidecar verifies it and checks the
rules on each request (GET: not a change, so no audit record). The sidecar runs
three times: as one process ("sidecar", against nginx's one worker), with
``--workers`` processes on its port ("sidecar-<N>w", default: one per core), both
with their hot modules compiled as bin/setup builds them (troupe.compiled; built
first if they are not current), and as one process running those modules from
their Python sources ("sidecar-source", ``TROUPE_COMPILED=off``); and once more
compiled, with its verified-token cache off ("sidecar-uncached", ``--token-cache-size
0``: every request's token parsed and its RS256 signature checked). For each target:

* maximum requests/s: ``wrk`` (Debian's package), 1 thread, 32 connections; and the
  proxy's CPU time per request over that run (user + system time of its processes,
  from /proc, divided by wrk's request count) — steadier than requests/s on a shared
  machine, where the proxy gets whatever share of the cores the others leave it;
* latency at a fixed rate (default 1,000 requests/s): an asyncio client over 16
  keep-alive connections; p50/p99 and the difference to the direct call.

Installs nginx-light and wrk with apt-get when they are missing. Results go to
stdout and bench/results/sidecar-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench import reports
from troupe import compiled

ROOT = Path(__file__).resolve().parents[2]
RULES = """service: bench
rules:
  - {roles: [operator], methods: [GET], paths: ["/**"]}
"""


def ensure_tools() -> None:
    missing = [pkg for tool, pkg in (("nginx", "nginx-light"), ("wrk", "wrk"))
               if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists()]
    if missing:
        print(f"installing {' '.join(missing)} with apt-get", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


# Fixed ports below the ephemeral range (32768-60999 on the development VM, where a
# port the kernel handed out can be taken again by an outgoing connection).
PORTS = range(23000, 24000)
_next_port = iter(PORTS)


def free_port() -> int:
    """The next port of PORTS that nothing listens on."""
    for port in _next_port:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


def nginx_conf(workdir: Path, name: str, server: str) -> Path:
    path = workdir / f"{name}.conf"
    path.write_text(f"""worker_processes 1;
daemon off;
pid {workdir}/{name}.pid;
error_log {workdir}/{name}.error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/{name}-body;
  proxy_temp_path {workdir}/{name}-proxy;
  {server}
}}
""")
    return path


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=1)
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def wrk(url: str, token: str, seconds: int) -> tuple[float, int]:
    """Requests/s and the number of requests."""
    wrk_bin = shutil.which("wrk") or "/usr/bin/wrk"
    output = subprocess.run(
        [wrk_bin, "-t1", "-c32", f"-d{seconds}s", "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in", output)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if match is None or count is None or non2xx is not None:
        raise RuntimeError(f"wrk against {url} failed:\n{output}")
    return float(match.group(1)), int(count.group(1))


def cpu_seconds(pid: int) -> float:
    """User + system time of a process and its descendants so far (Linux /proc)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> None:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.decode(errors="replace"))
    match = re.search(rb"(?i)content-length:\s*(\d+)", head)
    if match:
        await reader.readexactly(int(match.group(1)))
    else:
        await reader.readuntil(b"0\r\n\r\n")


async def fixed_rate(port: int, token: str, rate: int, seconds: int) -> list[float]:
    """Sends ``rate`` requests/s for ``seconds``; returns each latency in ms."""
    request = (f"GET /tickets/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Bearer {token}\r\n\r\n").encode()
    connections: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.Queue())
    for _ in range(16):
        await connections.put(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    loop = asyncio.get_running_loop()

    async def one() -> None:
        reader, writer = await connections.get()
        started = loop.time()
        await _exchange(reader, writer, request)
        latencies.append((loop.time() - started) * 1000)
        await connections.put((reader, writer))

    tasks = []
    begin = loop.time()
    for n in range(rate * seconds):
        delay = begin + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    while not connections.empty():
        _, writer = connections.get_nowait()
        writer.close()
    return latencies


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 10) - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="worker processes of the second sidecar")
    args = parser.parse_args()
    ensure_tools()
    if compiled.build():
        print("compiled the sidecar's hot modules (troupe compile)", flush=True)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    workdir = Path(tempfile.mkdtemp(prefix="sidecar-bench-"))
    service, proxy, side, side_n, side_source, side_uncached, idp = (free_port() for _ in range(7))
    service_conf = nginx_conf(workdir, "service", f"""server {{
    listen 127.0.0.1:{service} reuseport backlog=4096;
    keepalive_requests 1000000;
    location / {{ return 200 "ok\\n"; }}
  }}""")
    proxy_conf = nginx_conf(workdir, "proxy", f"""upstream service {{
    server 127.0.0.1:{service};
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{proxy} backlog=4096;
    keepalive_requests 1000000;
    location / {{
      proxy_pass http://service;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}""")
    rules = workdir / "rules.yaml"
    rules.write_text(RULES)
    troupe = [sys.executable, "-m", "troupe.cli"]
    env = {**os.environ, "TROUPE_LOG_LEVEL": "ERROR",
           # GETs are not audited, so no Kafka is needed; the audit writer just waits.
           "TROUPE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    quiet = subprocess.DEVNULL
    with processes() as started:
        started.append(subprocess.Popen([nginx, "-c", str(service_conf)], stdout=quiet, stderr=quiet))
        started.append(subprocess.Popen([nginx, "-c", str(proxy_conf)], stdout=quiet, stderr=quiet))
        pids = {"direct": started[0].pid, "nginx": started[1].pid}
        started.append(subprocess.Popen(
            [*troupe, "idp", "run", "--listen", f"127.0.0.1:{idp}", "--key-dir",
             str(workdir / "idp")], cwd=ROOT, env=env, stdout=quiet, stderr=quiet))
        issuer = f"http://127.0.0.1:{idp}"
        wait_http(f"{issuer}/jwks.json")
        token = httpx.post(f"{issuer}/token",
                           data={"username": "olga", "password": "demo"}).json()["access_token"]
        # name: port, worker processes, whether its hot modules run compiled, token cache size
        sidecars = {"sidecar": (side, 1, True, 10_000),
                    f"sidecar-{args.workers}w": (side_n, args.workers, True, 10_000),
                    "sidecar-source": (side_source, 1, False, 10_000),
                    "sidecar-uncached": (side_uncached, 1, True, 0)}
        for name, (port, workers, native, cache) in sidecars.items():
            sidecar = subprocess.Popen(
                [*troupe, "sidecar", "run", "--service", "bench", "--rules", str(rules),
                 "--upstream", f"http://127.0.0.1:{service}", "--listen", f"127.0.0.1:{port}",
                 "--issuer", issuer, "--jwks-url", f"{issuer}/jwks.json", "--audience", "troupe",
                 "--instance-id", f"bench-{name}", "--spool-dir", str(workdir / "spool"),
                 "--workers", str(workers), "--token-cache-size", str(cache)],
                cwd=ROOT, env={**env, "TROUPE_COMPILED": "on" if native else "off"},
                stdout=quiet, stderr=quiet)
            started.append(sidecar)
            pids[name] = sidecar.pid
        targets = {"direct": service, "nginx": proxy,
                   **{name: port for name, (port, *_) in sidecars.items()}}
        for port in targets.values():
            wait_http(f"http://127.0.0.1:{port}/health")
        for port, *_ in sidecars.values():
            check = httpx.get(f"http://127.0.0.1:{port}/tickets/1",
                              headers={"Authorization": f"Bearer {token}"})
            refused = httpx.get(f"http://127.0.0.1:{port}/tickets/1")
            assert (check.status_code, refused.status_code) == (200, 401), "sidecar misconfigured"
        results: dict[str, dict[str, float]] = {}
        for name, port in targets.items():
            url = f"http://127.0.0.1:{port}/tickets/1"
            wrk(url, token, 2)  # warm-up
            cpu_before = cpu_seconds(pids[name])
            throughput, requests = wrk(url, token, args.seconds)
            cpu = cpu_seconds(pids[name]) - cpu_before
            latencies = asyncio.run(fixed_rate(port, token, args.rate, args.seconds))
            results[name] = {
                "max_rps": round(throughput),
                "cpu_us_per_request": round(cpu / requests * 1e6, 1),
                "p50_ms": round(percentile(latencies, 50), 3),
                "p99_ms": round(percentile(latencies, 99), 3),
            }
            print(f"{name:8} {results[name]}", flush=True)
    for name in targets.keys() - {"direct"}:
        results[name]["added_p50_ms"] = round(results[name]["p50_ms"]
                                              - results["direct"]["p50_ms"], 3)
        results[name]["added_p99_ms"] = round(results[name]["p99_ms"]
                                              - results["direct"]["p99_ms"], 3)
    # nginx runs one worker process: "sidecar" (one process) is the like-for-like ratio.
    ratios = {name: round(results[name]["max_rps"] / results["nginx"]["max_rps"], 3)
              for name in sidecars}
    report = {"machine": reports.machine(), "rate": args.rate, "seconds": args.seconds,
              "nginx_worker_processes": 1, "sidecar_workers": args.workers,
              "results": results, "sidecar_vs_nginx_throughput": ratios,
              "load_average": os.getloadavg()}
    print(json.dumps(report, indent=2))
    reports.save("sidecar", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
