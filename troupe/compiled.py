"""Hot modules compiled to C with mypyc, and the guard against running stale ones.

The modules listed in pyproject.toml (``[tool.troupe] compiled``) are plain, typed
Python. ``troupe compile`` (run by bin/setup) compiles them with mypyc into extension
modules beside their sources, which Python imports in preference to the ``.py``:
the sidecar's fast path takes about a third less CPU that way (docs/sidecar.md).
The sources stay what mypy, ruff and a reader see; without a build they run as they are.

An extension module built from an older source would run old code without a word.
So the build records a digest of the sources it compiled, and ``select_build``,
called by the ``__init__`` of each package holding such modules before any of them
is imported, deletes the whole build when a source differs: the sources then run,
and the next bin/setup compiles them again. ``TROUPE_COMPILED=off`` runs the sources
although the build is current: for a debugger or a profiler, which see into Python
code only, and for the benchmark's comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import sys
import sysconfig
import tomllib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
# mypyc puts the code of all the modules in one library, troupe/native__mypyc.*.so;
# each module's own extension only loads its part of it.
GROUP = "troupe.native"
_STAMP = Path(".cache") / "compiled.json"


def configured(root: Path = ROOT) -> list[str]:
    """The modules to compile, dotted names relative to ``root``; none outside a
    checkout (an installed package has no pyproject.toml beside it, and no build)."""
    if not (root / "pyproject.toml").exists():
        return []
    with (root / "pyproject.toml").open("rb") as file:
        modules: list[str] = tomllib.load(file).get("tool", {}).get("troupe", {}).get("compiled", [])
    return modules


def _file(root: Path, module: str, suffix: str) -> Path:
    """Where a dotted module's file with ``suffix`` (``.py``, the extension's) is."""
    return root / (module.replace(".", "/") + suffix)


def outputs(modules: list[str], root: Path = ROOT) -> list[Path]:
    """The files a build of ``modules`` writes into the tree."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    return [_file(root, GROUP + "__mypyc", suffix), *(_file(root, module, suffix) for module in modules)]


def digest(modules: list[str], root: Path = ROOT) -> str:
    """What the build depends on: the sources, and the interpreter it was built for."""
    sha = hashlib.sha256(sysconfig.get_config_var("EXT_SUFFIX").encode())
    for module in modules:
        sha.update(module.encode() + b"\0" + _file(root, module, ".py").read_bytes() + b"\0")
    return sha.hexdigest()


def is_current(root: Path = ROOT) -> bool:
    """Whether every configured module is compiled from its present source."""
    return _is_current(configured(root), root)


def _is_current(modules: list[str], root: Path) -> bool:
    stamp = root / _STAMP
    return (all(path.exists() for path in outputs(modules, root)) and stamp.exists()
            and stamp.read_text() == digest(modules, root))


def select_build(root: Path = ROOT) -> None:
    """What runs: the sources with ``TROUPE_COMPILED=off``, else the build if it is
    current (``drop_stale_build``)."""
    if os.environ.get("TROUPE_COMPILED", "on") == "off":
        sys.meta_path.insert(0, _SourcesFirst(configured(root), root))
    else:
        drop_stale_build(root)


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds the configured modules' sources ahead of their extension modules."""

    def __init__(self, modules: list[str], root: Path) -> None:
        self._sources = {module: _file(root, module, ".py") for module in modules}

    def find_spec(self, fullname: str, _path: Sequence[str] | None,
                  _target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        source = self._sources.get(fullname)
        return None if source is None else importlib.util.spec_from_file_location(fullname, source)


def drop_stale_build(root: Path = ROOT) -> None:
    """Deletes the compiled modules unless all of them are built from the present
    sources: they are compiled together, so one changed source makes the others' calls
    into it stale too."""
    modules = configured(root)
    present = [path for path in outputs(modules, root) if path.exists()]
    if not present or _is_current(modules, root):
        return
    for path in present:
        path.unlink(missing_ok=True)
    log.warning("the compiled modules were built from older sources and were removed; the "
                "sources run instead until `troupe compile` (bin/setup) builds them again")


def build(root: Path = ROOT, force: bool = False) -> bool:
    """Compiles the configured modules in place unless they are current; whether it
    compiled."""
    modules = configured(root)
    if not force and _is_current(modules, root):
        return False
    # Imported here: only a build needs mypyc and setuptools.
    from mypyc.build import mypycify
    from setuptools import setup

    expected = digest(modules, root)
    stamp = root / _STAMP
    stamp.unlink(missing_ok=True)
    for path in outputs(modules, root):
        # Unlinked, not overwritten: a process that has the old one loaded keeps it intact.
        path.unlink(missing_ok=True)
    work = root / ".cache" / "mypyc"
    with contextlib.chdir(root):
        extensions = mypycify([str(_file(Path(), module, ".py")) for module in modules],
                              opt_level="3", group_name=GROUP, target_dir=str(work / "c"))
        setup(name=GROUP, ext_modules=extensions, script_name="troupe compile",
              script_args=["--quiet", "build_ext", "--inplace", "--build-temp", str(work / "o")])
    missing = [str(path) for path in outputs(modules, root) if not path.exists()]
    if missing:
        raise RuntimeError(f"mypyc did not produce {', '.join(missing)}")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(expected)
    return True


def _compile(args: argparse.Namespace) -> int:
    modules = configured()
    if build(force=args.force):
        print(f"compiled {len(modules)} modules: {', '.join(modules)}")
    else:
        print("compiled modules are current")
    return 0


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = subparsers.add_parser(
        "compile", help="compile the hot modules ([tool.troupe] compiled) with mypyc")
    command.add_argument("--force", action="store_true", help="even if they are current")
    command.set_defaults(handler=_compile)
