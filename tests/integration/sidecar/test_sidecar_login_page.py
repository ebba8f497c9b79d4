"""The development identity provider's login page, in a real browser: a demo user
signs in and comes back to the application with an access token the sidecar accepts."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.sync_api import Browser

from adapters.serving import BackgroundServer
from sidecar.devidp import KeyStore, create_app
from sidecar.tokens import Issuer, Policy, TokenVerifier


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_demo_user_signs_in_and_returns_with_a_token(tmp_path: Path, chromium: Browser) -> None:
    # given the identity provider, and an application on loopback it may send users back to
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    server = BackgroundServer(create_app(issuer, "troupe", KeyStore(tmp_path / "keys")),
                              port=port).start()
    try:
        page = chromium.new_page()
        page.goto(f"{issuer}/login?redirect_uri={issuer}/app")
        # when the demo password is there and Ada picks herself
        assert page.input_value("input[name=password]") == "demo"
        page.click("button[value=ada]")
        page.wait_for_url(f"{issuer}/app#*")
        # then she is back at the application with an access token for her, as auditor
        token = parse_qs(urlsplit(page.url).fragment)["access_token"][0]
        verifier = TokenVerifier(
            [Issuer(issuer=issuer, jwks_url=f"{issuer}/jwks.json", audiences=("troupe",))],
            Policy(), fetch=lambda url, timeout: httpx.get(url, timeout=timeout).content)
        identity = verifier.verify(token)
        assert (identity.subject, identity.roles) == ("user:ada", ("auditor",))
        # and a wrong password keeps her on the page with the reason
        page.goto(f"{issuer}/login")
        page.fill("input[name=password]", "wrong")
        page.click("button[value=ada]")
        assert "Unknown user or wrong password." in page.content()
    finally:
        server.stop()
