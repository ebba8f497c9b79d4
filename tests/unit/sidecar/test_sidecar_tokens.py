"""Token verification: valid tokens pass, and every RFC 8725 attack is refused.

Tokens are minted with `cryptography` directly (sidecar_mint), never with PyJWT.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from sidecar.tokens import Issuer, Policy, TokenError, TokenVerifier, parse_jwks
from tests.unit.sidecar.sidecar_mint import (
    AUDIENCE,
    ISSUER,
    SigningKey,
    b64u,
    b64u_json,
    claims,
    header,
    jwks,
    mint,
    mint_hmac,
    mint_raw,
)

JWKS_URL = "https://idp.test/realms/troupe/certs"


@dataclass
class FakeIdp:
    """Serves a JWKS document and counts how often it was fetched."""

    keys: list[SigningKey]
    extra: list[Any] = field(default_factory=list)
    fetches: int = 0

    def fetch(self, url: str, _timeout: float) -> bytes:
        assert url == JWKS_URL
        self.fetches += 1
        return jwks(*self.keys, extra=self.extra)


RSA = SigningKey.generate("RS256", "rsa-1")
EC = SigningKey.generate("ES256", "ec-1")
ED = SigningKey.generate("EdDSA", "ed-1")


def make_verifier(idp: FakeIdp, **policy: Any) -> TokenVerifier:
    issuer = Issuer(
        issuer=ISSUER, jwks_url=JWKS_URL, audiences=(AUDIENCE,),
        algorithms=("RS256", "ES256", "EdDSA"),
    )
    return TokenVerifier([issuer], Policy(**policy), fetch=idp.fetch)


@pytest.fixture
def idp() -> FakeIdp:
    return FakeIdp([RSA, EC, ED])


@pytest.fixture
def verifier(idp: FakeIdp) -> TokenVerifier:
    return make_verifier(idp)


def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenError) as caught:
        verifier.verify(token)
    return caught.value.reason


@pytest.mark.parametrize("key", [RSA, EC, ED], ids=["RS256", "ES256", "EdDSA"])
def test_valid_tokens_of_each_pinned_algorithm_pass(
    verifier: TokenVerifier, key: SigningKey
) -> None:
    identity = verifier.verify(mint(key, claims(roles=["operator", "supervisor"])))
    assert identity.subject == "user-1"
    assert identity.name == "Olga Operator"
    assert identity.roles == ("operator", "supervisor")
    assert identity.issuer == ISSUER


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", " none", "none "])
@pytest.mark.parametrize("signature", ["", "c2ln"])
def test_alg_none_in_any_spelling_is_refused(
    verifier: TokenVerifier, alg: str, signature: str
) -> None:
    token = f"{b64u_json({'alg': alg, 'typ': 'at+jwt', 'kid': 'rsa-1'})}.{b64u_json(claims())}."
    token += signature
    assert refused(verifier, token) in {"algorithm", "encoding", "malformed"}


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_signed_with_the_public_key_is_refused(verifier: TokenVerifier, alg: str) -> None:
    for secret in (RSA.public_pem(), json.dumps(RSA.jwk()).encode(), RSA.jwk()["n"].encode()):
        assert refused(verifier, mint_hmac(secret, claims(), RSA.kid, alg)) == "algorithm"


def test_an_algorithm_the_issuer_is_not_pinned_to_is_refused(idp: FakeIdp) -> None:
    issuer = Issuer(issuer=ISSUER, jwks_url=JWKS_URL, audiences=(AUDIENCE,), algorithms=("RS256",))
    verifier = TokenVerifier([issuer], fetch=idp.fetch)
    assert refused(verifier, mint(EC)) == "algorithm"
    assert verifier.verify(mint(RSA)).subject == "user-1"


def test_a_token_whose_alg_does_not_match_its_key_is_refused(verifier: TokenVerifier) -> None:
    # ES256 header, kid of the RSA key, signed with the EC key.
    assert refused(verifier, mint(EC, kid=RSA.kid)) == "algorithm"


def test_unknown_crit_header_is_refused(verifier: TokenVerifier) -> None:
    assert refused(verifier, mint(RSA, crit=["exp"], exp=1)) == "header"
    assert refused(verifier, mint(RSA, crit=["urn:example:unknown"])) == "header"


@pytest.mark.parametrize("name", ["jku", "x5u", "jwk", "x5c"])
def test_headers_that_bring_their_own_key_are_refused(verifier: TokenVerifier, name: str) -> None:
    attacker = SigningKey.generate("RS256", "attacker")
    values: dict[str, Any] = {
        "jku": "https://evil.test/jwks.json", "x5u": "https://evil.test/cert.pem",
        "jwk": attacker.jwk(), "x5c": ["MIIB"],
    }
    assert refused(verifier, mint(attacker, **{name: values[name], "kid": RSA.kid})) == "header"
    # Even when correctly signed by the trusted key, the header is refused.
    assert refused(verifier, mint(RSA, **{name: values[name]})) == "header"


@pytest.mark.parametrize(
    "kid",
    ["../../../../dev/null", "/etc/passwd", "keys/rsa-1", "rsa-1' OR '1'='1", "rsa-1;--",
     "https://evil.test/key", "rsa-1?x=1", "..", "rsa-1\\..\\x", "", "a" * 200, "rsa 1"],
)
def test_kid_used_as_path_or_query_is_refused(verifier: TokenVerifier, kid: str) -> None:
    assert refused(verifier, mint(RSA, kid=kid)) == "kid"


def test_missing_kid_and_unknown_kid_are_refused(verifier: TokenVerifier) -> None:
    assert refused(verifier, mint(RSA, kid=None)) == "kid"
    assert refused(verifier, mint(SigningKey.generate("RS256", "not-published"))) == "unknown_key"


def test_expired_not_yet_valid_and_future_iat_are_refused(verifier: TokenVerifier) -> None:
    now = int(time.time())
    assert refused(verifier, mint(RSA, claims(iat=now - 400, nbf=now - 400, exp=now - 100))) \
        == "expired"
    assert refused(verifier, mint(RSA, claims(nbf=now + 120, exp=now + 400))) == "not_yet_valid"
    assert refused(verifier, mint(RSA, claims(iat=now + 120, nbf=None, exp=now + 400))) \
        == "not_yet_valid"


def test_clock_skew_within_the_leeway_is_tolerated(verifier: TokenVerifier) -> None:
    now = int(time.time())
    assert verifier.verify(mint(RSA, claims(iat=now - 300, nbf=now - 300, exp=now - 10)))
    assert verifier.verify(mint(RSA, claims(iat=now + 10, nbf=now + 10, exp=now + 300)))


def test_over_long_lived_tokens_are_refused(verifier: TokenVerifier) -> None:
    now = int(time.time())
    assert refused(verifier, mint(RSA, claims(exp=now + 3601))) == "lifetime"
    assert refused(verifier, mint(RSA, claims(iat=now - 86400, nbf=None, exp=now + 60))) \
        == "lifetime"


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "aud", "iss"])
def test_required_claims_must_be_present(verifier: TokenVerifier, claim: str) -> None:
    assert refused(verifier, mint(RSA, claims(**{claim: None}))) in {"claims", "issuer"}


@pytest.mark.parametrize(
    "iss",
    [ISSUER + "x", ISSUER[:-1], ISSUER + "/", "https://idp.test/realms", [ISSUER],
     [ISSUER, "https://evil.test"], "HTTPS://IDP.TEST/realms/troupe", 1],
)
def test_wrong_or_prefix_or_array_issuer_is_refused(verifier: TokenVerifier, iss: Any) -> None:
    assert refused(verifier, mint(RSA, claims(iss=iss))) == "issuer"


@pytest.mark.parametrize("aud", ["other", AUDIENCE + "x", AUDIENCE[:-1], ["other", "x"], [], 7])
def test_wrong_audience_is_refused(verifier: TokenVerifier, aud: Any) -> None:
    assert refused(verifier, mint(RSA, claims(aud=aud))) in {"audience", "malformed", "claims"}


def test_audience_list_including_ours_passes(verifier: TokenVerifier) -> None:
    assert verifier.verify(mint(RSA, claims(aud=["account", AUDIENCE])))


@pytest.mark.parametrize(
    ("typ", "extra"),
    [("JWT", {}), ("at+jwt", {"nonce": "n-1"}), ("at+jwt", {"at_hash": "abc"}),
     ("at+jwt", {"typ": "ID"}), (None, {}), ("JOSE", {}), ("id_token+jwt", {})],
)
def test_id_tokens_and_other_token_types_are_refused(
    verifier: TokenVerifier, typ: str | None, extra: dict[str, Any]
) -> None:
    assert refused(verifier, mint(RSA, claims(**extra), typ=typ)) == "type"


def test_application_prefix_of_the_type_is_accepted(verifier: TokenVerifier) -> None:
    assert verifier.verify(mint(RSA, typ="application/at+jwt"))


def test_a_jwe_is_refused(verifier: TokenVerifier) -> None:
    jwe_header = b64u_json({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": RSA.kid})
    token = f"{jwe_header}.{b64u(b'k' * 256)}.{b64u(b'iv' * 6)}.{b64u(b'c' * 40)}.{b64u(b't' * 16)}"
    assert refused(verifier, token) == "encrypted"
    assert refused(verifier, mint(RSA, enc="A256GCM")) == "header"


def test_non_canonical_base64url_is_refused(verifier: TokenVerifier) -> None:
    head = b64u_json(header(RSA))
    body = b64u_json(claims())
    assert verifier.verify(mint_raw(RSA, head, body))
    # Padding, and the standard alphabet, are not base64url as JWS uses it.
    assert refused(verifier, mint_raw(RSA, head + "=" * (-len(head) % 4 or 4), body)) == "encoding"
    std_body = base64.b64encode(json.dumps(claims(name="?>?>")).encode()).decode().rstrip("=")
    assert "+" in std_body or "/" in std_body
    assert refused(verifier, mint_raw(RSA, head, std_body)) == "encoding"
    # Same bytes, different spelling: the unused low bits of the last character set.
    body = next(
        b for b in (b64u_json(claims(sub="u" * n)) for n in range(1, 4)) if len(b) % 4 in (2, 3)
    )
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = body[:-1] + alphabet[alphabet.index(body[-1]) | 1]
    assert twin != body
    assert base64.urlsafe_b64decode(twin + "==") == base64.urlsafe_b64decode(body + "==")
    assert refused(verifier, mint_raw(RSA, head, twin)) == "encoding"


def test_huge_and_deeply_nested_tokens_are_refused_before_decoding(verifier: TokenVerifier) -> None:
    huge = mint(RSA, claims(padding="x" * 100_000))
    assert refused(verifier, huge) == "too_large"
    assert refused(verifier, "a" * 1_000_000) == "too_large"
    nested: Any = "deep"
    for _ in range(50):
        nested = [nested]
    assert refused(verifier, mint(RSA, claims(nested=nested))) == "malformed"
    # A nesting bomb that would blow the parser's recursion stays a clean refusal.
    bomb = b64u(b"[" * 2500 + b"]" * 2500)
    assert refused(verifier, mint_raw(RSA, b64u_json(header(RSA)), bomb)) == "malformed"


def test_duplicate_claims_are_refused(verifier: TokenVerifier) -> None:
    body = json.dumps(claims()).rstrip("}") + ', "sub": "admin"}'
    assert refused(verifier, mint_raw(RSA, b64u_json(header(RSA)), b64u(body.encode()))) \
        == "malformed"


def test_a_tampered_signature_or_payload_is_refused(verifier: TokenVerifier) -> None:
    token = mint(RSA)
    head, _, signature = token.split(".")
    forged_body = b64u_json(claims(roles=["supervisor"]))
    assert refused(verifier, f"{head}.{forged_body}.{signature}") == "signature"
    other = SigningKey.generate("RS256", RSA.kid)
    assert refused(verifier, mint(other)) == "signature"


def test_garbage_is_refused(verifier: TokenVerifier) -> None:
    for token in ["", "abc", "a.b", "a.b.c.d", "....", "eyJ.eyJ.", "\u00e9.\u00e9.\u00e9"]:
        assert refused(verifier, token) in {"malformed", "encoding", "encrypted"}


def test_roles_claim_path_and_type(idp: FakeIdp) -> None:
    issuer = Issuer(issuer=ISSUER, jwks_url=JWKS_URL, audiences=(AUDIENCE,),
                    roles_claim="realm_access.roles", token_types=("JWT",))
    verifier = TokenVerifier([issuer], fetch=idp.fetch)
    token = mint(RSA, claims(roles=None, realm_access={"roles": ["auditor"]}, typ="Bearer"),
                 typ="JWT")
    assert verifier.verify(token).roles == ("auditor",)
    bad = mint(RSA, claims(roles=None, realm_access={"roles": "auditor"}), typ="JWT")
    assert refused(verifier, bad) == "claims"
    assert verifier.verify(mint(RSA, claims(roles=None), typ="JWT")).roles == ()


def test_a_jwks_with_malformed_keys_still_serves_the_others() -> None:
    extra = [
        {"kty": "RSA", "kid": "broken-n", "n": "!!!", "e": "AQAB"},
        {"kty": "RSA", "kid": "no-e", "n": RSA.jwk()["n"]},
        {"kty": "EC", "kid": "bad-curve", "crv": "P-384", "x": "AA", "y": "AA"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {**RSA.jwk(), "kid": "private", "d": "AAAA"},
        {**RSA.jwk(), "kid": "enc", "use": "enc"},
        {**RSA.jwk(), "kid": "../x"},
        "not a key",
        {"kid": 5},
    ]
    idp = FakeIdp([RSA, EC], extra=extra)
    verifier = make_verifier(idp)
    assert verifier.verify(mint(RSA)).subject == "user-1"
    assert verifier.verify(mint(EC)).subject == "user-1"
    assert verifier.jwks(ISSUER).kids() == ["ec-1", "rsa-1"]
    keys = parse_jwks(jwks(RSA, extra=extra), ["RS256"])
    assert list(keys) == ["rsa-1"]


def test_unknown_kid_refreshes_rate_limited_and_keys_rotate(idp: FakeIdp) -> None:
    verifier = make_verifier(idp, jwks_min_refresh_seconds=60)
    assert verifier.verify(mint(RSA))
    assert idp.fetches == 1
    for _ in range(20):
        verifier.verify(mint(RSA))
    assert idp.fetches == 1  # cached
    # Junk kids inside the rate limit do not reach the issuer again.
    for n in range(20):
        assert refused(verifier, mint(SigningKey.generate("EdDSA", f"junk-{n}"))) == "unknown_key"
    assert idp.fetches == 1


def test_rotation_picks_up_a_new_key_on_first_use(idp: FakeIdp) -> None:
    verifier = make_verifier(idp, jwks_min_refresh_seconds=0)
    assert verifier.verify(mint(RSA))
    new = SigningKey.generate("RS256", "rsa-2")
    idp.keys = [RSA, new]
    assert verifier.verify(mint(new)).subject == "user-1"
    assert verifier.verify(mint(RSA)).subject == "user-1"
    idp.keys = [new]  # the old key retired
    verifier.jwks(ISSUER).refresh()
    assert refused(verifier, mint(RSA)) == "unknown_key"


def test_scheduled_refresh_and_failed_fetch_keep_known_keys(idp: FakeIdp) -> None:
    verifier = make_verifier(idp, jwks_refresh_seconds=0)
    cache = verifier.jwks(ISSUER)
    cache.refresh_if_due()
    assert idp.fetches == 1

    def failing(_url: str, _timeout: float) -> bytes:
        raise OSError("issuer down")

    cache._fetch = failing
    assert cache.refresh() is False
    assert verifier.verify(mint(RSA)).subject == "user-1"


def test_issuer_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="algorithms"):
        Issuer(issuer=ISSUER, jwks_url=JWKS_URL, audiences=("a",), algorithms=("HS256",))
    with pytest.raises(ValueError, match="https"):
        Issuer(issuer=ISSUER, jwks_url="http://idp.test/jwks", audiences=("a",))
    with pytest.raises(ValueError, match="audience"):
        Issuer(issuer=ISSUER, jwks_url=JWKS_URL, audiences=())
    assert Issuer(issuer=ISSUER, jwks_url="http://127.0.0.1:1/jwks", audiences=("a",))


def test_cached_tokens_still_expire_and_lose_withdrawn_keys(idp: FakeIdp) -> None:
    now = [time.time()]
    issuer = Issuer(issuer=ISSUER, jwks_url=JWKS_URL, audiences=(AUDIENCE,))
    verifier = TokenVerifier([issuer], Policy(jwks_min_refresh_seconds=0), fetch=idp.fetch,
                             clock=lambda: now[0])
    token = mint(RSA, claims(exp=int(now[0]) + 60))
    first = verifier.verify(token)
    assert verifier.verify(token) is first  # served from the cache
    now[0] += 200
    with pytest.raises(TokenError, match="expired"):
        verifier.verify(token)
    now[0] -= 200
    idp.keys = [EC]
    verifier.jwks(ISSUER).refresh()
    with pytest.raises(TokenError) as caught:
        verifier.verify(token)
    assert caught.value.reason == "unknown_key"


def test_the_token_cache_is_bounded(idp: FakeIdp) -> None:
    verifier = make_verifier(idp, token_cache_size=3)
    tokens = [mint(RSA, claims(sub=f"user-{n}")) for n in range(10)]
    for token in tokens:
        verifier.verify(token)
    assert len(verifier._cache) == 3
    assert set(verifier._cache) == set(tokens[-3:])


def test_a_cached_token_is_verified_again_when_its_kid_gets_another_key(idp: FakeIdp) -> None:
    verifier = make_verifier(idp, jwks_min_refresh_seconds=0)
    token = mint(RSA, claims())
    verifier.verify(token)
    idp.keys = [SigningKey.generate("RS256", "rsa-1")]  # same kid, other key material
    verifier.jwks(ISSUER).refresh()
    with pytest.raises(TokenError) as caught:
        verifier.verify(token)
    assert caught.value.reason == "signature"
    assert token not in verifier._cache


def test_cached_answers_within_the_tokens_window_and_only_for_its_key(idp: FakeIdp) -> None:
    """``cached`` is the fast path's check: the same window as ``verify``'s time checks
    (leeway included, to the boundary), and nothing once the key set changed."""
    start = int(time.time())  # PyJWT checks the first verification against the real clock
    now = [float(start)]
    issuer = Issuer(issuer=ISSUER, jwks_url=JWKS_URL, audiences=(AUDIENCE,))
    verifier = TokenVerifier([issuer], Policy(leeway_seconds=30, jwks_min_refresh_seconds=0),
                             fetch=idp.fetch, clock=lambda: now[0])
    token = mint(RSA, claims(iat=start, nbf=start, exp=start + 60))
    assert verifier.cached(token) is None  # never verified
    identity = verifier.verify(token)
    for moment, valid in ((start - 30, True), (start - 30.001, False),
                          (start + 60 + 29.999, True), (start + 60 + 30, False)):
        now[0] = moment
        assert (verifier.cached(token) is identity) is valid, moment
        if not valid:  # verify agrees, and says why
            with pytest.raises(TokenError, match=r"expired|not valid yet"):
                verifier.verify(token)
            now[0] = start
            identity = verifier.verify(token)
    idp.keys = [RSA]
    verifier.jwks(ISSUER).refresh()  # the same key, but a new key set
    assert verifier.cached(token) is None
