"""``troupe release``: bump, check, cut, diff, rollback, gate, up, list, serve, schema."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from troupe.release import actions, history, up
from troupe.release import manifest as manifests
from troupe.release.check import Problem, check_release, gate
from troupe.release.components import DeclarationError
from troupe.release.contracts import BufError
from troupe.release.git import GitError, Repo
from troupe.release.manifest import SCHEMA_PATH, ManifestError
from troupe.settings import settings

Handler = Callable[[argparse.Namespace], int]
EXPECTED = (
    GitError,
    BufError,
    ManifestError,
    DeclarationError,
    history.UnknownReleaseError,
    up.UpError,
    ValueError,
)


def _repo(args: argparse.Namespace) -> Repo:
    return Repo.containing(Path(args.repo))


def _who(args: argparse.Namespace, repo: Repo) -> str:
    who = str(args.by or repo.user())
    if not who:
        raise ValueError("who is releasing? set git's user.name or pass --by")
    return who


def _report(problems: list[Problem]) -> None:
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def _bump(args: argparse.Namespace) -> int:
    outcome = actions.bump(_repo(args), args.components)
    print("\n".join(outcome.lines) or "no components")
    print(f"release {outcome.manifest.release} prepared in {manifests.MANIFEST_PATH}")
    return 0


def _check(args: argparse.Namespace) -> int:
    repo = _repo(args)
    manifest = actions.working_manifest(repo)
    with tempfile.TemporaryDirectory() as tmp:
        problems = check_release(repo, manifest, Path(tmp))
    if problems:
        print(f"release {manifest.release} cannot be cut: {len(problems)} problem(s)", file=sys.stderr)
        _report(problems)
        return 1
    print(f"release {manifest.release}: {len(manifest.components)} components work together")
    return 0


def _finish(outcome: actions.Outcome) -> int:
    if outcome.problems:
        print("\n".join(outcome.lines), file=sys.stderr)
        _report(outcome.problems)
        return 1
    print("\n".join(outcome.lines))
    return 0


def _cut(args: argparse.Namespace) -> int:
    repo = _repo(args)
    with tempfile.TemporaryDirectory() as tmp:
        return _finish(actions.cut(repo, args.notes, _who(args, repo), Path(tmp)))


def _rollback(args: argparse.Namespace) -> int:
    repo = _repo(args)
    with tempfile.TemporaryDirectory() as tmp:
        return _finish(actions.rollback(repo, args.to, args.notes, _who(args, repo), Path(tmp)))


def _diff(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        print(actions.diff(_repo(args), args.a, args.b, Path(tmp)))
    return 0


def _gate(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        problems, summary = gate(_repo(args), Path(tmp))
    if problems:
        print(summary, file=sys.stderr)
        _report(problems)
        return 1
    print(summary)
    return 0


def _list(args: argparse.Namespace) -> int:
    repo = _repo(args)
    for number in history.releases(repo):
        release = history.manifest_at(repo, number)
        again = f" (rollback to {release.rollback_of})" if release.rollback_of else ""
        print(f"{number}{again}: {release.notes} — {release.released_by}, {len(release.components)} components")
    return 0


def _up(args: argparse.Namespace) -> int:
    repo = _repo(args)
    release = history.manifest_at(repo, args.release)
    state_dir = Path(args.state_dir or repo.root / ".troupe" / "releases")
    launches = up.plan(repo, release, state_dir.resolve(), settings().kafka, args.components)
    for launch in launches:
        print(launch)
    if args.dry_run:
        return 0
    up.prepare(repo, launches)
    return up.run(launches)


def _serve(args: argparse.Namespace) -> int:
    from troupe.release import web  # FastAPI and uvicorn only when serving

    web.serve(_repo(args), args.host, args.port)
    return 0


def _schema(args: argparse.Namespace) -> int:
    path = _repo(args).root / SCHEMA_PATH
    if args.check:
        if not path.exists() or path.read_text() != manifests.json_schema():
            print(f"{SCHEMA_PATH} is not current: run `troupe release schema`", file=sys.stderr)
            return 1
        print(f"{SCHEMA_PATH} is current")
        return 0
    path.write_text(manifests.json_schema())
    print(f"wrote {SCHEMA_PATH}")
    return 0


def _guarded(handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except EXPECTED as error:
            print(f"troupe release {args.verb}: {error}", file=sys.stderr)
            return 2

    return run


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--repo", default=".", help="the repository (default: the current one)")
    release = subparsers.add_parser("release", help="the versions manifest and releases")
    verbs = release.add_subparsers(dest="verb", required=True)

    def verb(name: str, handler: Handler, text: str) -> argparse.ArgumentParser:
        parser = verbs.add_parser(name, help=text, description=text, parents=[common])
        parser.set_defaults(handler=_guarded(handler))
        return parser

    bump = verb("bump", _bump, "set components (default: all) to their current version")
    bump.add_argument("components", nargs="*", help="e.g. customer or services/customer")
    verb("check", _check, "check that the manifest's versions work together")
    cut = verb("cut", _cut, "commit the manifest and tag it as the next release")
    cut.add_argument("--notes", required=True, help="why this release is made")
    cut.add_argument("--by", help="who releases (default: git user.name <user.email>)")
    diff = verb("diff", _diff, "what changed between two releases (B: the working manifest)")
    diff.add_argument("a", type=int)
    diff.add_argument("b", type=int, nargs="?")
    rollback = verb("rollback", _rollback, "cut a new release equal to an earlier one")
    rollback.add_argument("to", type=int, help="the release to go back to")
    rollback.add_argument("--notes", default="", help="why")
    rollback.add_argument("--by", help="who releases (default: git user.name <user.email>)")
    verb("gate", _gate, "fail on a breaking change of contracts/ against the last release")
    verb("list", _list, "the releases, newest last")
    start = verb("up", _up, "start exactly the component versions of a release")
    start.add_argument("--release", type=int, required=True)
    start.add_argument("components", nargs="*", help="start only these components of the release (default: all)")
    start.add_argument("--dry-run", action="store_true", help="print what would start")
    start.add_argument("--state-dir", help="worktrees and state (default: .troupe/releases)")
    page = verb("serve", _serve, "serve the release page (behind the sidecar)")
    page.add_argument("--port", type=int, default=8096)
    page.add_argument("--host", default="127.0.0.1")
    schema = verb("schema", _schema, f"write {SCHEMA_PATH} from the manifest model")
    schema.add_argument("--check", action="store_true", help="fail if it is not current")
