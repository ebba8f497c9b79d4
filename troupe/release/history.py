"""Releases in git: the tags ``release-<N>``, the manifest at each, and their differences."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from troupe.release import manifest as manifests
from troupe.release.components import CONTRACTS
from troupe.release.contracts import Schema, Versions, describe
from troupe.release.git import Commit, Repo
from troupe.release.manifest import MANIFEST_PATH, Manifest

TAG = re.compile(r"^release-([1-9][0-9]*)$")


def tag(number: int) -> str:
    return f"release-{number}"


def releases(repo: Repo) -> list[int]:
    found = (TAG.match(t) for t in repo.tags("release-*"))
    return sorted(int(m.group(1)) for m in found if m)


def last_release(repo: Repo) -> int | None:
    numbers = releases(repo)
    return numbers[-1] if numbers else None


def next_release(repo: Repo) -> int:
    return (last_release(repo) or 0) + 1


class UnknownReleaseError(LookupError):
    pass


def manifest_at(repo: Repo, number: int) -> Manifest:
    if number not in releases(repo):
        raise UnknownReleaseError(f"there is no release {number} (no tag {tag(number)})")
    text = repo.show(tag(number), MANIFEST_PATH)
    if text is None:
        raise UnknownReleaseError(f"{tag(number)} has no {MANIFEST_PATH}")
    return manifests.parse(text, f"{MANIFEST_PATH}@{tag(number)}")


@dataclass(frozen=True)
class ComponentChange:
    component: str
    before: str | None
    after: str | None
    # Commits that changed the folder between the two versions; for a component
    # going back to an older version, the commits it leaves out.
    commits: list[Commit]
    backwards: bool = False

    def __str__(self) -> str:
        if self.before is None:
            return f"+ {self.component}  (new) {self.after}"
        if self.after is None:
            return f"- {self.component}  {self.before} (removed)"
        way = "reverted" if self.backwards else "commits"
        lines = [f"~ {self.component}  {self.before} → {self.after}  ({len(self.commits)} {way})"]
        lines += [f"      {'-' if self.backwards else '+'} {c}" for c in self.commits]
        return "\n".join(lines)


@dataclass
class ReleaseDiff:
    before: str
    after: str
    changes: list[ComponentChange]
    unchanged: list[str]
    contract_commits: list[Commit]
    contract_changes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.before} → {self.after}"]
        lines += [str(c) for c in self.changes] or ["no component changed"]
        if self.unchanged:
            lines.append(f"= unchanged: {', '.join(self.unchanged)}")
        lines.append(f"contracts: {len(self.contract_commits)} commit(s)")
        lines += [f"      {c}" for c in self.contract_commits]
        lines += [f"    {change}" for change in self.contract_changes]
        return "\n".join(lines)


def _component_change(repo: Repo, component: str, before: str, after: str) -> ComponentChange:
    if repo.is_ancestor(before, after):
        commits = repo.commits(f"{before}..{after}", component)
        return ComponentChange(component, before, after, commits)
    if repo.is_ancestor(after, before):
        commits = repo.commits(f"{after}..{before}", component)
        return ComponentChange(component, before, after, commits, backwards=True)
    return ComponentChange(component, before, after, repo.commits(f"{before}...{after}", component))


def schema_changes(old: Schema, new: Schema) -> list[str]:
    """What a reader of the contracts sees change: messages, fields, enums, services."""
    changes = [f"+ message {m}" for m in sorted(new.messages.keys() - old.messages.keys())]
    changes += [f"- message {m}" for m in sorted(old.messages.keys() - new.messages.keys())]
    for name in sorted(old.messages.keys() & new.messages.keys()):
        before = {f.name: f for f in old.messages[name].field}
        after = {f.name: f for f in new.messages[name].field}
        changes += [f"+ field {name}.{f} `{describe(after[f])}`" for f in after if f not in before]
        changes += [f"- field {name}.{f} `{describe(before[f])}`" for f in before if f not in after]
        changes += [
            f"~ field {name}.{f} `{describe(before[f])}` → `{describe(after[f])}`"
            for f in before
            if f in after and describe(before[f]) != describe(after[f])
        ]
    for kind, was, now in (("enum", old.enums, new.enums), ("service", old.services, new.services)):
        changes += [f"+ {kind} {n}" for n in sorted(now.keys() - was.keys())]
        changes += [f"- {kind} {n}" for n in sorted(was.keys() - now.keys())]
        for n in sorted(was.keys() & now.keys()):
            changes += [f"+ {kind} {n}.{v}" for v in now[n] if v not in was[n]]
            changes += [f"- {kind} {n}.{v}" for v in was[n] if v not in now[n]]
    return changes


def diff(repo: Repo, before: Manifest, after: Manifest, refs: tuple[str, str | None], workdir: Path) -> ReleaseDiff:
    """Differences between two manifests; ``refs`` are the commits holding them
    (None for the working tree), whose contracts/ are compared."""
    changes: list[ComponentChange] = []
    unchanged: list[str] = []
    for component in sorted(before.components.keys() | after.components.keys()):
        old, new = before.components.get(component), after.components.get(component)
        if old is None or new is None:
            changes.append(ComponentChange(component, old.version if old else None, new.version if new else None, []))
        elif repo.same_commit(old.version, new.version):
            unchanged.append(component)
        else:
            changes.append(_component_change(repo, component, old.version, new.version))
    ref_before, ref_after = refs
    versions = Versions(repo, workdir)
    span = f"{ref_before}..{ref_after or 'HEAD'}"
    result = ReleaseDiff(
        f"release {before.release}",
        f"release {after.release}" + ("" if ref_after else " (working tree)"),
        changes,
        unchanged,
        repo.commits(span, CONTRACTS),
    )
    schemas = versions.schema(ref_before), versions.schema(ref_after)
    result.contract_changes = schema_changes(*schemas)
    return result
