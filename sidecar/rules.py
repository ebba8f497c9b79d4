"""Which roles may call which method on which path of one service: the rules file.

A service's rules are a YAML file (``services/<name>/sidecar-rules.yaml``)::

    service: tickets
    rules:
      - public: true                  # no token needed
        methods: [GET]
        paths: [/health]
      - roles: [operator, supervisor]
        methods: [GET]
        paths: [/tickets, "/tickets/{entity}"]
      - roles: [operator]
        methods: [POST]
        paths: ["/tickets/{entity}/resolve"]
      - roles: [operator]
        methods: [WEBSOCKET]         # the upgrade; every message is then an audited action
        paths: [/live]

Deny by default: a request no rule allows is refused. Paths are matched segment by
segment after normalization (see ``normalize_path``): a literal segment matches
itself, ``*`` any one segment, ``{name}`` any one segment and captures it (``{entity}``
names the entity id the audit records), and ``**`` as the last segment any number
of segments, none included. ``GET`` also allows ``HEAD``; ``*`` as a method allows
every HTTP method (not WEBSOCKET or GRPC, which must be named). For ``GRPC`` the
path is the full method name, ``/package.Service/Method``; a rule with
``read_only: true`` marks the calls it allows as reads, which are not audited.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SPECIAL_METHODS = frozenset({"WEBSOCKET", "GRPC"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ENTITY_PARAM = "entity"
_HEX = frozenset(b"0123456789abcdefABCDEF")
_SEGMENT_SAFE = "-._~!$&'()*+,=:@"
_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_FORBIDDEN_DECODED = frozenset("/\\#;%?")


class PathError(ValueError):
    """A request path that is refused before any rule is consulted."""


@dataclass(frozen=True)
class NormalizedPath:
    segments: tuple[str, ...]

    @functools.cached_property
    def text(self) -> str:
        """The decoded path, as rules and the audit see it."""
        return "/" + "/".join(self.segments)

    @functools.cached_property
    def encoded(self) -> str:
        """The canonical encoding forwarded to the service, so it sees what was checked."""
        return "/" + "/".join(quote(s, safe=_SEGMENT_SAFE) for s in self.segments)


# Clients ask for the same few paths again and again: each is decoded once. A refused
# path raises, and exceptions are not cached.
@functools.lru_cache(maxsize=4096)
def normalize_path(raw: bytes | str) -> NormalizedPath:
    """Decodes and normalizes a request path (without its query), refusing tricks.

    Empty segments (``//``) and ``.`` are dropped, ``..`` removes the segment
    before it (and may not climb above the root), each segment is percent-decoded
    exactly once. Refused: ``;`` (path parameters some servers strip), ``#``,
    backslashes, control characters, malformed escapes, non-UTF-8, and any escape
    that decodes to ``/``, ``\\``, ``#``, ``;``, ``?`` or ``%`` (encoded separators
    and double encoding), so the service cannot read a different path than the rules.
    """
    data = raw.encode("utf-8", "strict") if isinstance(raw, str) else raw
    if not data.startswith(b"/"):
        raise PathError("the path must start with /")
    if len(data) > 4096:
        raise PathError("the path is too long")
    segments: list[str] = []
    for part in data.split(b"/"):
        segment = _decode_segment(part)
        if segment in ("", "."):
            continue
        if segment == "..":
            if not segments:
                raise PathError("the path climbs above the root")
            segments.pop()
            continue
        segments.append(segment)
    return NormalizedPath(tuple(segments))


def _decode_segment(part: bytes) -> str:
    out = bytearray()
    index = 0
    while index < len(part):
        byte = part[index]
        if byte == 0x25:  # %
            pair = part[index + 1 : index + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                raise PathError("the path has a malformed percent escape")
            out.append(int(pair, 16))
            index += 3
            continue
        if byte < 0x21 or byte >= 0x7F or byte in b"#;\\":
            raise PathError(f"the path may not contain {chr(byte)!r}")
        out.append(byte)
        index += 1
    try:
        text = out.decode("utf-8", "strict")
    except UnicodeDecodeError:
        raise PathError("the path is not UTF-8") from None
    if any(ch in _FORBIDDEN_DECODED or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise PathError("the path has an encoded separator or control character")
    return text


class Rule(BaseModel):
    """One rule of the file: who (roles, or public) may use which methods on which paths."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    public: bool = False
    roles: tuple[str, ...] = ()
    methods: tuple[str, ...] = Field(min_length=1)
    paths: tuple[str, ...] = Field(min_length=1)
    # GRPC only: calls this rule allows are reads, not audited. Every other gRPC call
    # counts as a change (HTTP changes are the non-safe methods).
    read_only: bool = False

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        upper = tuple(m.upper() for m in methods)
        unknown = set(upper) - HTTP_METHODS - SPECIAL_METHODS - {"*"}
        if unknown:
            raise ValueError(f"unknown methods {sorted(unknown)}")
        return upper

    @field_validator("paths")
    @classmethod
    def _valid_patterns(cls, paths: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in paths:
            _compile(pattern)
        return paths

    @model_validator(mode="after")
    def _who(self) -> Rule:
        if self.public == bool(self.roles):
            raise ValueError("a rule has either roles or public: true (not both, not neither)")
        return self

    def allows_method(self, method: str) -> bool:
        if method in self.methods:
            return True
        if method == "HEAD" and "GET" in self.methods:
            return True
        return method in HTTP_METHODS and "*" in self.methods


@dataclass(frozen=True)
class _Pattern:
    text: str
    parts: tuple[str, ...]  # literal, "*", "{name}" or a final "**"

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        params: dict[str, str] = {}
        for index, part in enumerate(self.parts):
            if part == "**":
                return params
            if index >= len(segments):
                return None
            segment = segments[index]
            if part.startswith("{"):
                params[part[1:-1]] = segment
            elif part != "*" and part != segment:
                return None
        return params if len(segments) == len(self.parts) else None


def _compile(pattern: str) -> _Pattern:
    if not pattern.startswith("/"):
        raise ValueError(f"path pattern {pattern!r} must start with /")
    parts = tuple(p for p in pattern.split("/") if p)
    for index, part in enumerate(parts):
        if part == "**" and index != len(parts) - 1:
            raise ValueError(f"in {pattern!r}, ** may only be the last segment")
        if part in (".", "..") or ("{" in part and not _PARAM.fullmatch(part)):
            raise ValueError(f"path pattern {pattern!r} has an invalid segment {part!r}")
        if part != "**" and "*" in part and part != "*":
            raise ValueError(f"in {pattern!r}, * must be a whole segment")
        literal = part not in ("*", "**") and not part.startswith("{")
        if literal and ("%" in part or normalize_path("/" + part).segments != (part,)):
            raise ValueError(f"path pattern {pattern!r} is not normalized at {part!r}")
    return _Pattern(pattern, parts)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: Rule | None = None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def public(self) -> bool:
        return self.rule is not None and self.rule.public

    @property
    def entity_id(self) -> str:
        return self.params.get(ENTITY_PARAM, "")


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str = Field(min_length=1)
    rules: tuple[Rule, ...] = ()


class Rules:
    """The rules of one service, ready to answer: may these roles do this?"""

    def __init__(self, service: str, rules: Iterable[Rule]) -> None:
        self.service = service
        self.rules = tuple(rules)
        self._compiled = [
            (rule, [_compile(pattern) for pattern in rule.paths]) for rule in self.rules
        ]

    @classmethod
    def from_yaml(cls, text: str) -> Rules:
        parsed = RulesFile.model_validate(yaml.safe_load(text) or {})
        return cls(parsed.service, parsed.rules)

    @classmethod
    def load(cls, path: Path) -> Rules:
        return cls.from_yaml(path.read_text(encoding="utf-8"))

    def authorize(
        self, method: str, path: NormalizedPath, roles: Sequence[str] | None
    ) -> Decision:
        """The first rule that allows ``method`` on ``path`` for one of ``roles``
        (``None``: no token, so only public rules apply); refused if there is none."""
        method = method.upper()
        held = frozenset(roles or ())
        for rule, patterns in self._compiled:
            if not rule.allows_method(method):
                continue
            if not rule.public and (roles is None or held.isdisjoint(rule.roles)):
                continue
            for pattern in patterns:
                params = pattern.match(path.segments)
                if params is not None:
                    return Decision(True, rule, params)
        return Decision(False)

    def entity_of(self, method: str, path: NormalizedPath) -> str:
        """The ``{entity}`` segment of the first pattern matching the path, for the audit
        of requests no rule allows."""
        for rule, patterns in self._compiled:
            if rule.allows_method(method.upper()):
                for pattern in patterns:
                    params = pattern.match(path.segments)
                    if params and ENTITY_PARAM in params:
                        return params[ENTITY_PARAM]
        return ""
