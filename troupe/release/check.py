"""Whether a set of component versions works together, and the CI contract gate.

Every rule yields Problems; a release may be cut only when there are none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from troupe.release import history
from troupe.release.components import (
    CONTRACTS,
    DeclarationError,
    Declarations,
    declarations_at,
    discover,
)
from troupe.release.contracts import (
    FieldProto,
    Schema,
    Versions,
    Violation,
    affected_message,
    describe,
)
from troupe.release.git import Repo
from troupe.release.manifest import Manifest


@dataclass(frozen=True)
class Problem:
    rule: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.subject}: {self.detail}"


@dataclass(frozen=True)
class Party:
    """A component at one version: its contracts (None: working tree) and declarations."""

    component: str
    contracts: str | None
    declarations: Declarations
    label: str

    def __str__(self) -> str:
        return self.label


def same_field(a: FieldProto, b: FieldProto) -> bool:
    return (a.number, a.type, a.type_name, a.label) == (b.number, b.type, b.type_name, b.label)


def _field_problems(producer: Party, message: str, path: str, mine: Schema, theirs: Schema) -> Iterable[str]:
    parts = path.split(".")
    for depth in range(1, len(parts) + 1):
        prefix = ".".join(parts[:depth])
        read, sent = mine.field(message, prefix), theirs.field(message, prefix)
        if read is None:
            yield f"reads {message}.{prefix}, which its own contracts do not have"
            return
        if sent is None:
            yield f"reads {message}.{prefix}, which {producer} no longer sends"
            return
        if not same_field(read, sent):
            yield (f"reads {message}.{prefix} as `{describe(read)}`, but {producer} sends `{describe(sent)}`")
            return


def unserved(consumer: Party, producers: list[Party], versions: Versions) -> list[Problem]:
    """Each declared use of ``consumer`` that ``producers`` no longer serve (can-i-deploy)."""
    problems: list[Problem] = []
    mine = versions.schema(consumer.contracts)
    for use in consumer.declarations.consumes:
        serving = [
            (party, produced)
            for party in producers
            for produced in party.declarations.produces
            if produced.topic == use.topic and set(use.types) & set(produced.types)
        ]
        served_types = {t for _, produced in serving for t in produced.types}
        for missing in [t for t in use.types if t not in served_types]:
            problems.append(
                Problem(
                    "consumer-unserved",
                    str(consumer),
                    f"reads {missing} events from {use.topic}, which no component in the set produces",
                )
            )
        for producer, produced in serving:
            theirs = versions.schema(producer.contracts)
            if produced.message not in theirs.messages:
                continue  # reported once by produced_problems
            if produced.message not in mine.messages:
                problems.append(
                    Problem(
                        "consumer-unserved",
                        str(consumer),
                        f"reads {use.topic} as {produced.message} (what {producer} sends), "
                        "which its own contracts do not define",
                    )
                )
                continue
            for path in use.fields:
                problems += [
                    Problem("consumer-unserved", str(consumer), f"on {use.topic}: {detail}")
                    for detail in _field_problems(producer, produced.message, path, mine, theirs)
                ]
    return problems


def produced_problems(producer: Party, versions: Versions) -> list[Problem]:
    """Messages a component declares producing that its own contracts do not define."""
    schema = versions.schema(producer.contracts)
    return [
        Problem(
            "undeclared-message",
            str(producer),
            f"declares {produced.message} on {produced.topic}, which its contracts do not define",
        )
        for produced in producer.declarations.produces
        if produced.message not in schema.messages
    ]


def messages_read(consumer: Party, producers: list[Party], versions: Versions) -> set[str]:
    """Every message ``consumer`` declares reading from any of ``producers``, nested included."""
    schema = versions.schema(consumer.contracts)
    names: set[str] = set()
    for use in consumer.declarations.consumes:
        for producer in producers:
            for produced in producer.declarations.produces:
                if produced.topic == use.topic and set(use.types) & set(produced.types):
                    names.add(produced.message)
                    for path in use.fields:
                        names.update(schema.messages_on_path(produced.message, path))
    return names


def _explain(
    violation: Violation,
    schema: Schema,
    consumers: list[Party],
    producers: list[Party],
    versions: Versions,
) -> str:
    message = affected_message(violation, schema)
    if message is None:
        return f"{violation}"
    readers = sorted({str(c) for c in consumers if message in messages_read(c, producers, versions)})
    if readers:
        return f"{violation} — {message} is read by {', '.join(readers)}"
    return f"{violation} — no declared consumer reads {message}, but any reader may break"


def _parties(repo: Repo, manifest: Manifest, problems: list[Problem]) -> list[Party]:
    parties = []
    for component, pinned in sorted(manifest.components.items()):
        try:
            declarations = declarations_at(repo, component, pinned.version)
        except DeclarationError as error:
            problems.append(Problem("bad-declarations", component, str(error)))
            declarations = Declarations()
        # What it was really built against, even if the manifest says otherwise.
        contracts = repo.last_change(CONTRACTS, pinned.version) or pinned.contracts
        label = f"{component}@{pinned.version}"
        parties.append(Party(component, contracts, declarations, label))
    return parties


def _version_problems(repo: Repo, component: str, version: str, contracts: str) -> list[Problem]:
    if repo.resolve(version) is None:
        return [Problem("unknown-version", component, f"{version} is not a commit of this repo")]
    if not repo.exists(version, component):
        return [Problem("missing-folder", component, f"{component}/ does not exist at {version}")]
    problems = []
    last = repo.last_change(component, version)
    if last is None or not repo.same_commit(last, version):
        problems.append(
            Problem(
                "not-a-version",
                component,
                f"commit {version} did not change {component}/ (its version there is {last})",
            )
        )
    built = repo.last_change(CONTRACTS, version)
    if built is None or not repo.same_commit(built, contracts):
        problems.append(
            Problem(
                "wrong-contracts",
                component,
                f"at {version} it is built against contracts {built}, not {contracts}",
            )
        )
    return problems


def _ordered(repo: Repo, a: str, b: str) -> list[tuple[str, str]]:
    """(newer, older) comparisons to make between two contracts versions."""
    if repo.is_ancestor(a, b):
        return [(b, a)]
    if repo.is_ancestor(b, a):
        return [(a, b)]
    return [(a, b), (b, a)]


def check_release(repo: Repo, manifest: Manifest, workdir: Path, *, every_component: bool = True) -> list[Problem]:
    """Everything that stops ``manifest`` from being a release; empty if it can be cut."""
    problems: list[Problem] = []
    if every_component:
        problems += [
            Problem("unlisted", c, f"is in the tree, not in the manifest (`release bump {c}`)")
            for c in discover(repo)
            if c not in manifest.components
        ]
    for component, pinned in sorted(manifest.components.items()):
        problems += _version_problems(repo, component, pinned.version, pinned.contracts)
    if any(p.rule in ("unknown-version", "missing-folder") for p in problems):
        return problems
    parties = _parties(repo, manifest, problems)
    versions = Versions(repo, workdir)
    by_version: dict[str, list[str]] = {}
    for party in parties:
        by_version.setdefault(party.contracts or "", []).append(party.component)
    distinct = sorted(by_version)
    for i, a in enumerate(distinct):
        for b in distinct[i + 1 :]:
            for new, old in _ordered(repo, a, b):
                users = f"contracts {old} ({', '.join(by_version[old])}) → {new} ({', '.join(by_version[new])})"
                schema = versions.schema(new)
                problems += [
                    Problem("contracts-breaking", users, _explain(v, schema, parties, parties, versions))
                    for v in versions.breaking(new, old)
                ]
    for party in parties:
        problems += produced_problems(party, versions)
        problems += unserved(party, parties, versions)
    return problems


def working_tree_parties(repo: Repo, problems: list[Problem]) -> list[Party]:
    parties = []
    for component in discover(repo):
        if not (repo.root / component).is_dir():
            continue
        try:
            declarations = declarations_at(repo, component, None)
        except DeclarationError as error:
            problems.append(Problem("bad-declarations", component, str(error)))
            declarations = Declarations()
        parties.append(Party(component, None, declarations, f"{component} (working tree)"))
    return parties


def gate(repo: Repo, workdir: Path) -> tuple[list[Problem], str]:
    """Breaking changes of contracts/ in the working tree against the last release."""
    last = history.last_release(repo)
    if last is None:
        return [], "no release tag yet: nothing to compare contracts/ against, the gate passes"
    tag = history.tag(last)
    problems: list[Problem] = []
    released = _parties(repo, history.manifest_at(repo, last), problems)
    current = working_tree_parties(repo, problems)
    versions = Versions(repo, workdir)
    schema = versions.schema(None)
    consumers = current + released
    problems += [
        Problem(
            "contracts-breaking",
            f"contracts/ against {tag}",
            _explain(v, schema, consumers, current, versions),
        )
        for v in versions.breaking(None, tag)
    ]
    for producer in current:
        problems += produced_problems(producer, versions)
    for consumer in consumers:
        problems += unserved(consumer, current, versions)
    summary = f"contracts/ checked against {tag}: " + (f"{len(problems)} problem(s)" if problems else "compatible")
    return problems, summary
