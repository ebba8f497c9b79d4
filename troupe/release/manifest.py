"""The release manifest: which version of every component a release is made of.

One file, ``release-manifest/manifest.yaml``, holds the release being prepared or
the last one cut; every earlier release is that file at the tag ``release-<N>``.
Its JSON schema, generated from the models below, is
``release-manifest/manifest.schema.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, StringConstraints, ValidationError

MANIFEST_PATH = "release-manifest/manifest.yaml"
SCHEMA_PATH = "release-manifest/manifest.schema.json"

ShortHash = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{7,40}$"),
    Field(description="Abbreviated commit hash, as `git log --format=%h` prints it."),
]
ComponentPath = Annotated[
    str,
    StringConstraints(pattern=r"^((services|adapters)/[a-z][a-z0-9_]*|sidecar|composer)$"),
]

HEADER = """\
# The release manifest: the set of component versions that work together.
# Written by `troupe release bump|cut|rollback`; schema: manifest.schema.json.
# A component's version is the short hash of the last commit that changed its
# folder; `contracts` is the contracts/ version that commit was built against.
"""


class ManifestError(ValueError):
    """The manifest cannot be read; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source} is not a valid manifest:\n" + "\n".join(problems))
        self.source = source
        self.problems = problems


class ComponentVersion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: ShortHash = Field(description="Last commit that changed the component's folder.")
    contracts: ShortHash = Field(description="Last commit that changed contracts/ at or before `version`.")


class Manifest(BaseModel):
    """A release: its number, why and by whom it was made, and its components."""

    model_config = ConfigDict(extra="forbid", title="Troupe release manifest")

    release: PositiveInt = Field(description="Release number; its git tag is release-<N>.")
    notes: str = Field(default="", description="Why this release was made.")
    released_by: str = Field(default="", description="Who cut the release.")
    rollback_of: PositiveInt | None = Field(
        default=None, description="The earlier release this one repeats, for a rollback."
    )
    components: dict[ComponentPath, ComponentVersion] = Field(
        default_factory=dict,
        description="Every service, adapter, the sidecar and the composer, by folder.",
    )


def json_schema() -> str:
    return json.dumps(Manifest.model_json_schema(), indent=2, sort_keys=True) + "\n"


def _describe(error: Any) -> str:
    where = " → ".join(str(part) for part in error["loc"]) or "(top level)"
    text = f"{where}: {error['msg']}"
    if "input" in error and not isinstance(error["input"], dict | list):
        text += f" (got {error['input']!r})"
    if error["type"] == "string_type" and isinstance(error.get("input"), int | float):
        text += "; write commit hashes in quotes"
    return text


def parse(text: str, source: str = MANIFEST_PATH) -> Manifest:
    """Validates a manifest's text; every problem is listed in the ManifestError."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ManifestError(source, [f"not YAML: {error}"]) from error
    if not isinstance(data, dict):
        raise ManifestError(source, ["(top level): must be a mapping with release and components"])
    try:
        return Manifest.model_validate(data)
    except ValidationError as error:
        raise ManifestError(source, [_describe(e) for e in error.errors()]) from error


def dump(manifest: Manifest) -> str:
    """The manifest as YAML: one line per component, so a release's git diff reads well."""
    head: dict[str, Any] = {
        "release": manifest.release,
        "notes": manifest.notes,
        "released_by": manifest.released_by,
    }
    if manifest.rollback_of is not None:
        head["rollback_of"] = manifest.rollback_of
    text = HEADER + yaml.safe_dump(head, sort_keys=False, allow_unicode=True, width=100)
    if not manifest.components:
        return text + "components: {}\n"
    lines = [
        f'  {path}: {{version: "{c.version}", contracts: "{c.contracts}"}}'
        for path, c in sorted(manifest.components.items())
    ]
    return text + "components:\n" + "\n".join(lines) + "\n"


def read(root: Path) -> Manifest:
    path = root / MANIFEST_PATH
    return parse(path.read_text(), MANIFEST_PATH)


def write(root: Path, manifest: Manifest) -> None:
    path = root / MANIFEST_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump(manifest))
