"""The manifest file: its format, its schema, and the errors a bad one gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from troupe.release import manifest as manifests
from troupe.release.manifest import ComponentVersion, Manifest, ManifestError

ROOT = Path(__file__).resolve().parents[3]


def test_a_manifest_survives_writing_and_reading() -> None:
    release = Manifest(
        release=4,
        notes="Loyalty points on the call pop-up\nand: a colon",
        released_by="Rita Releaser <rita@example.com>",
        rollback_of=2,
        components={
            "services/customer": ComponentVersion(version="1234567", contracts="1e10000"),
            "composer": ComponentVersion(version="abcdef0", contracts="0abcdef"),
        },
    )

    text = manifests.dump(release)

    assert manifests.parse(text) == release
    # One line per component, sorted, so a release's git diff is one line per change.
    assert '  composer: {version: "abcdef0", contracts: "0abcdef"}\n' in text
    assert text.index("composer:") < text.index("services/customer:")


def test_an_empty_release_lists_no_components() -> None:
    assert manifests.parse(manifests.dump(Manifest(release=1))).components == {}


def test_every_problem_of_a_bad_manifest_is_listed_with_its_place() -> None:
    text = """
release: 0
colour: blue
components:
  services/Customer: {version: "1234567", contracts: "1234567"}
  services/ticket: {version: "zzz", contracts: "1234567"}
  sidecar: {version: "1234567"}
"""
    with pytest.raises(ManifestError) as raised:
        manifests.parse(text)

    problems = "\n".join(raised.value.problems)
    assert "release: Input should be greater than 0 (got 0)" in problems
    assert "colour: Extra inputs are not permitted" in problems
    assert "components → services/Customer → [key]: String should match pattern" in problems
    assert "components → services/ticket → version: String should match pattern" in problems
    assert "(got 'zzz')" in problems
    assert "components → sidecar → contracts: Field required" in problems
    assert len(raised.value.problems) == 5


def test_an_unquoted_hash_of_digits_is_explained() -> None:
    text = "release: 1\ncomponents:\n  sidecar: {version: 1234567, contracts: \"abcdef0\"}\n"

    with pytest.raises(ManifestError, match="write commit hashes in quotes"):
        manifests.parse(text)


def test_text_that_is_not_yaml_or_not_a_mapping_is_refused() -> None:
    with pytest.raises(ManifestError, match="not YAML"):
        manifests.parse("release: [1\n")
    with pytest.raises(ManifestError, match="must be a mapping"):
        manifests.parse("- 1\n")


def test_the_committed_json_schema_is_current() -> None:
    committed = (ROOT / manifests.SCHEMA_PATH).read_text()

    assert committed == manifests.json_schema()


def test_the_repository_manifest_is_valid() -> None:
    assert manifests.read(ROOT).release >= 1
