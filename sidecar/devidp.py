"""A development identity provider for the local run: NOT for production.

A login page for the demo users (password ``demo``), RS256 access tokens
(``typ: at+jwt``, 15 minutes), and the JWKS the sidecars fetch. ``POST /rotate``
starts signing with a new key while the old one stays published, to try key
rotation. In production any OIDC provider takes its place (docs/sidecar.md).
"""

from __future__ import annotations

import html
import json
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

TOKEN_LIFETIME = 15 * 60
DEMO_PASSWORD = "demo"


@dataclass(frozen=True)
class DemoUser:
    username: str
    name: str
    roles: tuple[str, ...]


DEMO_USERS = {
    user.username: user
    for user in (
        DemoUser("olga", "Olga Operator", ("operator",)),
        DemoUser("sam", "Sam Supervisor", ("supervisor",)),
        DemoUser("ada", "Ada Auditor", ("auditor",)),
        DemoUser("rene", "René Release", ("release-engineer",)),
        DemoUser("lead", "Lee Lead", ("operator", "supervisor")),
    )
}


class KeyStore:
    """RS256 signing keys; the newest signs, all stay in the JWKS. Kept in ``directory``
    (when given) so that tokens stay valid across restarts of the provider."""

    def __init__(self, directory: Path | None = None, keep: int = 3) -> None:
        self._directory = directory
        self._keep = keep
        self._lock = threading.Lock()
        self._keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        if directory is not None and directory.exists():
            for path in sorted(directory.glob("*.pem"), key=lambda p: p.stat().st_mtime):
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
                if isinstance(key, rsa.RSAPrivateKey):
                    self._keys.append((path.stem, key))
        if not self._keys:
            self.rotate()

    def rotate(self) -> str:
        kid = f"dev-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if self._directory is not None:
            self._directory.mkdir(parents=True, exist_ok=True)
            path = self._directory / f"{kid}.pem"
            path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
            path.chmod(0o600)
        with self._lock:
            self._keys = [*self._keys, (kid, key)][-self._keep :]
        return kid

    def signing_key(self) -> tuple[str, rsa.RSAPrivateKey]:
        with self._lock:
            return self._keys[-1]

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            keys = list(self._keys)
        published = []
        for kid, key in keys:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            published.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": published}


def issue_token(keys: KeyStore, issuer: str, audience: str, user: DemoUser,
                lifetime: int = TOKEN_LIFETIME) -> str:
    kid, key = keys.signing_key()
    now = int(time.time())
    claims = {
        "iss": issuer, "aud": audience, "sub": f"user:{user.username}", "name": user.name,
        "preferred_username": user.username, "roles": list(user.roles), "iat": now,
        "nbf": now, "exp": now + lifetime, "jti": uuid.uuid4().hex, "client_id": "troupe-web",
        "scope": "openid troupe",
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"})


def create_app(issuer: str, audience: str, keys: KeyStore) -> FastAPI:
    app = FastAPI(title="Troupe development identity provider", docs_url=None, redoc_url=None)

    @app.get("/.well-known/openid-configuration")
    def discovery() -> dict[str, Any]:
        return {
            "issuer": issuer, "jwks_uri": f"{issuer}/jwks.json",
            "authorization_endpoint": f"{issuer}/login", "token_endpoint": f"{issuer}/token",
            "grant_types_supported": ["password"],
            "token_endpoint_auth_methods_supported": ["none"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    @app.get("/jwks.json")
    def published_keys() -> Response:
        return JSONResponse(keys.jwks(), headers={"Cache-Control": "max-age=60"})

    @app.get("/login", response_class=HTMLResponse)
    def login_page(redirect_uri: str = "") -> str:
        return _login_html(redirect_uri, "")

    @app.post("/login", response_model=None)
    async def login(request: Request) -> Response:
        form = await _form(request)
        username, password = form.get("username", ""), form.get("password", "")
        redirect_uri = form.get("redirect_uri", "")
        user = DEMO_USERS.get(username)
        if user is None or password != DEMO_PASSWORD:
            return HTMLResponse(_login_html(redirect_uri, "Unknown user or wrong password."),
                                status_code=401)
        token = issue_token(keys, issuer, audience, user)
        if redirect_uri:
            if not _local_redirect(redirect_uri):
                raise HTTPException(400, "redirect_uri must be on this machine")
            return RedirectResponse(f"{redirect_uri}#access_token={quote(token)}", 303)
        return HTMLResponse(_token_html(user, token))

    @app.post("/token")
    async def token(request: Request) -> dict[str, Any]:
        form = await _form(request)
        user = DEMO_USERS.get(form.get("username", ""))
        grant_type = form.get("grant_type", "password")
        if grant_type != "password" or user is None or form.get("password") != DEMO_PASSWORD:
            raise HTTPException(401, "unknown user or wrong password")
        return {"access_token": issue_token(keys, issuer, audience, user),
                "token_type": "Bearer", "expires_in": TOKEN_LIFETIME}

    @app.post("/rotate")
    def rotate() -> dict[str, str]:
        return {"kid": keys.rotate()}

    return app


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (small: a login form)."""
    body = await request.body()
    if len(body) > 4096:
        raise HTTPException(413, "form too large")
    return {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}


def _local_redirect(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost")


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Troupe sign-in (development)</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;color:#222}}
button{{margin:.25rem 0;padding:.5rem 1rem;width:100%;text-align:left}}
.err{{color:#b00}} textarea{{width:100%;height:9rem}}</style></head><body>{body}</body></html>"""


def _login_html(redirect_uri: str, error: str) -> str:
    buttons = "".join(
        f'<button name="username" value="{html.escape(u.username)}">{html.escape(u.name)} '
        f'<small>({html.escape(", ".join(u.roles))})</small></button>'
        for u in DEMO_USERS.values()
    )
    body = (
        "<h1>Troupe sign-in</h1><p>Development identity provider: demo users only.</p>"
        + (f'<p class="err">{html.escape(error)}</p>' if error else "")
        + '<form method="post" action="/login">'
        + f'<input type="hidden" name="redirect_uri" value="{html.escape(redirect_uri)}">'
        + '<label>Password <input name="password" type="password" value="demo"></label>'
        + f"<p>Sign in as:</p>{buttons}</form>"
    )
    return _PAGE.format(body=body)


def _token_html(user: DemoUser, token: str) -> str:
    body = (
        f"<h1>Signed in as {html.escape(user.name)}</h1>"
        f"<p>Roles: {html.escape(', '.join(user.roles))}. Access token "
        f"({TOKEN_LIFETIME // 60} minutes):</p><textarea readonly>{html.escape(token)}</textarea>"
        '<p><a href="/login">Sign in as someone else</a></p>'
    )
    return _PAGE.format(body=body)


def run_idp(host: str, port: int, issuer: str | None, audience: str, key_dir: Path) -> None:
    issuer = issuer or f"http://{host}:{port}"
    app = create_app(issuer, audience, KeyStore(key_dir))
    print(f"development identity provider: {issuer}/login  (JWKS {issuer}/jwks.json)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
