"""Verifying access tokens (JWT) against the signing keys an issuer publishes (JWKS).

The checks follow RFC 8725 (JWT best current practices). Before anything is
decoded the token's size and shape are checked: three segments of canonical
base64url, no JWE, small and flat JSON. The header may name only an algorithm
pinned for the token's issuer (never ``none`` nor HMAC), must name a known
``kid`` and may not carry ``crit``, ``jku``, ``x5u``, ``jwk`` or ``x5c``. The
issuer's keys come from its JWKS URL, cached; an unknown ``kid`` refreshes the
cache (at most once per ``jwks_min_refresh_seconds``) and a background thread
refreshes it on a schedule, so keys rotate without a restart. PyJWT then checks
the signature and iss/aud/exp/nbf/iat with a bounded skew, and this module adds
a maximum lifetime and refuses ID tokens where an access token is expected.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from mypy_extensions import mypyc_attr

log = logging.getLogger(__name__)

# The only algorithms the sidecar will ever accept; each issuer pins a subset.
SUPPORTED_ALGORITHMS = frozenset({"RS256", "ES256", "EdDSA"})
# Header parameters that would let the token choose its own key, or that ask for
# processing the sidecar does not implement (RFC 8725 3.10, RFC 7515 4.1.11).
FORBIDDEN_HEADERS = ("jku", "x5u", "jwk", "x5c", "crit", "enc", "zip", "b64")
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
# A kid is looked up in a dictionary and nothing else; still, refuse anything that
# could be a path, a URL or a query in some other component that logs or uses it.
_KID = re.compile(r"[A-Za-z0-9_=+-][A-Za-z0-9._=+-]{0,127}")
_ID_TOKEN_CLAIMS = ("nonce", "at_hash", "c_hash")
_KEY_TYPES = {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}
_PRIVATE_KEY_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")
MAX_JWKS_BYTES = 256 * 1024


class TokenError(Exception):
    """A token that must be refused. ``reason`` is a stable code, ``str()`` a sentence."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _UnknownKeyError(Exception):
    def __init__(self, issuer: str, kid: str) -> None:
        super().__init__(kid)
        self.issuer = issuer
        self.kid = kid


# Settings are pickled to the worker processes (sidecar.server), which a compiled
# (troupe.compiled) frozen dataclass refuses: these two stay plain Python classes.
@mypyc_attr(native_class=False)
@dataclass(frozen=True)
class Issuer:
    """One trusted token issuer (an OIDC provider's realm) and how to read its tokens."""

    issuer: str
    jwks_url: str
    audiences: tuple[str, ...]
    algorithms: tuple[str, ...] = ("RS256",)
    # Accepted `typ` header values (compared case-insensitively, "application/" optional).
    # RFC 9068 access tokens say "at+jwt"; Keycloak's say "JWT" (see docs/sidecar.md).
    token_types: tuple[str, ...] = ("at+jwt",)
    # Dotted path of the roles claim, e.g. "roles" or Keycloak's "realm_access.roles".
    roles_claim: str = "roles"
    name_claims: tuple[str, ...] = ("name", "preferred_username")

    def __post_init__(self) -> None:
        unsupported = set(self.algorithms) - SUPPORTED_ALGORITHMS
        if not self.algorithms or unsupported:
            raise ValueError(f"issuer {self.issuer}: algorithms must be among RS256, ES256, EdDSA")
        if not self.audiences:
            raise ValueError(f"issuer {self.issuer}: at least one audience is required")
        url = urlsplit(self.jwks_url)
        loopback = url.hostname in ("127.0.0.1", "::1", "localhost")
        if url.scheme != "https" and not (url.scheme == "http" and loopback):
            raise ValueError(f"issuer {self.issuer}: the JWKS URL must use https")


