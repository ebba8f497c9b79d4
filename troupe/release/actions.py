"""What the release verbs do to the manifest and the repository."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from troupe.release import history
from troupe.release import manifest as manifests
from troupe.release.check import Problem, check_release
from troupe.release.components import current_version, discover, resolve_name
from troupe.release.git import Repo
from troupe.release.manifest import MANIFEST_PATH, ComponentVersion, Manifest


@dataclass
class Outcome:
    manifest: Manifest
    lines: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def working_manifest(repo: Repo) -> Manifest:
    """The manifest being prepared: the file, started afresh after a cut release."""
    upcoming = history.next_release(repo)
    if not (repo.root / MANIFEST_PATH).exists():
        return Manifest(release=upcoming)
    current = manifests.read(repo.root)
    if current.release < upcoming:
        return Manifest(release=upcoming, components=dict(current.components))
    return current


def diff(repo: Repo, a: int, b: int | None, workdir: Path) -> history.ReleaseDiff:
    """Release ``a`` against release ``b`` (None: the working manifest)."""
    before = history.manifest_at(repo, a)
    if b is None:
        after, ref = working_manifest(repo), None
    else:
        after, ref = history.manifest_at(repo, b), history.tag(b)
    return history.diff(repo, before, after, (history.tag(a), ref), workdir)


def bump(repo: Repo, names: list[str]) -> Outcome:
    """Sets the named components (all when none are named) to their current version."""
    known = discover(repo)
    targets = [resolve_name(name, known) for name in names] or known
    manifest = working_manifest(repo)
    components = dict(manifest.components)
    lines = []
    for component in targets:
        version = current_version(repo, component)
        if version is None:
            raise ValueError(f"{component} has no commit that is built against contracts/")
        pinned = ComponentVersion(version=version.version, contracts=version.contracts)
        before = components.get(component)
        if before is None:
            lines.append(f"+ {component} {pinned.version}")
        elif before != pinned:
            lines.append(f"~ {component} {before.version} → {pinned.version}")
        else:
            lines.append(f"= {component} {pinned.version}")
        components[component] = pinned
        if repo.dirty(component):
            lines.append(f"  warning: {component}/ has uncommitted changes, not in the version")
    if not names:
        for gone in sorted(components.keys() - set(known)):
            del components[gone]
            lines.append(f"- {gone} (no longer in the tree)")
    manifest = manifest.model_copy(update={"components": components})
    manifests.write(repo.root, manifest)
    return Outcome(manifest, lines)


def _cut(repo: Repo, manifest: Manifest, workdir: Path, *, every_component: bool) -> Outcome:
    problems = check_release(repo, manifest, workdir, every_component=every_component)
    if problems:
        return Outcome(manifest, [f"release {manifest.release} refused:"], problems)
    manifests.write(repo.root, manifest)
    number, title = manifest.release, f"Release {manifest.release}: {manifest.notes}"
    trailer = f"Released-by: {manifest.released_by}"
    repo.git("add", "--", MANIFEST_PATH)
    repo.git("commit", "-q", "-m", title, "-m", trailer, "--only", "--", MANIFEST_PATH)
    repo.git("tag", "-a", history.tag(number), "-m", f"{title}\n\n{trailer}")
    commit = repo.git("rev-parse", "--short", "HEAD").strip()
    return Outcome(manifest, [f"cut {history.tag(number)} at {commit} by {manifest.released_by}"])


def cut(repo: Repo, notes: str, by: str, workdir: Path) -> Outcome:
    """Commits the manifest as the next release and tags it, if it passes the check."""
    manifest = working_manifest(repo).model_copy(
        update={
            "release": history.next_release(repo),
            "notes": notes,
            "released_by": by,
            "rollback_of": None,
        }
    )
    return _cut(repo, manifest, workdir, every_component=True)


def rollback(repo: Repo, to: int, notes: str, by: str, workdir: Path) -> Outcome:
    """A new release with exactly the components of release ``to``.

    Components added since are not part of it (they did not exist in the set that
    worked), so the check does not require every component of the tree."""
    earlier = history.manifest_at(repo, to)
    manifest = Manifest(
        release=history.next_release(repo),
        notes=notes or f"Rollback to release {to}",
        released_by=by,
        rollback_of=to,
        components=dict(earlier.components),
    )
    outcome = _cut(repo, manifest, workdir, every_component=False)
    left_out = [c for c in discover(repo) if c not in manifest.components]
    if left_out and not outcome.problems:
        outcome.lines.append(f"not in this release (added after {to}): {', '.join(left_out)}")
    return outcome
