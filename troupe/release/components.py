"""Components (every folder under services/ and adapters/, the sidecar and the
composer), their versions, and what each declares it produces and consumes.

A component declares the events it exchanges in ``<folder>/events.yaml``::

    produces:
      - topic: customer.events
        message: contracts.customer.v1.Customer   # the state carried in Envelope.state
        types: [CustomerRegistered, ContactChanged]
    consumes:
      - topic: customer.events
        types: [CustomerRegistered]
        fields: [customer_id, phones]              # dotted paths into the state message

See docs/contracts.md for the rules the release check applies to these files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from troupe.release.git import Repo

CONTRACTS = "contracts"
DECLARATIONS = "events.yaml"
GROUPS = ("services", "adapters")
SINGLES = ("sidecar", "composer")

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]*$")]
FieldPath = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")]


class Produced(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: Name
    message: Name = Field(description="Full name of the payload message, e.g. contracts.x.v1.X.")
    types: list[Name] = Field(min_length=1)


class Consumed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: Name
    types: list[Name] = Field(min_length=1)
    fields: list[FieldPath] = Field(default_factory=list)


class Declarations(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    produces: list[Produced] = Field(default_factory=list)
    consumes: list[Consumed] = Field(default_factory=list)


class DeclarationError(ValueError):
    pass


def parse_declarations(text: str, source: str) -> Declarations:
    try:
        data = yaml.safe_load(text) or {}
        return Declarations.model_validate(data)
    except yaml.YAMLError as error:
        raise DeclarationError(f"{source}: not YAML: {error}") from error
    except ValidationError as error:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise DeclarationError(f"{source}: {reasons}") from error


def declarations_at(repo: Repo, component: str, rev: str | None) -> Declarations:
    """A component's declarations at a commit (None: the working tree); empty if absent."""
    path = f"{component}/{DECLARATIONS}"
    if rev is None:
        file = repo.root / path
        text = file.read_text() if file.exists() else None
    else:
        text = repo.show(rev, path)
    where = f"{path}@{rev}" if rev else path
    return parse_declarations(text, where) if text is not None else Declarations()


def discover(repo: Repo, rev: str = "HEAD") -> list[str]:
    """Component folders holding committed files at ``rev``."""
    found = [f"{group}/{name}" for group in GROUPS for name in repo.folders(rev, group)]
    found += [name for name in SINGLES if name in repo.folders(rev, "")]
    return sorted(c for c in found if "__pycache__" not in c)


@dataclass(frozen=True)
class Version:
    version: str
    contracts: str


def current_version(repo: Repo, component: str, rev: str = "HEAD") -> Version | None:
    version = repo.last_change(component, rev)
    if version is None:
        return None
    contracts = repo.last_change(CONTRACTS, version)
    return Version(version, contracts) if contracts else None


def resolve_name(name: str, known: list[str]) -> str:
    """``customer`` or ``services/customer`` → the component folder."""
    if name in known:
        return name
    matches = [c for c in known if c.rsplit("/", 1)[-1] == name.strip("/")]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(f"{name!r} is ambiguous: {', '.join(matches)}")
    raise ValueError(f"no component {name!r}; components: {', '.join(known) or 'none'}")


def working_tree_has(root: Path, component: str) -> bool:
    return (root / component).is_dir()