@mypyc_attr(native_class=False)
@dataclass(frozen=True)
class Policy:
    """Limits that hold for every issuer."""

    leeway_seconds: float = 30.0
    max_lifetime_seconds: float = 3600.0
    max_token_bytes: int = 8192
    max_json_depth: int = 5
    jwks_min_refresh_seconds: float = 10.0
    jwks_refresh_seconds: float = 300.0
    jwks_timeout_seconds: float = 3.0
    # Tokens already verified, by their exact text: a repeat skips parsing and the
    # signature check but not the time checks, and is verified afresh once the JWKS
    # changed (refused if its key is gone). 0: off.
    token_cache_size: int = 10_000


@dataclass(frozen=True)
class Identity:
    """Who a verified token says the caller is."""

    subject: str
    name: str
    roles: tuple[str, ...]
    issuer: str
    expires_at: float
    token_id: str = ""
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def http_fetch(url: str, timeout: float) -> bytes:
    """Downloads a JWKS document; redirects are not followed."""
    with (
        httpx.Client(timeout=timeout, follow_redirects=False) as client,
        client.stream("GET", url, headers={"Accept": "application/json"}) as response,
    ):
        if response.status_code != 200:
            raise OSError(f"JWKS {url} answered {response.status_code}")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_JWKS_BYTES:
                raise OSError(f"JWKS {url} is larger than {MAX_JWKS_BYTES} bytes")
        return bytes(body)


def parse_jwks(document: bytes, algorithms: Iterable[str]) -> dict[str, jwt.PyJWK]:
    """The usable signing keys of a JWKS document by kid. A key that is malformed,
    private, symmetric, not for signatures or for an algorithm the issuer is not
    pinned to is skipped (and logged); the other keys are still served."""
    allowed = set(algorithms)
    data = json.loads(document)
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("a JWKS must be an object with a list of keys")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in data["keys"]:
        try:
            kid, key = _parse_jwk(entry, allowed)
        except Exception as error:  # any malformed key: skip it, keep the others
            log.warning("skipping a JWKS key: %s", error)
            continue
        if kid in keys:
            log.warning("skipping duplicate JWKS kid %r", kid)
            continue
        keys[kid] = key
    return keys


def _parse_jwk(entry: object, allowed: set[str]) -> tuple[str, jwt.PyJWK]:
    if not isinstance(entry, dict):
        raise ValueError("key is not an object")
    kid = entry.get("kid")
    if not isinstance(kid, str) or not _KID.fullmatch(kid) or ".." in kid:
        raise ValueError(f"key has no usable kid: {kid!r}")
    if any(member in entry for member in _PRIVATE_KEY_MEMBERS):
        raise ValueError(f"key {kid} is private or symmetric")
    algorithm = _KEY_TYPES.get(str(entry.get("kty")))
    if algorithm is None:
        raise ValueError(f"key {kid} has unsupported kty {entry.get('kty')!r}")
    if entry.get("use", "sig") != "sig":
        raise ValueError(f"key {kid} is not a signing key")
    if "alg" in entry and entry["alg"] != algorithm:
        raise ValueError(f"key {kid} says alg {entry['alg']!r} for kty {entry['kty']}")
    if algorithm not in allowed:
        raise ValueError(f"key {kid} is for {algorithm}, which this issuer is not pinned to")
    if algorithm == "ES256" and entry.get("crv") != "P-256":
        raise ValueError(f"key {kid}: ES256 needs curve P-256")
    if algorithm == "EdDSA" and entry.get("crv") != "Ed25519":
        raise ValueError(f"key {kid}: EdDSA keys must be Ed25519")
    return kid, jwt.PyJWK(entry, algorithm=algorithm)


