"""The sidecar as it runs: its hot modules compiled (troupe.compiled), and what that
must not change."""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
import sysconfig
from pathlib import Path

from sidecar.server import SidecarSettings
from sidecar.tokens import Issuer, Policy
from troupe import compiled
from troupe.settings import KafkaSettings


def test_the_hot_modules_run_compiled_after_setup() -> None:
    modules = compiled.configured()
    assert "sidecar.httpserver" in modules
    for name in modules:
        module_file = importlib.import_module(name).__file__ or ""
        assert module_file.endswith(sysconfig.get_config_var("EXT_SUFFIX")), (
            f"{name} runs from its source: run bin/setup (troupe compile)")
    assert compiled.is_current()


def test_compiled_off_runs_the_sources() -> None:
    # given a current build, when a process starts with TROUPE_COMPILED=off
    files = subprocess.run(
        [sys.executable, "-c", "import sidecar.httpserver, sidecar.proxy;"
         "print(sidecar.httpserver.__file__, sidecar.proxy.__file__)"],
        env={**os.environ, "TROUPE_COMPILED": "off"}, cwd=compiled.ROOT,
        capture_output=True, text=True, check=True).stdout.split()
    # then it imports the sources, and the build is left as it was
    assert files == [str(compiled.ROOT / "sidecar" / "httpserver.py"),
                     str(compiled.ROOT / "sidecar" / "proxy.py")]
    assert compiled.is_current()


def test_settings_reach_worker_processes_intact() -> None:
    # given settings as `troupe sidecar run --workers 2` hands them to each worker
    settings = SidecarSettings(
        service="tickets", rules_file=Path("rules.yaml"), upstream="http://127.0.0.1:8000",
        issuers=[Issuer(issuer="https://idp.example", jwks_url="https://idp.example/jwks",
                        audiences=("troupe",), algorithms=("RS256", "ES256"))],
        kafka=KafkaSettings(), policy=Policy(leeway_seconds=5))
    # when they are pickled to a spawned process
    copy = pickle.loads(pickle.dumps(settings))
    # then they arrive unchanged
    assert copy == settings


def write_tree(root: Path, source: str) -> Path:
    """A checkout whose pyproject compiles ``pkg.hot``; returns its would-be build."""
    (root / "pkg").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[tool.troupe]\ncompiled = ["pkg.hot"]\n')
    (root / "pkg" / "hot.py").write_text(source)
    return root / ("pkg/hot" + sysconfig.get_config_var("EXT_SUFFIX"))


def fake_build(root: Path) -> list[Path]:
    """Stands for what `troupe compile` leaves: the extension files and the stamp."""
    files = compiled.outputs(compiled.configured(root), root)
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x7fELF")
    (root / ".cache").mkdir(exist_ok=True)
    (root / ".cache" / "compiled.json").write_text(compiled.digest(["pkg.hot"], root))
    return files


def test_a_build_of_the_present_sources_is_kept(tmp_path: Path) -> None:
    # given a build of the sources as they are
    write_tree(tmp_path, "X = 1\n")
    files = fake_build(tmp_path)
    # when a package holding compiled modules is imported
    compiled.drop_stale_build(tmp_path)
    # then the build stays
    assert all(path.exists() for path in files)
    assert compiled.is_current(tmp_path)


def test_a_build_of_older_sources_is_removed_before_it_can_run(tmp_path: Path) -> None:
    # given a build, and then a source edited
    write_tree(tmp_path, "X = 1\n")
    files = fake_build(tmp_path)
    write_tree(tmp_path, "X = 2\n")
    # when a package holding compiled modules is imported
    compiled.drop_stale_build(tmp_path)
    # then all of the build is gone, so the sources run
    assert not any(path.exists() for path in files)
    assert not compiled.is_current(tmp_path)


def test_a_build_cut_short_is_removed(tmp_path: Path) -> None:
    # given extension files without the stamp a finished build writes last
    write_tree(tmp_path, "X = 1\n")
    files = fake_build(tmp_path)
    (tmp_path / ".cache" / "compiled.json").unlink()
    # when a package holding compiled modules is imported
    compiled.drop_stale_build(tmp_path)
    # then none of it runs
    assert not any(path.exists() for path in files)


def test_outside_a_checkout_nothing_is_compiled_and_nothing_removed(tmp_path: Path) -> None:
    # given a tree without pyproject.toml, as an installed package has
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "hot.py").write_text("X = 1\n")
    # when a package holding compiled modules is imported
    compiled.select_build(tmp_path)
    # then nothing is configured and the source stays
    assert compiled.configured(tmp_path) == []
    assert (tmp_path / "pkg" / "hot.py").exists()
