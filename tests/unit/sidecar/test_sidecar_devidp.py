"""The development identity provider, and key rotation during traffic through a sidecar
that fetches the provider's JWKS over HTTP."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from sidecar.devidp import DEMO_USERS, KeyStore, create_app
from sidecar.proxy import ProxyConfig, SidecarApp
from sidecar.rules import Rules
from sidecar.tokens import Issuer, Policy, TokenVerifier
from tests.unit.sidecar.sidecar_harness import EchoService, MemoryAuditLog, raw_request, serve

ISSUER = "http://idp.test"


def client(tmp_path: Path) -> TestClient:
    return TestClient(create_app(ISSUER, "troupe", KeyStore(tmp_path / "keys")))


def verifier_for(idp: TestClient) -> TokenVerifier:
    issuer = Issuer(issuer=ISSUER, jwks_url="http://127.0.0.1/jwks.json", audiences=("troupe",))
    return TokenVerifier([issuer], Policy(jwks_min_refresh_seconds=0),
                         fetch=lambda _url, _timeout: idp.get("/jwks.json").content)


def login(idp: TestClient, username: str) -> str:
    response = idp.post("/token", data={"username": username, "password": "demo"})
    assert response.status_code == 200
    token: str = response.json()["access_token"]
    return token


def test_demo_users_get_rs256_access_tokens_the_sidecar_accepts(tmp_path: Path) -> None:
    idp = client(tmp_path)
    verifier = verifier_for(idp)
    roles = {u: verifier.verify(login(idp, u)).roles for u in DEMO_USERS}
    assert {r for rs in roles.values() for r in rs} == {
        "operator", "supervisor", "auditor", "release-engineer"}
    identity = verifier.verify(login(idp, "ada"))
    assert (identity.subject, identity.name, identity.roles) == ("user:ada", "Ada Auditor",
                                                                 ("auditor",))
    assert idp.post("/token", data={"username": "ada", "password": "x"}).status_code == 401
    assert idp.post("/token", data={"username": "eve", "password": "demo"}).status_code == 401
    discovery = idp.get("/.well-known/openid-configuration").json()
    assert discovery["jwks_uri"] == f"{ISSUER}/jwks.json"


def test_the_login_page(tmp_path: Path) -> None:
    idp = client(tmp_path)
    page = idp.get("/login").text
    for user in DEMO_USERS.values():
        assert user.name.split()[0] in page
    signed_in = idp.post("/login", data={"username": "olga", "password": "demo"})
    assert signed_in.status_code == 200
    assert "Olga Operator" in signed_in.text
    assert idp.post("/login", data={"username": "olga", "password": "no"}).status_code == 401
    redirected = idp.post("/login", data={"username": "olga", "password": "demo",
                                          "redirect_uri": "http://127.0.0.1:8080/"},
                          follow_redirects=False)
    assert redirected.status_code == 303
    assert redirected.headers["location"].startswith("http://127.0.0.1:8080/#access_token=")
    evil = idp.post("/login", data={"username": "olga", "password": "demo",
                                    "redirect_uri": "https://evil.test/"})
    assert evil.status_code == 400


def test_keys_persist_and_rotate(tmp_path: Path) -> None:
    idp = client(tmp_path)
    verifier = verifier_for(idp)
    old = login(idp, "olga")
    new_kid = idp.post("/rotate").json()["kid"]
    new = login(idp, "olga")
    assert [k["kid"] for k in idp.get("/jwks.json").json()["keys"]][-1] == new_kid
    assert verifier.verify(new).subject == "user:olga"
    assert verifier.verify(old).subject == "user:olga"
    restarted = client(tmp_path)
    assert verifier_for(restarted).verify(new).subject == "user:olga"


def test_key_rotation_during_traffic_fails_no_valid_request(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys")
    echo = EchoService()
    with serve(create_app(ISSUER, "troupe", keys)) as idp_port:
        idp_url = f"http://127.0.0.1:{idp_port}"
        issuer = Issuer(issuer=ISSUER, jwks_url=f"{idp_url}/jwks.json", audiences=("troupe",))
        # The real HTTP fetch; an unknown kid refreshes at most every 0.5 s (the IdP
        # rotates every second here: rotations faster than that limit would fail).
        verifier = TokenVerifier([issuer], Policy(jwks_min_refresh_seconds=0.5))
        verifier.start_refresher()
        rules = Rules.from_yaml(
            "service: t\nrules:\n  - {roles: [operator], methods: [GET], paths: ['/x/*']}\n")
        with serve(echo) as upstream:
            app = SidecarApp(ProxyConfig(service="t", upstream=f"http://127.0.0.1:{upstream}",
                                         rules=rules, verifier=verifier, audit=MemoryAuditLog()))
            with serve(app) as port:
                statuses: list[int] = []
                stop = threading.Event()

                def token() -> str:
                    answer = httpx.post(f"{idp_url}/token",
                                        data={"username": "olga", "password": "demo"})
                    result: str = answer.json()["access_token"]
                    return result

                async def traffic() -> None:
                    n = 0
                    while not stop.is_set() or n < 50:
                        if n % 5 == 0:
                            tok = token()  # the newest key, from its first moment on
                        status, _ = await raw_request(port, "GET", f"/x/{n}",
                                                      {"Authorization": f"Bearer {tok}"})
                        statuses.append(status)
                        n += 1

                runner = threading.Thread(target=asyncio.run, args=(traffic(),))
                runner.start()
                for _ in range(3):
                    threading.Event().wait(1.0)
                    httpx.post(f"{idp_url}/rotate")
                stop.set()
                runner.join(60)
        verifier.stop_refresher()
    assert len(statuses) >= 50
    assert set(statuses) == {200}
