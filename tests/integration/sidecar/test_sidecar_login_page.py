"""The development identity provider's login page, in a real browser: a demo user
signs in and comes back to the application with an access token the sidecar accepts."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Browser

from sidecar.devidp import KeyStore, create_app
from sidecar.tokens import Issuer, Policy, TokenVerifier
from tests.unit.sidecar.sidecar_harness import serve

ISSUER = "https://idp.login.test"


def test_a_demo_user_signs_in_and_returns_with_a_token(tmp_path: Path, chromium: Browser) -> None:
    # given the identity provider, and an application on loopback it may send users back to
    with serve(create_app(ISSUER, "troupe", KeyStore(tmp_path / "keys"))) as port:
        idp = f"http://127.0.0.1:{port}"
        page = chromium.new_page()
        page.goto(f"{idp}/login?redirect_uri={idp}/app")
        # when the demo password is there and Ada picks herself
        assert page.input_value("input[name=password]") == "demo"
        page.click("button[value=ada]")
        page.wait_for_url(f"{idp}/app#*")
        # then she is back at the application with an access token for her, as auditor
        token = parse_qs(urlsplit(page.url).fragment)["access_token"][0]
        verifier = TokenVerifier(
            [Issuer(issuer=ISSUER, jwks_url=f"{idp}/jwks.json", audiences=("troupe",))],
            Policy())
        identity = verifier.verify(token)
        assert (identity.subject, identity.roles) == ("user:ada", ("auditor",))
        # and a wrong password keeps her on the page with the reason
        page.goto(f"{idp}/login")
        page.fill("input[name=password]", "wrong")
        page.click("button[value=ada]")
        assert "Unknown user or wrong password." in page.content()
