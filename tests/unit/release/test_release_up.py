"""up --release N: each component started from a worktree of its own commit."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from troupe.settings import settings

from .release_history import Scripted, customer_proto

MAIN = """\
import os
import pathlib

from services.customer import marker

state = pathlib.Path(os.environ["TROUPE_STATE_DIR"])
version = os.environ["TROUPE_COMPONENT_VERSION"]
kafka = os.environ["TROUPE_KAFKA__BOOTSTRAP_SERVERS"]
(state / "ran.txt").write_text(f"{marker.TEXT} {version} {kafka} {marker.__file__}")
"""


@pytest.fixture
def startable(scripted: Scripted, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scripted]:
    """Two releases whose customer service says "one" and "two"."""
    monkeypatch.setenv("TROUPE_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:49999")
    # Settings are read once per process; earlier tests may have read them already.
    settings.cache_clear()
    scripted.write("contracts/customer/v1/customer.proto", customer_proto())
    scripted.write("services/__init__.py", "")
    scripted.write("services/customer/__init__.py", "")
    scripted.write("services/customer/__main__.py", MAIN)
    scripted.write("services/customer/marker.py", 'TEXT = "one"\n')
    scripted.write("composer/__init__.py", "")
    scripted.write("composer/__main__.py", "print('composer up')\n")
    scripted.commit("Customer service and composer")
    scripted.release("bump")
    assert scripted.release("cut", "--notes", "One").code == 0
    scripted.write("services/customer/marker.py", 'TEXT = "two"\n')
    scripted.commit("Customer: two")
    scripted.release("bump")
    assert scripted.release("cut", "--notes", "Two").code == 0
    yield scripted
    settings.cache_clear()


def version_in(repo: Scripted, release: int) -> str:
    ref = f"release-{release}"
    return repo.git("log", "-1", "--format=%h", ref, "--", "services/customer").strip()


def test_up_starts_exactly_the_versions_of_each_release(
    startable: Scripted, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    for release, text in ((1, "one"), (2, "two")):
        result = startable.release("up", "--release", str(release), "--state-dir", str(state))

        assert result.code == 0, result.err
        version = version_in(startable, release)
        assert f"started services/customer@{version}" in result.out
        ran = (state / f"release-{release}" / "services/customer" / "ran.txt").read_text()
        said, pinned, kafka, module = ran.split()
        assert (said, pinned, kafka) == (text, version, "127.0.0.1:49999")
        worktree = Path(module).parents[2]
        assert worktree.parent == state / "worktrees"
        head = startable.git("-C", str(worktree), "rev-parse", "--short", "HEAD").strip()
        assert startable.git("rev-parse", "--short", version).strip() == head
    # Two commits in all: the composer of both releases is the first commit.
    assert len(list((state / "worktrees").iterdir())) == 2


def test_a_dry_run_prints_the_plan_and_starts_nothing(startable: Scripted, tmp_path: Path) -> None:
    state = tmp_path / "state"

    result = startable.release("up", "--release", "1", "--state-dir", str(state), "--dry-run")

    assert result.code == 0
    assert f"services/customer@{version_in(startable, 1)}: -m services.customer in " in result.out
    assert "composer@" in result.out
    assert not state.exists()


def test_a_component_that_fails_stops_the_release(startable: Scripted, tmp_path: Path) -> None:
    startable.write("composer/__main__.py", "import sys, time\nsys.exit(3)\n")
    startable.commit("Composer: broken")
    startable.write(
        "services/customer/__main__.py", "import time\ntime.sleep(60)\n"
    )
    startable.commit("Customer: runs for a while")
    startable.release("bump")
    assert startable.release("cut", "--notes", "Broken composer").code == 0

    result = startable.release("up", "--release", "3", "--state-dir", str(tmp_path / "s"))

    assert result.code == 1
    assert "composer@" in result.err
    assert "exited: 3" in result.err


def test_a_component_without_a_start_hook_is_reported(startable: Scripted, tmp_path: Path) -> None:
    startable.delete("composer/__main__.py")
    startable.commit("Composer: no hook")
    startable.release("bump")
    startable.release("cut", "--notes", "No hook")

    result = startable.release("up", "--release", "3", "--state-dir", str(tmp_path / "s"))

    assert result.code == 2
    assert "has no start hook: composer/__main__.py is missing" in result.err


def test_up_recreates_a_worktree_whose_folder_was_deleted(
    startable: Scripted, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    assert startable.release("up", "--release", "2", "--state-dir", str(state)).code == 0
    for worktree in (state / "worktrees").iterdir():
        shutil.rmtree(worktree)

    result = startable.release("up", "--release", "2", "--state-dir", str(state))

    assert result.code == 0, result.err
    ran = (state / "release-2" / "services/customer" / "ran.txt").read_text()
    assert ran.startswith("two ")


ORIGINS = """\
import importlib.util
import json
import os
import pathlib

import contracts
import services
import troupe

modules = {"contracts": contracts, "services": services, "troupe": troupe}
origins = {name: module.__file__ for name, module in modules.items()}
origins["sidecar"] = bool(importlib.util.find_spec("sidecar"))
(pathlib.Path(os.environ["TROUPE_STATE_DIR"]) / "origins.json").write_text(json.dumps(origins))
"""


def test_a_component_imports_only_the_code_of_its_own_commit(startable: Scripted, tmp_path: Path) -> None:
    # The virtualenv's editable install maps troupe, contracts, sidecar, ... to the
    # checkout it was installed from; a component must not see any of them.
    startable.write("troupe/__init__.py", "")
    startable.write("contracts/__init__.py", "")
    startable.write("services/customer/__main__.py", ORIGINS)
    startable.commit("Customer: where its code comes from")
    startable.release("bump")
    assert startable.release("cut", "--notes", "Origins").code == 0
    state = tmp_path / "state"

    result = startable.release("up", "--release", "3", "customer", "--state-dir", str(state))

    assert result.code == 0, result.err
    origins = json.loads((state / "release-3" / "services/customer" / "origins.json").read_text())
    worktree = state / "worktrees"
    for name in ("contracts", "services", "troupe"):
        assert Path(origins[name]).is_relative_to(worktree), (name, origins[name])
    assert origins["sidecar"] is False  # not at that commit: not taken from elsewhere


def test_up_starts_only_the_named_components(startable: Scripted, tmp_path: Path) -> None:
    state = tmp_path / "state"

    result = startable.release("up", "--release", "2", "customer", "--state-dir", str(state))

    assert result.code == 0, result.err
    assert "started services/customer@" in result.out
    assert "composer@" not in result.out
    assert (state / "release-2" / "services/customer" / "ran.txt").exists()


def test_up_refuses_a_component_the_release_does_not_name(startable: Scripted, tmp_path: Path) -> None:
    result = startable.release("up", "--release", "1", "billing", "--state-dir", str(tmp_path / "s"))

    assert result.code == 2
    assert "release 1: no component 'billing'" in result.err
