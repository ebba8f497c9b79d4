"""Generating Python code from the proto contracts, and proving it is current.

The generated modules are committed next to their ``.proto`` files so that every
commit (and so every release) carries the exact code its services ran with.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / "contracts"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files(root: Path = ROOT) -> list[Path]:
    return sorted((root / "contracts").rglob("*.proto"))


def generate(out_dir: Path = ROOT, root: Path = ROOT) -> list[Path]:
    """Runs grpcio-tools' protoc over every contract; returns the files written."""
    from grpc_tools import protoc

    protos = [str(path.relative_to(root)) for path in proto_files(root)]
    well_known = str(resources.files("grpc_tools") / "_proto")
    args = [
        "protoc",
        f"-I{root}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed for {protos}")
    written = [p for p in (out_dir / "contracts").rglob("*") if p.name.endswith(GENERATED_SUFFIXES)]
    # Every folder on the way to a generated module is a package.
    for folder in {p.parent for p in written}:
        while folder != out_dir:
            (folder / "__init__.py").touch()
            folder = folder.parent
    return sorted(written)


def stale_files() -> list[str]:
    """Generated files that differ from what the contracts generate now."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        for proto in proto_files():
            target = fresh_root / proto.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(proto, target)
        fresh = {p.relative_to(fresh_root) for p in generate(fresh_root, fresh_root)}
        committed = {p.relative_to(ROOT) for p in CONTRACTS.rglob("*") if p.name.endswith(GENERATED_SUFFIXES)}
        problems = [f"missing: {p}" for p in sorted(fresh - committed)]
        problems += [f"no longer generated: {p}" for p in sorted(committed - fresh)]
        problems += [
            f"out of date: {p}"
            for p in sorted(fresh & committed)
            if not filecmp.cmp(fresh_root / p, ROOT / p, shallow=False)
        ]
        return problems


def _generate_command(_: argparse.Namespace) -> int:
    for path in generate():
        print(path.relative_to(ROOT))
    return 0


def _check_command(_: argparse.Namespace) -> int:
    problems = stale_files()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("run `troupe contracts generate` and commit the result", file=sys.stderr)
        return 1
    print("generated contract code is current")
    return 0


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    contracts = subparsers.add_parser("contracts", help="generate and check contract code")
    verbs = contracts.add_subparsers(dest="verb", required=True)
    verbs.add_parser("generate", help="generate Python code from contracts/*.proto").set_defaults(
        handler=_generate_command
    )
    verbs.add_parser("check", help="fail if the committed generated code is stale").set_defaults(handler=_check_command)