class JwksCache:
    """The signing keys of one issuer, fetched from its JWKS URL and kept in memory."""

    def __init__(
        self,
        url: str,
        algorithms: Sequence[str],
        policy: Policy,
        fetch: Callable[[str, float], bytes] = http_fetch,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._algorithms = tuple(algorithms)
        self._policy = policy
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._lock = threading.Lock()
        self._last_attempt = float("-inf")
        self._last_success = float("-inf")

    def key(self, kid: str) -> jwt.PyJWK | None:
        return self._keys.get(kid)

    def kids(self) -> list[str]:
        return sorted(self._keys)

    def refresh(self) -> bool:
        """Fetches the JWKS now; on failure the keys already known are kept."""
        with self._lock:
            return self._refresh_locked()

    def _refresh_locked(self) -> bool:
        self._last_attempt = self._clock()
        try:
            keys = parse_jwks(self._fetch(self.url, self._policy.jwks_timeout_seconds),
                              self._algorithms)
        except Exception as error:
            log.warning("could not refresh JWKS %s: %s", self.url, error)
            return False
        self._keys = keys
        self._last_success = self._clock()
        return True

    def refresh_for_unknown_kid(self, kid: str) -> bool:
        """Refreshes because a token names a kid not in the cache, unless the JWKS was
        fetched less than ``jwks_min_refresh_seconds`` ago (so junk kids cannot make
        the sidecar hammer the issuer). Returns whether the kid is known now."""
        with self._lock:
            if kid in self._keys:
                return True
            if self._clock() - self._last_attempt < self._policy.jwks_min_refresh_seconds:
                return False
            self._refresh_locked()
            return kid in self._keys

    def refresh_if_due(self) -> None:
        if self._clock() - self._last_success >= self._policy.jwks_refresh_seconds:
            self.refresh()


class TokenVerifier:
    """Verifies access tokens of the configured issuers and returns the caller's identity."""

    def __init__(
        self,
        issuers: Sequence[Issuer],
        policy: Policy | None = None,
        fetch: Callable[[str, float], bytes] = http_fetch,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy or Policy()
        self._issuers = {issuer.issuer: issuer for issuer in issuers}
        self._jwks = {
            issuer.issuer: JwksCache(issuer.jwks_url, issuer.algorithms, self.policy, fetch)
            for issuer in issuers
        }
        self._clock = clock
        self._cache: dict[str, _Verified] = {}
        self._cache_lock = threading.Lock()
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    def jwks(self, issuer: str) -> JwksCache:
        return self._jwks[issuer]

    def verify(self, token: str) -> Identity:
        """Verifies a token, fetching the issuer's keys when needed (blocking)."""
        try:
            return self._verify_cached(token)
        except _UnknownKeyError as missing:
            self._jwks[missing.issuer].refresh_for_unknown_kid(missing.kid)
            return self._verify_known(token)

    async def verify_async(self, token: str) -> Identity:
        """Like ``verify``; a JWKS fetch runs in a worker thread, the usual case inline."""
        try:
            return self._verify_cached(token)
        except _UnknownKeyError as missing:
            await asyncio.to_thread(
                self._jwks[missing.issuer].refresh_for_unknown_kid, missing.kid
            )
            return self._verify_known(token)

    def _verify_known(self, token: str) -> Identity:
        try:
            return self._verify_cached(token)
        except _UnknownKeyError as missing:
            message = f"no signing key {missing.kid!r} for this issuer"
            raise TokenError("unknown_key", message) from None

    def start_refresher(self) -> None:
        """Fetches every issuer's keys now, then on the schedule in a daemon thread."""
        for cache in self._jwks.values():
            cache.refresh()
        if self._refresher is None:
            self._refresher = threading.Thread(
                target=self._refresh_loop, name="jwks-refresh", daemon=True
            )
            self._refresher.start()

    def stop_refresher(self) -> None:
        self._stop.set()

    def _refresh_loop(self) -> None:
        period = max(1.0, self.policy.jwks_refresh_seconds / 10)
        while not self._stop.wait(period):
            for cache in self._jwks.values():
                cache.refresh_if_due()

    def cached(self, token: str) -> Identity | None:
        """The identity of a token verified before, if it is valid right now: the key that
        verified it is still its issuer's key and the clock is inside its time window.
        ``None`` otherwise (``verify`` then says why, or verifies it afresh)."""
        entry = self._cache.get(token)
        if (entry is not None and entry.valid_from <= self._clock() < entry.valid_until
                and entry.jwks.key(entry.kid) is entry.key):
            return entry.identity
        return None

    def _verify_cached(self, token: str) -> Identity:
        """Verifies a token once; a repeat of the exact same text is recognized by it and
        skips parsing and the signature, but still gets its time checks, and only while
        the very key object that verified it is still the JWKS's key for its kid (any
        refresh of the JWKS replaces the key objects, so a rotated key cannot vouch for
        a token it did not sign)."""
        identity = self.cached(token)
        if identity is not None:
            return identity
        entry = self._cache.pop(token, None)
        if entry is not None and entry.jwks.key(entry.kid) is entry.key:
            self._check_times(entry.identity.claims)  # says why it is not valid now
        identity, kid, key = self._verify(token)
        if self.policy.token_cache_size > 0:
            window = _window(identity.claims, self.policy.leeway_seconds)
            with self._cache_lock:
                while len(self._cache) >= self.policy.token_cache_size:
                    self._cache.pop(next(iter(self._cache)), None)  # the oldest entry
                self._cache[token] = _Verified(identity, self._jwks[identity.issuer], kid, key,
                                               *window)
        return identity

    def _verify(self, token: str) -> tuple[Identity, str, jwt.PyJWK]:
        policy = self.policy
        if len(token) > policy.max_token_bytes:
            raise TokenError("too_large", f"token is longer than {policy.max_token_bytes} bytes")
        segments = token.split(".")
        if len(segments) == 5:
            raise TokenError("encrypted", "encrypted tokens (JWE) are not accepted")
        if len(segments) != 3:
            raise TokenError("malformed", "a token has three dot-separated segments")
        header = _json_segment(segments[0], "header", policy.max_json_depth)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in SUPPORTED_ALGORITHMS:
            raise TokenError("algorithm", f"algorithm {alg!r} is not accepted")
        for name in FORBIDDEN_HEADERS:
            if name in header:
                raise TokenError("header", f"header parameter {name!r} is not accepted")
        _decode_segment(segments[2], "signature")
        kid = header.get("kid")
        if not isinstance(kid, str) or not _KID.fullmatch(kid) or ".." in kid:
            raise TokenError("kid", "the kid header is missing or not a plain key id")
        claims = _json_segment(segments[1], "payload", policy.max_json_depth)
        iss = claims.get("iss")
        if not isinstance(iss, str):
            raise TokenError("issuer", "the iss claim must be one string")
        issuer = self._issuers.get(iss)
        if issuer is None:
            raise TokenError("issuer", "the token's issuer is not trusted")
        if alg not in issuer.algorithms:
            raise TokenError("algorithm", f"algorithm {alg} is not pinned for this issuer")
        _check_type(header.get("typ"), claims, issuer)
        key = self._jwks[iss].key(kid)
        if key is None:
            raise _UnknownKeyError(iss, kid)
        if key.algorithm_name != alg:
            raise TokenError("algorithm", f"key {kid} is not a {alg} key")
        try:
            jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=list(issuer.audiences),
                issuer=issuer.issuer,
                leeway=policy.leeway_seconds,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("expired", "the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("not_yet_valid", "the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise TokenError("audience", "the token is not meant for this service") from None
        except jwt.InvalidIssuerError:
            raise TokenError("issuer", "the token's issuer is not trusted") from None
        except jwt.InvalidSignatureError:
            raise TokenError("signature", "the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as error:
            raise TokenError("claims", f"the token has no {error.claim!r} claim") from None
        except jwt.InvalidTokenError as error:
            raise TokenError("malformed", f"the token is not valid: {error}") from None
        return self._identity(claims, issuer), kid, key

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        exp, iat = claims["exp"], claims["iat"]
        nbf = claims.get("nbf", iat)
        for name, value in (("exp", exp), ("iat", iat), ("nbf", nbf)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TokenError("claims", f"the {name} claim must be a number")
        valid_from, valid_until = _window(claims, self.policy.leeway_seconds)
        now = self._clock()
        if now >= valid_until:
            raise TokenError("expired", "the token has expired")
        if now < valid_from:
            raise TokenError("not_yet_valid", "the token is not valid yet")
        if exp - min(iat, nbf) > self.policy.max_lifetime_seconds:
            raise TokenError("lifetime", "the token lives longer than this service allows")

    def _identity(self, claims: dict[str, Any], issuer: Issuer) -> Identity:
        self._check_times(claims)
        exp = claims["exp"]
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject or len(subject) > 255:
            raise TokenError("claims", "the sub claim must be a non-empty string")
        aud = claims["aud"]
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            raise TokenError("audience", "the aud claim must be a string or list of strings")
        roles = _claim_path(claims, issuer.roles_claim)
        if roles is None:
            roles = []
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise TokenError("claims", f"the {issuer.roles_claim} claim must be a list of strings")
        name = next(
            (claims[c] for c in issuer.name_claims if isinstance(claims.get(c), str)), subject
        )
        jti = claims.get("jti")
        return Identity(
            subject=subject,
            name=name,
            roles=tuple(roles),
            issuer=issuer.issuer,
            expires_at=float(exp),
            token_id=jti if isinstance(jti, str) else "",
            claims=claims,
        )


@dataclass(frozen=True, slots=True)
class _Verified:
    """A verified token in the cache: who, the key that verified it, and when it is valid."""

    identity: Identity
    jwks: JwksCache
    kid: str
    key: jwt.PyJWK
    valid_from: float
    valid_until: float


def _window(claims: Mapping[str, Any], leeway: float) -> tuple[float, float]:
    """When a token is valid: from its ``iat`` and ``nbf`` (the later) to its ``exp``,
    widened by the leeway for clock skew. The one place both bounds are computed."""
    iat = claims["iat"]
    return max(iat, claims.get("nbf", iat)) - leeway, claims["exp"] + leeway


def _check_type(typ: object, claims: Mapping[str, Any], issuer: Issuer) -> None:
    """Refuses ID tokens, and any token whose ``typ`` is not an access token's (RFC 8725 3.11)."""
    if not isinstance(typ, str):
        raise TokenError("type", "the token has no typ header")
    normalized = typ.lower().removeprefix("application/")
    accepted = {t.lower().removeprefix("application/") for t in issuer.token_types}
    if normalized not in accepted:
        raise TokenError("type", f"a {typ!r} token is not an access token")
    claim_typ = claims.get("typ")
    if any(name in claims for name in _ID_TOKEN_CLAIMS) or (
        isinstance(claim_typ, str) and claim_typ.lower() == "id"
    ):
        raise TokenError("type", "an ID token is not an access token")


def _claim_path(claims: Mapping[str, Any], path: str) -> object:
    value: object = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _decode_segment(segment: str, what: str) -> bytes:
    """Decodes base64url without padding, refusing any non-canonical spelling."""
    if not _SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        raise TokenError("encoding", f"the {what} is not base64url")
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("encoding", f"the {what} is not base64url") from None
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != segment:
        raise TokenError("encoding", f"the {what} is not canonical base64url")
    return data


def _json_segment(segment: str, what: str, max_depth: int) -> dict[str, Any]:
    raw = _decode_segment(segment, what)
    if _json_depth(raw) > max_depth:
        raise TokenError("malformed", f"the {what} is nested too deeply")
    try:
        value = json.loads(raw, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError):
        raise TokenError("malformed", f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenError("malformed", f"the {what} is not a JSON object")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate member {key!r}")
        result[key] = value
    return result


def _json_depth(raw: bytes) -> int:
    """Nesting depth of JSON text, counted without parsing it (strings are skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest
