"""Minting test tokens with `cryptography` directly, so that the library that signs
is not the one that verifies (PyJWT). Also builds the JWKS documents the keys
belong to, and a few deliberately broken tokens."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ISSUER = "https://idp.test/realms/troupe"
AUDIENCE = "troupe"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_json(value: object) -> str:
    return b64u(json.dumps(value, separators=(",", ":")).encode())


def _int_bytes(value: int, length: int | None = None) -> bytes:
    size = length or (value.bit_length() + 7) // 8
    return value.to_bytes(size, "big")


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: PrivateKey

    @classmethod
    def generate(cls, alg: str = "RS256", kid: str | None = None) -> SigningKey:
        private: PrivateKey
        if alg == "RS256":
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        elif alg == "EdDSA":
            private = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(alg)
        return cls(kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}", alg, private)

    def jwk(self) -> dict[str, str]:
        key = self.private
        if isinstance(key, rsa.RSAPrivateKey):
            numbers = key.public_key().public_numbers()
            return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                    "n": b64u(_int_bytes(numbers.n)), "e": b64u(_int_bytes(numbers.e))}
        if isinstance(key, ec.EllipticCurvePrivateKey):
            point = key.public_key().public_numbers()
            return {"kty": "EC", "kid": self.kid, "use": "sig", "alg": "ES256", "crv": "P-256",
                    "x": b64u(_int_bytes(point.x, 32)), "y": b64u(_int_bytes(point.y, 32))}
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {"kty": "OKP", "kid": self.kid, "use": "sig", "alg": "EdDSA", "crv": "Ed25519",
                "x": b64u(raw)}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, data: bytes) -> bytes:
        key = self.private
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if isinstance(key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
            return _int_bytes(r, 32) + _int_bytes(s, 32)
        return key.sign(data)


def jwks(*keys: SigningKey, extra: list[Any] | None = None) -> bytes:
    return json.dumps({"keys": [*(k.jwk() for k in keys), *(extra or [])]}).encode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "name": "Olga Operator",
        "roles": ["operator"], "iat": now, "nbf": now, "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def header(key: SigningKey, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"alg": key.alg, "typ": "at+jwt", "kid": key.kid}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def mint(key: SigningKey, payload: dict[str, Any] | None = None, **header_overrides: Any) -> str:
    """A token signed by ``key``; header fields can be overridden (None removes one)."""
    signing_input = (
        f"{b64u_json(header(key, **header_overrides))}.{b64u_json(payload or claims())}"
    )
    return f"{signing_input}.{b64u(key.sign(signing_input.encode()))}"


def mint_raw(key: SigningKey, header_segment: str, payload_segment: str) -> str:
    """A token from segments given verbatim, signed correctly by ``key``."""
    signing_input = f"{header_segment}.{payload_segment}"
    return f"{signing_input}.{b64u(key.sign(signing_input.encode()))}"


def mint_hmac(secret: bytes, payload: dict[str, Any], kid: str, alg: str = "HS256") -> str:
    """The algorithm-confusion attack: HMAC keyed with the issuer's public key."""
    signing_input = f"{b64u_json({'alg': alg, 'typ': 'at+jwt', 'kid': kid})}.{b64u_json(payload)}"
    mac = hmac.HMAC(secret, hashes.SHA256())
    mac.update(signing_input.encode())
    return f"{signing_input}.{b64u(mac.finalize())}"
