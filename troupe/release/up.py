"""Starting exactly the component versions a release names.

Each component runs from a git worktree of its own commit (components at the
same commit share one), started by its hook: ``python -m <package>``, i.e. the
``__main__.py`` of its folder (``services/customer/__main__.py`` runs as
``python -m services.customer``), with that worktree first on PYTHONPATH so the
runtime kit and generated contracts are the ones of the same commit.

The virtualenv's editable install maps ``troupe``, ``contracts``, ``services``, ...
to the checkout it was installed from. PYTHONPATH comes before it, so a package
present in the worktree always wins; :data:`LAUNCHER` also switches the editable
finders off in the component's process, so a package missing at that commit fails
to import instead of silently coming from the current checkout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from troupe.release.components import resolve_name
from troupe.release.git import Repo
from troupe.release.manifest import Manifest
from troupe.settings import KafkaSettings


class UpError(RuntimeError):
    pass


# ``python -m <module>``, without the import hooks of editable installs
# (setuptools names their modules ``__editable__...``).
LAUNCHER = """\
import runpy, sys
editable = lambda hook: getattr(hook, "__module__", "").startswith("__editable__")
sys.meta_path[:] = [f for f in sys.meta_path if not editable(f)]
sys.path_hooks[:] = [h for h in sys.path_hooks if not editable(h)]
sys.path[:] = [p for p in sys.path if not p.startswith("__editable__")]
sys.path_importer_cache.clear()
runpy.run_module(sys.argv.pop(1), run_name="__main__", alter_sys=True)
"""


@dataclass(frozen=True)
class Launch:
    component: str
    version: str
    worktree: Path
    command: list[str]
    env: dict[str, str]

    @property
    def module(self) -> str:
        return self.command[-1]

    def __str__(self) -> str:
        return f"{self.component}@{self.version}: -m {self.module} in {self.worktree}"


def worktree_path(state_dir: Path, commit: str) -> Path:
    return state_dir / "worktrees" / commit[:12]


def selected(manifest: Manifest, names: list[str]) -> list[str]:
    """The components of ``manifest`` named (``customer`` or ``services/customer``); all when none are."""
    known = sorted(manifest.components)
    try:
        return sorted({resolve_name(name, known) for name in names}) if names else known
    except ValueError as error:
        raise UpError(f"release {manifest.release}: {error}") from error


def plan(
    repo: Repo, manifest: Manifest, state_dir: Path, kafka: KafkaSettings, only: list[str] | None = None
) -> list[Launch]:
    """What ``up`` starts for ``manifest``: one process per component (or per component in ``only``)."""
    launches = []
    for component in selected(manifest, only or []):
        pinned = manifest.components[component]
        commit = repo.resolve(pinned.version)
        if commit is None:
            raise UpError(f"{component}: {pinned.version} is not a commit of this repository")
        worktree = worktree_path(state_dir, commit)
        env = dict(os.environ)
        env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(worktree), env.get("PYTHONPATH")])),
            TROUPE_RELEASE=str(manifest.release),
            TROUPE_COMPONENT=component,
            TROUPE_COMPONENT_VERSION=pinned.version,
            TROUPE_STATE_DIR=str(state_dir / f"release-{manifest.release}" / component),
            TROUPE_KAFKA__BOOTSTRAP_SERVERS=kafka.bootstrap_servers,
            TROUPE_KAFKA__SECURITY_PROTOCOL=kafka.security_protocol,
        )
        module = component.replace("/", ".")
        launches.append(Launch(component, pinned.version, worktree, [sys.executable, "-c", LAUNCHER, module], env))
    return launches


def prepare(repo: Repo, launches: list[Launch]) -> None:
    """Creates the worktrees (reusing existing ones) and checks every start hook exists."""
    repo.git("worktree", "prune")  # forget worktrees whose folders were deleted
    for launch in launches:
        if not launch.worktree.exists():
            launch.worktree.parent.mkdir(parents=True, exist_ok=True)
            repo.git("worktree", "add", "--detach", str(launch.worktree), launch.version)
        hook = launch.worktree / launch.component / "__main__.py"
        if not hook.exists():
            raise UpError(
                f"{launch.component}@{launch.version} has no start hook: {launch.component}/__main__.py is missing"
            )
        Path(launch.env["TROUPE_STATE_DIR"]).mkdir(parents=True, exist_ok=True)


class _StopRequestedError(Exception):
    pass


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise _StopRequestedError


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(launches: list[Launch]) -> int:
    """Starts every launch and supervises them: when one fails, or on Ctrl-C or
    SIGTERM, stops them all. Returns 0 when all ended well."""
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for launch in launches:
            processes.append(subprocess.Popen(launch.command, cwd=launch.worktree, env=launch.env))
            print(f"started {launch.component}@{launch.version} (pid {processes[-1].pid})")
        while True:
            codes = [p.poll() for p in processes]
            failed = [(la, c) for la, c in zip(launches, codes, strict=True) if c not in (None, 0)]
            if failed:
                for launch, code in failed:
                    print(f"{launch.component}@{launch.version} exited: {code}", file=sys.stderr)
                return 1
            if all(c == 0 for c in codes):
                return 0
            time.sleep(0.2)
    except (KeyboardInterrupt, _StopRequestedError):
        print("stopping")
        return 0
    finally:
        _stop(processes)
        signal.signal(signal.SIGTERM, previous)
