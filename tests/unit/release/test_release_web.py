"""The release page (``troupe release serve``) on a scripted history of releases:
what it shows, the same diff as the CLI, and bump-and-cut only for release engineers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sidecar.rules import Rules, normalize_path
from troupe.release import web
from troupe.release.git import Repo

from .release_history import CUSTOMER_EVENTS, TICKET_EVENTS, TICKET_PROTO, Scripted, customer_proto

RENE = {
    "X-Troupe-Subject": "rene",
    "X-Troupe-Name": "Ren%C3%A9%20Release",  # the sidecar percent-encodes UTF-8
    "X-Troupe-Roles": "operator,release-engineer",
}
OLGA = {"X-Troupe-Subject": "olga", "X-Troupe-Name": "Olga", "X-Troupe-Roles": "operator,supervisor"}


class Uncaptured:
    """Stands in for capsys where a module-scoped fixture cannot have it."""

    out = err = ""

    def readouterr(self) -> Uncaptured:
        return self


@pytest.fixture(scope="module")
def history_of_two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Release 1, then release 2 with a new customer version; built once, copied per test."""
    base = Scripted(tmp_path_factory.mktemp("web") / "repo", Uncaptured())  # type: ignore[arg-type]
    base.write("contracts/customer/v1/customer.proto", customer_proto())
    base.write("contracts/ticket/v1/ticket.proto", TICKET_PROTO)
    base.commit("Contracts: customer and ticket")
    for name, events in (("customer", CUSTOMER_EVENTS), ("ticket", TICKET_EVENTS)):
        base.write(f"services/{name}/__init__.py", "")
        base.write(f"services/{name}/events.yaml", events)
        base.commit(f"{name.title()} service")
    base.write("sidecar/__init__.py", "")
    base.write("composer/__init__.py", "")
    base.commit("Sidecar and composer")
    base.release("bump")
    assert base.release("cut", "--notes", "First <b>release</b>").code == 0
    base.write("contracts/customer/v1/customer.proto", customer_proto("string email = 5;\n"))
    base.write("services/customer/email.py", "FIELD = 'email'\n")
    base.commit("Customer: e-mail")
    base.release("bump", "customer")
    assert base.release("cut", "--notes", "E-mail", "--by", "Ann Other <ann@example.com>").code == 0
    return base.root


