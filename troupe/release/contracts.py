"""Contracts at a version: exported from git, compiled by buf, compared by buf.

Each contracts version is copied (its ``.proto`` files only) into its own buf
module with the release rules below, so the comparison does not depend on the
buf.yaml of whichever commit is checked.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2

from troupe.release.git import Repo

PACKAGE_ROOT = Path(__file__).resolve().parents[2]

# WIRE_JSON keeps the binary and the JSON forms of every message readable both
# ways (numbers, types, names); the no-delete rules keep every message, enum,
# service and RPC name, because Any type URLs and gRPC paths are made of names.
# A field may go only if its name and number are reserved and no consumer reads it.
BREAKING_RULES = (
    "WIRE_JSON",
    "PACKAGE_NO_DELETE",
    "PACKAGE_MESSAGE_NO_DELETE",
    "PACKAGE_ENUM_NO_DELETE",
    "PACKAGE_SERVICE_NO_DELETE",
    "RPC_NO_DELETE",
)
BUF_YAML = "version: v2\nbreaking:\n  use:\n" + "".join(f"    - {r}\n" for r in BREAKING_RULES)

FieldProto = descriptor_pb2.FieldDescriptorProto
BUF_LINKS = re.compile(r"\. See https?://.*$")
DELETED_MESSAGE = re.compile(r'message "([\w.]+)" was deleted from package "([\w.]+)"')


class BufError(RuntimeError):
    pass


def buf_executable(root: Path) -> str:
    candidates = [
        os.environ.get("TROUPE_BUF", ""),
        str(root / "node_modules/.bin/buf"),
        str(PACKAGE_ROOT / "node_modules/.bin/buf"),
        shutil.which("buf") or "",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise BufError("buf not found: run bin/setup (node_modules/.bin/buf) or set TROUPE_BUF")


def export(repo: Repo, rev: str | None, dest: Path) -> Path:
    """Copies the .proto files of contracts/ at ``rev`` (None: working tree) into a module."""
    dest.mkdir(parents=True, exist_ok=True)
    if rev is None:
        for proto in (repo.root / "contracts").rglob("*.proto"):
            target = dest / proto.relative_to(repo.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(proto, target)
    elif repo.exists(rev, "contracts"):
        archive = subprocess.run(
            ["git", "-C", str(repo.root), "archive", "--format=tar", rev, "contracts"],
            capture_output=True,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            protos = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".proto")]
            tar.extractall(dest, members=protos, filter="data")
    (dest / "buf.yaml").write_text(BUF_YAML)
    return dest


@dataclass(frozen=True)
class Violation:
    """One breaking change found by buf."""

    rule: str
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        where = f" at {self.path}:{self.line}" if self.path else ""
        return f"{self.rule}{where}: {self.message}"


@dataclass
class Schema:
    """Messages, enums and services of one contracts version, by full name."""

    files: list[descriptor_pb2.FileDescriptorProto]
    messages: dict[str, descriptor_pb2.DescriptorProto] = field(default_factory=dict)
    enums: dict[str, list[str]] = field(default_factory=dict)
    services: dict[str, list[str]] = field(default_factory=dict)
    # (file, first line, last line, message) of every message declaration; 1-based.
    spans: list[tuple[str, int, int, str]] = field(default_factory=list)

    def field(self, message: str, path: str) -> FieldProto | None:
        """The field a dotted path reaches from ``message``, or None."""
        current: str | None = message
        found: FieldProto | None = None
        for part in path.split("."):
            if current is None or current not in self.messages:
                return None
            found = next((f for f in self.messages[current].field if f.name == part), None)
            if found is None:
                return None
            current = found.type_name.lstrip(".") or None
        return found

    def messages_on_path(self, message: str, path: str) -> list[str]:
        """The messages a dotted path goes through, starting with ``message``."""
        names = [message]
        current = message
        for part in path.split(".")[:-1]:
            found = self.field(current, part)
            if found is None or not found.type_name:
                break
            current = found.type_name.lstrip(".")
            names.append(current)
        return names

    def message_at(self, path: str, line: int) -> str | None:
        """The innermost message declared around a line of a file."""
        around = [s for s in self.spans if s[0] == path and s[1] <= line <= s[2]]
        return min(around, key=lambda s: s[2] - s[1])[3] if around else None


def _index(schema: Schema) -> Schema:
    for file in schema.files:
        prefix = f"{file.package}." if file.package else ""
        # A span is [line, column, column] or [line, column, end line, column], 0-based.
        lines = {
            tuple(loc.path): (loc.span[0] + 1, loc.span[2 if len(loc.span) == 4 else 0] + 1)
            for loc in file.source_code_info.location
        }

        def visit(
            message: descriptor_pb2.DescriptorProto,
            scope: str,
            where: tuple[int, ...],
            file_name: str,
            lines: dict[tuple[int, ...], tuple[int, int]],
        ) -> None:
            name = f"{scope}{message.name}"
            schema.messages[name] = message
            if where in lines:
                schema.spans.append((file_name, *lines[where], name))
            for i, nested in enumerate(message.nested_type):
                visit(nested, f"{name}.", (*where, 3, i), file_name, lines)
            for enum in message.enum_type:
                schema.enums[f"{name}.{enum.name}"] = [v.name for v in enum.value]

        for i, message in enumerate(file.message_type):
            visit(message, prefix, (4, i), file.name, lines)
        for enum in file.enum_type:
            schema.enums[f"{prefix}{enum.name}"] = [v.name for v in enum.value]
        for service in file.service:
            schema.services[f"{prefix}{service.name}"] = [m.name for m in service.method]
    return schema


def build(module: Path) -> Schema:
    """Compiles a module into a Schema (with protoc in-process: quicker than buf build)."""
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(module)) for p in module.rglob("*.proto"))
    if not protos:
        return Schema(files=[])
    well_known = str(resources.files("grpc_tools") / "_proto")
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "image.binpb"
        args = [
            "protoc",
            f"-I{module}",
            f"-I{well_known}",
            f"--descriptor_set_out={image}",
            "--include_source_info",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise BufError(f"the contracts in {module} do not compile")
        files = descriptor_pb2.FileDescriptorSet.FromString(image.read_bytes()).file
    return _index(Schema(files=list(files)))


def breaking(new: Path, old: Path) -> list[Violation]:
    """Breaking changes in module ``new`` against module ``old``."""
    if not any(old.rglob("*.proto")):
        return []
    if not any(new.rglob("*.proto")):
        return [Violation("PACKAGE_NO_DELETE", "", 0, "every contract was deleted")]
    done = subprocess.run(
        [buf_executable(new), "breaking", ".", "--against", str(old), "--error-format", "json"],
        cwd=new,
        capture_output=True,
        text=True,
    )
    if done.returncode not in (0, 100):
        raise BufError(f"buf breaking failed:\n{done.stderr.strip()}")
    found = []
    for line in done.stdout.splitlines():
        if line.strip():
            item = json.loads(line)
            where = item.get("path", ""), item.get("start_line", 0)
            text = BUF_LINKS.sub(".", item["message"])
            found.append(Violation(item["type"], *where, text))
    return found


def describe(field: FieldProto) -> str:
    """A field as a reader sees it, e.g. ``repeated string = 3``."""
    kind = field.type_name.lstrip(".") or FieldProto.Type.Name(field.type)[5:].lower()
    repeated = "repeated " if field.label == FieldProto.LABEL_REPEATED else ""
    return f"{repeated}{kind} = {field.number}"


def affected_message(violation: Violation, schema: Schema) -> str | None:
    """The full name of the message a violation is about, when it is about one."""
    deleted = DELETED_MESSAGE.search(violation.message)
    if deleted:
        return f"{deleted.group(2)}.{deleted.group(1)}"
    return schema.message_at(violation.path, violation.line)


class Versions:
    """Contracts versions of one repository, exported and compiled once each."""

    def __init__(self, repo: Repo, workdir: Path) -> None:
        self.repo = repo
        self.workdir = workdir
        self._modules: dict[str, Path] = {}
        self._schemas: dict[str, Schema] = {}
        self._breaking: dict[tuple[str, str], list[Violation]] = {}

    def module(self, rev: str | None) -> Path:
        key = rev or "working-tree"
        if key not in self._modules:
            self._modules[key] = export(self.repo, rev, self.workdir / key)
        return self._modules[key]

    def schema(self, rev: str | None) -> Schema:
        key = rev or "working-tree"
        if key not in self._schemas:
            self._schemas[key] = build(self.module(rev))
        return self._schemas[key]

    def breaking(self, new: str | None, old: str | None) -> list[Violation]:
        key = (new or "working-tree", old or "working-tree")
        if key not in self._breaking:
            self._breaking[key] = breaking(self.module(new), self.module(old))
        return self._breaking[key]
