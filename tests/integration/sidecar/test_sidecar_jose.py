"""Tokens minted by the npm `jose` package (node), verified by the sidecar (PyJWT)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from sidecar.tokens import Issuer, TokenError, TokenVerifier
from tests.unit.sidecar.sidecar_mint import AUDIENCE, ISSUER, SigningKey, claims, jwks

ROOT = Path(__file__).resolve().parents[3]
HELPER = Path(__file__).with_name("jose_mint.mjs")
KEYS = {alg: SigningKey.generate(alg, f"jose-{alg.lower()}") for alg in ("RS256", "ES256", "EdDSA")}


def jose(requests: list[dict[str, Any]]) -> list[str]:
    node = shutil.which("node")
    assert node is not None, "node is needed to mint tokens with jose"
    assert (ROOT / "node_modules" / "jose").exists(), "run npm install (bin/setup)"
    result = subprocess.run(
        [node, str(HELPER)], input="\n".join(json.dumps(r) for r in requests) + "\n",
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=True,
    )
    return result.stdout.split()


def signed(alg: str, payload: dict[str, Any], **header: Any) -> dict[str, Any]:
    key = KEYS[alg]
    pem = key.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    return {"kind": "signed", "alg": alg, "pem": pem, "kid": key.kid, "claims": payload, **header}


@pytest.fixture(scope="module")
def verifier() -> TokenVerifier:
    issuer = Issuer(issuer=ISSUER, jwks_url="https://idp.test/jwks", audiences=(AUDIENCE,),
                    algorithms=("RS256", "ES256", "EdDSA"))
    return TokenVerifier([issuer], fetch=lambda _url, _timeout: jwks(*KEYS.values()))


def test_jose_tokens_of_every_pinned_algorithm_verify(verifier: TokenVerifier) -> None:
    tokens = jose([signed(alg, claims(sub=f"jose-{alg}")) for alg in KEYS])
    assert [verifier.verify(t).subject for t in tokens] == [f"jose-{alg}" for alg in KEYS]


def test_jose_made_attacks_are_refused(verifier: TokenVerifier) -> None:
    now = int(time.time())
    rsa_public = KEYS["RS256"].public_pem().decode()
    requests = [
        ({"kind": "unsecured", "claims": claims()}, "algorithm"),
        ({"kind": "hmac", "alg": "HS256", "secret": rsa_public, "kid": "jose-rs256",
          "claims": claims()}, "algorithm"),
        (signed("RS256", claims(exp=now - 120, iat=now - 600, nbf=now - 600)), "expired"),
        (signed("ES256", claims(aud="someone-else")), "audience"),
        (signed("EdDSA", claims(iss=ISSUER + ".evil")), "issuer"),
        (signed("RS256", claims(exp=now + 86400)), "lifetime"),
        (signed("RS256", claims(nonce="n"), typ="JWT"), "type"),
    ]
    tokens = jose([request for request, _ in requests])
    for token, (_, reason) in zip(tokens, requests, strict=True):
        with pytest.raises(TokenError) as caught:
            verifier.verify(token)
        assert caught.value.reason == reason