@pytest.fixture
def released(history_of_two: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Scripted:
    root = tmp_path / "repo"
    shutil.copytree(history_of_two, root, symlinks=True)
    return Scripted(root, capsys, existing=True)


@pytest.fixture
def client(released: Scripted) -> TestClient:
    return TestClient(web.create_app(Repo(released.root)), follow_redirects=False)


def test_the_page_shows_the_manifest_the_releases_and_the_check(released: Scripted, client: TestClient) -> None:
    response = client.get("/releases", headers=RENE)

    assert response.status_code == 200
    page = response.text
    assert "René Release &lt;rene&gt;" in page  # who is asking, decoded
    assert "Release 3 in <code>release-manifest/manifest.yaml</code> (last cut: 2)" in page
    assert f"<code>{released.last_change('services/customer')}</code>" in page
    assert "Release 3 can be cut: its components work together." in page
    assert "Ann Other &lt;ann@example.com&gt;" in page
    assert "Rita Releaser &lt;rita@example.com&gt;" in page
    assert "First &lt;b&gt;release&lt;/b&gt;" in page
    assert "<b>release</b>" not in page
    assert 'action="/releases/cut"' in page
    # Someone without the role sees everything but the form.
    other = client.get("/releases", headers=OLGA).text
    assert "Release 3 can be cut" in other
    assert 'action="/releases/cut"' not in other


def test_the_json_views_hold_the_same_data(released: Scripted, client: TestClient) -> None:
    releases = client.get("/releases/api/releases").json()
    manifest = client.get("/releases/api/manifest").json()
    check = client.get("/releases/api/check").json()

    assert [(r["release"], r["notes"], r["released_by"]) for r in releases] == [
        (2, "E-mail", "Ann Other <ann@example.com>"),
        (1, "First <b>release</b>", "Rita Releaser <rita@example.com>"),
    ]
    assert manifest["release"] == 3
    assert manifest["last_release"] == 2
    customer = next(c for c in manifest["components"] if c["component"] == "services/customer")
    assert customer["version"] == released.last_change("services/customer")
    assert customer["outdated"] is False
    assert check == {"release": 3, "ok": True, "problems": []}


def test_the_diff_is_the_one_the_cli_prints(released: Scripted, client: TestClient) -> None:
    cli = released.release("diff", "1", "2")

    data = client.get("/releases/api/diff", params={"a": 1, "b": 2}).json()
    page = client.get("/releases/diff", params={"a": "1", "b": "2"}).text

    assert data["text"] == cli.out.rstrip("\n")
    assert [c["component"] for c in data["changes"]] == ["services/customer"]
    assert "+ field contracts.customer.v1.Customer.email `string = 5`" in data["contract_changes"]
    assert "~ services/customer" in page
    assert "release 1 → release 2" in page
    working = client.get("/releases/diff", params={"a": "2", "b": ""}).text
    assert "release 2 → release 3 (working tree)" in working
    assert client.get("/releases/api/diff", params={"a": 9}).status_code == 404


@pytest.mark.parametrize("headers", [{}, OLGA], ids=["no identity", "no release-engineer role"])
def test_bump_and_cut_needs_the_release_engineer_role(
    released: Scripted, client: TestClient, headers: dict[str, str]
) -> None:
    form = client.post("/releases/cut", data={"notes": "Sneaky"}, headers=headers)
    api = client.post("/releases/api/cut", json={"notes": "Sneaky"}, headers=headers)

    for response in (form, api):
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
        assert "needs the release-engineer role" in response.json()["detail"]
    assert "release-3" not in released.tags()


def test_a_release_engineer_bumps_and_cuts_from_the_form(released: Scripted, client: TestClient) -> None:
    released.write("services/customer/phones.py", "E164 = True\n")
    version = released.commit("Customer: phones")

    response = client.post("/releases/cut", data={"components": "customer", "notes": "Phones"}, headers=RENE)

    assert response.status_code == 303
    assert response.headers["location"] == "/releases?cut=3"
    assert "release-3" in released.tags()
    shown = released.git("show", "release-3:release-manifest/manifest.yaml")
    assert "released_by: René Release <rene>" in shown
    assert f'services/customer: {{version: "{version}"' in shown
    assert "Cut release 3." in client.get("/releases?cut=3", headers=RENE).text


def test_the_json_cut_answers_with_the_release(released: Scripted, client: TestClient) -> None:
    released.write("services/ticket/rules.py", "SLA = 24\n")
    released.commit("Ticket: rules")

    response = client.post("/releases/api/cut", json={"components": ["ticket"], "notes": "SLA"}, headers=RENE)

    assert response.status_code == 201, response.text
    assert response.json()["release"] == 3
    assert response.json()["cut"] is True
    assert "~ services/ticket" in response.json()["lines"][0]


def test_a_refused_cut_lists_every_reason_and_tags_nothing(released: Scripted, client: TestClient) -> None:
    released.write("services/billing/__init__.py", "")
    released.write("services/billing/events.yaml", "consumes:\n  - topic: x\n    types: []\n")
    released.commit("Billing, declared wrong")

    response = client.post("/releases/cut", data={"notes": "With billing"}, headers=RENE)
    api = client.post("/releases/api/cut", json={"notes": "With billing"}, headers=RENE)

    assert response.status_code == 409
    assert "Release 3 refused" in response.text
    assert "<code>bad-declarations</code>" in response.text
    assert api.status_code == 409
    assert [p["rule"] for p in api.json()["problems"]] == ["bad-declarations"]
    assert "release-3" not in released.tags()


def test_a_cut_without_notes_is_refused(client: TestClient) -> None:
    response = client.post("/releases/api/cut", json={"notes": " "}, headers=RENE)

    assert response.status_code == 400
    assert "say why this release is made" in response.json()["detail"]


def test_the_sidecar_rules_let_only_release_engineers_cut() -> None:
    rules = Rules.load(Path(web.__file__).with_name("sidecar-rules.yaml"))

    def allowed(method: str, path: str, *roles: str) -> bool:
        return rules.authorize(method, normalize_path(path), roles).allowed

    assert allowed("POST", "/releases/cut", "release-engineer")
    assert allowed("POST", "/releases/api/cut", "release-engineer")
    assert not allowed("POST", "/releases/cut", "supervisor", "operator")
    assert allowed("GET", "/releases", "auditor")
    assert allowed("GET", "/releases/api/diff", "supervisor")
    assert not allowed("GET", "/releases", "operator")
