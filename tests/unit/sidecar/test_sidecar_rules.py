"""The rules file: deny by default, roles x methods x paths, public paths, and a
path normalization that no `//`, `%2F`, `..`, `;` or `#` trick gets around."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sidecar.rules import PathError, Rules, normalize_path

RULES = Rules.from_yaml(
    """
service: tickets
rules:
  - name: health
    public: true
    methods: [GET]
    paths: [/health, "/public/**"]
  - name: read tickets
    roles: [operator, supervisor, auditor]
    methods: [GET]
    paths: [/tickets, "/tickets/{entity}"]
  - name: work on tickets
    roles: [operator]
    methods: [POST, PATCH]
    paths: [/tickets, "/tickets/{entity}/resolve", "/tickets/{entity}"]
  - name: administer
    roles: [supervisor]
    methods: ["*"]
    paths: ["/admin/**"]
  - name: live events
    roles: [operator]
    methods: [WEBSOCKET]
    paths: [/live]
  - name: grpc reads
    roles: [auditor]
    methods: [GRPC]
    paths: ["/contracts.tickets.v1.TicketService/*"]
"""
)

ANON = None
OP = ["operator"]
SUP = ["supervisor"]
AUD = ["auditor"]
NOBODY: list[str] = []

MATRIX = [
    # method, path, roles, allowed, entity
    ("GET", "/health", ANON, True, ""),
    ("HEAD", "/health", ANON, True, ""),
    ("POST", "/health", ANON, False, ""),
    ("GET", "/health", OP, True, ""),
    ("GET", "/public", ANON, True, ""),
    ("GET", "/public/a/b/c", ANON, True, ""),
    ("GET", "/publicity", ANON, False, ""),
    ("GET", "/tickets", ANON, False, ""),
    ("GET", "/tickets", NOBODY, False, ""),
    ("GET", "/tickets", OP, True, ""),
    ("GET", "/tickets", SUP, True, ""),
    ("GET", "/tickets", AUD, True, ""),
    ("GET", "/tickets", ["release-engineer"], False, ""),
    ("GET", "/tickets/T-1", OP, True, "T-1"),
    ("GET", "/tickets/T-1/history", OP, False, ""),
    ("POST", "/tickets", OP, True, ""),
    ("POST", "/tickets", SUP, False, ""),
    ("POST", "/tickets", AUD, False, ""),
    ("POST", "/tickets/T-9/resolve", OP, True, "T-9"),
    ("PATCH", "/tickets/T-9", OP, True, "T-9"),
    ("DELETE", "/tickets/T-9", OP, False, ""),
    ("PUT", "/tickets/T-9", OP, False, ""),
    ("POST", "/tickets/T-9/resolve", ["operator", "auditor"], True, "T-9"),
    ("POST", "/tickets/T-9/resolve", ["OPERATOR"], False, ""),
    ("GET", "/Tickets", OP, False, ""),
    ("DELETE", "/admin/services/x", SUP, True, ""),
    ("GET", "/admin", SUP, True, ""),
    ("OPTIONS", "/admin", SUP, True, ""),
    ("GET", "/admin/x", OP, False, ""),
    ("WEBSOCKET", "/admin/x", SUP, False, ""),
    ("WEBSOCKET", "/live", OP, True, ""),
    ("WEBSOCKET", "/live", SUP, False, ""),
    ("GET", "/live", OP, False, ""),
    ("GRPC", "/contracts.tickets.v1.TicketService/GetTicket", AUD, True, ""),
    ("GRPC", "/contracts.tickets.v1.TicketService/GetTicket", OP, False, ""),
    ("GET", "/contracts.tickets.v1.TicketService/GetTicket", AUD, False, ""),
    ("GET", "/", OP, False, ""),
]


@pytest.mark.parametrize(("method", "path", "roles", "allowed", "entity"), MATRIX)
def test_rules_matrix(
    method: str, path: str, roles: list[str] | None, allowed: bool, entity: str
) -> None:
    decision = RULES.authorize(method, normalize_path(path), roles)
    assert decision.allowed is allowed
    assert decision.entity_id == entity
    if not allowed:
        assert decision.rule is None


def test_public_decision_and_rule_are_reported() -> None:
    decision = RULES.authorize("GET", normalize_path("/health"), None)
    assert decision.public
    assert decision.rule is not None
    assert decision.rule.name == "health"
    assert not RULES.authorize("GET", normalize_path("/tickets"), OP).public


NORMALIZED = [
    ("/tickets", "/tickets"),
    ("/tickets/", "/tickets"),
    ("//tickets", "/tickets"),
    ("/tickets//T-1", "/tickets/T-1"),
    ("/./tickets/./T-1", "/tickets/T-1"),
    ("/admin/../tickets", "/tickets"),
    ("/public/../admin/x", "/admin/x"),
    ("/public/%2e%2e/admin", "/admin"),
    ("/public/%2E%2E/admin", "/admin"),
    ("/tickets/T%2D1", "/tickets/T-1"),
    ("/tickets/caf%C3%A9", "/tickets/café"),
    ("/tickets/a%20b", "/tickets/a b"),
    ("/", "/"),
]


@pytest.mark.parametrize(("raw", "expected"), NORMALIZED)
def test_paths_are_normalized(raw: str, expected: str) -> None:
    assert normalize_path(raw.encode()).text == expected


def test_the_forwarded_path_is_the_checked_one() -> None:
    assert normalize_path(b"/public/%2e%2e//admin/x/").encoded == "/admin/x"
    assert normalize_path(b"/tickets/caf%C3%A9/a%20b").encoded == "/tickets/caf%C3%A9/a%20b"
    assert normalize_path(b"/tickets/a:b@c").encoded == "/tickets/a:b@c"


REFUSED = [
    b"/tickets%2FT-1",
    b"/tickets%2fT-1",
    b"/public%2F..%2Fadmin",
    b"/public/..%2Fadmin",
    b"/tickets;jsessionid=1",
    b"/admin;/x",
    b"/public/..;/admin",
    b"/tickets%3BT-1",
    b"/tickets#frag",
    b"/tickets%23frag",
    b"/tickets%5CT-1",
    b"/tickets\\..\\admin",
    b"/tickets%252FT-1",
    b"/tickets%25",
    b"/tickets%",
    b"/tickets%zz",
    b"/tickets%00",
    b"/tickets\x00",
    b"/tickets%0a",
    b"/tickets%3Fa",
    b"/tickets/\xff",
    b"/tickets/%ff",
    b"/..",
    b"/../admin",
    b"/public/../../admin",
    b"tickets",
    b"",
    b"/" + b"a" * 5000,
]


@pytest.mark.parametrize("raw", REFUSED)
def test_path_tricks_are_refused(raw: bytes) -> None:
    with pytest.raises(PathError):
        normalize_path(raw)


@pytest.mark.parametrize(
    ("raw", "roles"),
    [(b"//admin/x", OP), (b"/public/../admin/x", ANON), (b"/public/%2e%2e/admin/x", ANON),
     (b"/public/./../admin", ANON), (b"/health/../tickets/T-1", ANON),
     (b"/tickets/T-1/..//../admin", OP)],
)
def test_normalized_tricks_reach_no_rule_they_should_not(
    raw: bytes, roles: list[str] | None
) -> None:
    assert not RULES.authorize("GET", normalize_path(raw), roles).allowed


@pytest.mark.parametrize(
    "text",
    [
        "service: x\nrules:\n  - roles: [a]\n    public: true\n    methods: [GET]\n    paths: [/]",
        "service: x\nrules:\n  - methods: [GET]\n    paths: [/]",
        "service: x\nrules:\n  - roles: [a]\n    methods: [FETCH]\n    paths: [/]",
        "service: x\nrules:\n  - roles: [a]\n    methods: [GET]\n    paths: [x]",
        "service: x\nrules:\n  - roles: [a]\n    methods: [GET]\n    paths: ['/**/x']",
        "service: x\nrules:\n  - roles: [a]\n    methods: [GET]\n    paths: ['/a*']",
        "service: x\nrules:\n  - roles: [a]\n    methods: [GET]\n    paths: ['/a/../b']",
        "service: x\nrules:\n  - roles: [a]\n    methods: [GET]\n    paths: ['/a%2Fb']",
        "service: x\nrules:\n  - roles: [a]\n    methods: [GET]\n    paths: ['/{Bad}']",
        "service: x\nrules:\n  - roles: [a]\n    methods: [GET]\n    paths: [/]\n    extra: 1",
        "service: x\nrules:\n  - roles: [a]\n    methods: []\n    paths: [/]",
        "rules: []",
    ],
)
def test_invalid_rules_files_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        Rules.from_yaml(text)


def test_an_empty_rules_file_denies_everything() -> None:
    rules = Rules.from_yaml("service: empty\n")
    for method in ("GET", "POST", "WEBSOCKET"):
        assert not rules.authorize(method, normalize_path("/"), ["supervisor"]).allowed
        assert not rules.authorize(method, normalize_path("/x"), None).allowed


def test_entity_of_a_refused_request() -> None:
    assert RULES.entity_of("DELETE", normalize_path("/tickets/T-3")) == ""
    assert RULES.entity_of("POST", normalize_path("/tickets/T-3/resolve")) == "T-3"
