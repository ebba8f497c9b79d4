"""The few git operations the release tool needs, on one repository."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


class GitError(RuntimeError):
    """A git command failed; the message carries git's own explanation."""


@dataclass(frozen=True)
class Commit:
    short: str
    subject: str
    author: str

    def __str__(self) -> str:
        return f"{self.short} {self.subject} ({self.author})"


@dataclass(frozen=True)
class Repo:
    root: Path

    @classmethod
    def containing(cls, path: Path) -> Repo:
        top = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
        )
        if top.returncode != 0:
            raise GitError(f"{path} is not inside a git repository")
        return cls(Path(top.stdout.strip()))

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise GitError(f"git {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def succeeds(self, *args: str) -> bool:
        done = subprocess.run(["git", "-C", str(self.root), *args], capture_output=True)
        return done.returncode == 0

    def resolve(self, rev: str) -> str | None:
        """The full hash of a commit, or None if ``rev`` names no commit."""
        done = subprocess.run(
            ["git", "-C", str(self.root), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
            capture_output=True,
            text=True,
        )
        return done.stdout.strip() if done.returncode == 0 else None

    def last_change(self, path: str, rev: str = "HEAD") -> str | None:
        """Short hash of the last commit at or before ``rev`` that changed ``path``."""
        if self.resolve(rev) is None:
            return None
        return self.git("log", "-1", "--format=%h", rev, "--", path).strip() or None

    def same_commit(self, a: str, b: str) -> bool:
        return self.resolve(a) == self.resolve(b) is not None

    def is_ancestor(self, older: str, newer: str) -> bool:
        return self.succeeds("merge-base", "--is-ancestor", older, newer)

    def exists(self, rev: str, path: str) -> bool:
        return self.succeeds("cat-file", "-e", f"{rev}:{path}")

    def show(self, rev: str, path: str) -> str | None:
        """A file's text at ``rev``, or None if it does not exist there."""
        if not self.exists(rev, path):
            return None
        return self.git("show", f"{rev}:{path}")

    def folders(self, rev: str, parent: str) -> list[str]:
        """Sub-folders of ``parent`` (``""`` for the root) that hold committed files."""
        target = f"{rev}:{parent}" if parent else f"{rev}:"
        if not self.succeeds("cat-file", "-e", target):
            return []
        names = self.git("ls-tree", "-d", "--name-only", rev, f"{parent}/" if parent else ".")
        return [line.rsplit("/", 1)[-1] for line in names.splitlines() if line]

    def commits(self, revision_range: str, path: str) -> list[Commit]:
        out = self.git("log", "--format=%h%x1f%s%x1f%an", revision_range, "--", path)
        return [Commit(*line.split("\x1f")) for line in out.splitlines() if line]

    def tags(self, pattern: str) -> list[str]:
        return [t for t in self.git("tag", "--list", pattern).splitlines() if t]

    def dirty(self, path: str) -> bool:
        """True if ``path`` has uncommitted or untracked changes."""
        return bool(self.git("status", "--porcelain", "--", path).strip())

    def user(self) -> str:
        name = self.git("config", "--default", "", "user.name").strip()
        email = self.git("config", "--default", "", "user.email").strip()
        return f"{name} <{email}>" if email else name
