"""What the benchmark installs, and the facts of the machine it ran on.

- The ``bench`` extra of pyproject.toml (FastStream, pyinstrument) goes into the
  project's virtualenv, constrained to the project's own pins so that nothing the
  project uses is up- or downgraded.
- Quix Streams goes into a virtualenv of its own under .cache/bench-venvs/, from
  quix-requirements.txt: its pins (confluent-kafka<2.13, pydantic<2.14) conflict
  with the project's.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
QUIX_REQUIREMENTS = Path(__file__).with_name("quix-requirements.txt")
VENVS = ROOT / ".cache" / "bench-venvs"


def _pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        project: dict[str, object] = tomllib.load(file)["project"]
    return project


def bench_requirements() -> list[str]:
    extras = _pyproject()["optional-dependencies"]
    assert isinstance(extras, dict)
    return list(extras["bench"])


def _installed(requirement: str) -> bool:
    wanted = Requirement(requirement)
    try:
        version = importlib.metadata.version(wanted.name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return wanted.specifier.contains(version, prereleases=True)


def ensure_bench_extra(log: Path) -> None:
    """Installs the ``bench`` extra into this virtualenv if it is not there yet."""
    requirements = bench_requirements()
    if all(_installed(r) for r in requirements):
        return
    dependencies = _pyproject()["dependencies"]
    assert isinstance(dependencies, list)
    constraints = log.with_name("constraints.txt")
    # Constraints take no extras: "pyjwt[crypto]==x" constrains "pyjwt==x".
    constraints.write_text("".join(f"{Requirement(d).name}{Requirement(d).specifier}\n" for d in dependencies))
    print(f"installing {', '.join(requirements)} into {sys.prefix}", flush=True)
    _pip([sys.executable], ["-c", str(constraints), *requirements], log)


def quix_python(log: Path) -> Path:
    """The Python of the Quix Streams virtualenv, made (once per requirements) if needed."""
    text = QUIX_REQUIREMENTS.read_text()
    match = re.search(r"^quixstreams==(\S+)$", text, re.MULTILINE)
    assert match, "quix-requirements.txt pins quixstreams"
    venv = VENVS / f"quix-{match.group(1)}"
    python = venv / "bin" / "python"
    stamp = venv / ".bench-requirements"
    digest = hashlib.sha256(text.encode()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return python
    print(f"creating {venv} with quixstreams {match.group(1)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    _pip([str(python)], ["-r", str(QUIX_REQUIREMENTS)], log)
    stamp.write_text(digest)
    return python


def _pip(python: list[str], arguments: list[str], log: Path) -> None:
    with log.open("a") as out:
        result = subprocess.run(
            [*python, "-m", "pip", "install", "--disable-pip-version-check", "-q", *arguments],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        raise SystemExit(f"pip install {' '.join(arguments)} failed; see {log}")


def _first(path: str, pattern: str) -> str:
    try:
        text = Path(path).read_text()
    except OSError:
        return "unknown"
    match = re.search(pattern, text, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def _version(python: Path | str, package: str) -> str:
    result = subprocess.run(
        [
            str(python),
            "-c",
            f"import importlib.metadata as m; print(m.version({package!r}))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "not installed"


def _java() -> str:
    try:
        result = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    except OSError:
        return "unknown"
    return (result.stderr or result.stdout).splitlines()[0] if result.returncode == 0 else "unknown"


def machine(quix: Path | None) -> dict[str, object]:
    import confluent_kafka

    from troupe.kafka.local import KAFKA_VERSION

    mem_kb = int(_first("/proc/meminfo", r"^MemTotal:\s+(\d+)") or 0)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _first("/proc/cpuinfo", r"^model name\s*:\s*(.+)$"),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "java": _java(),
        "kafka": KAFKA_VERSION,
        "confluent_kafka": importlib.metadata.version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "protobuf": importlib.metadata.version("protobuf"),
        "faststream": _version(sys.executable, "faststream"),
        "aiokafka": _version(sys.executable, "aiokafka"),
        "quixstreams": _version(quix, "quixstreams") if quix else "not installed",
        "quix_confluent_kafka": _version(quix, "confluent-kafka") if quix else "not installed",
    }


def source_version() -> dict[str, object]:
    """The commit measured, and whether the runtime or the service had local changes."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return result.stdout.strip()

    changed = git("status", "--porcelain", "--", "troupe", "services/customer", "contracts")
    return {"commit": git("rev-parse", "--short", "HEAD"), "runtime_uncommitted": bool(changed)}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
