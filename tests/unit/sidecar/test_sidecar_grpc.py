"""The gRPC server interceptor: same verification and rules as the HTTP proxy."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from contracts.audit.v1.audit_pb2 import (
    AUDIT_KIND_GRPC,
    AUDIT_OUTCOME_ALLOWED,
    AUDIT_OUTCOME_DENIED_FORBIDDEN,
    AUDIT_OUTCOME_DENIED_UNAUTHENTICATED,
    AuditEntry,
    AuditRecord,
)
from sidecar.audit import AuditUnavailableError, Chain, entry_of
from sidecar.grpc_auth import AuthInterceptor, current_identity
from sidecar.rules import Rules
from sidecar.tokens import Issuer, TokenVerifier
from tests.unit.sidecar.sidecar_mint import AUDIENCE, ISSUER, SigningKey, claims, jwks, mint

KEY = SigningKey.generate("EdDSA", "ed-grpc")
RULES = Rules.from_yaml("""
service: tickets
rules:
  - {roles: [operator, auditor], methods: [GRPC], paths: ["/test.Tickets/Get"], read_only: true}
  - {roles: [operator, auditor], methods: [GRPC], paths: ["/test.Tickets/List"], read_only: true}
  - {roles: [operator], methods: [GRPC], paths: ["/test.Tickets/Resolve"]}
""")


class Audit:
    def __init__(self) -> None:
        self.chain = Chain("grpc-0")
        self.records: list[AuditRecord] = []
        self.failing = False

    def write_blocking(self, entry: AuditEntry) -> AuditRecord:
        if self.failing:
            raise AuditUnavailableError("down")
        record = self.chain.seal(entry.SerializeToString())
        self.records.append(record)
        return record


def whoami(_request: bytes, _context: Any) -> bytes:
    identity = current_identity.get()
    if identity is None:
        return b"anonymous"
    return f"{identity.subject}:{','.join(identity.roles)}".encode()


def listing(_request: bytes, _context: Any) -> Iterator[bytes]:
    for n in range(3):
        identity = current_identity.get()
        yield f"{n}:{identity.subject if identity else '-'}".encode()


@pytest.fixture(scope="module")
def channel_and_audit() -> Iterator[tuple[grpc.Channel, Audit]]:
    audit = Audit()
    issuer = Issuer(issuer=ISSUER, jwks_url="https://idp.test/jwks", audiences=(AUDIENCE,),
                    algorithms=("EdDSA",))
    verifier = TokenVerifier([issuer], fetch=lambda _url, _timeout: jwks(KEY))
    server = grpc.server(futures.ThreadPoolExecutor(4),
                         interceptors=[AuthInterceptor(verifier, RULES, audit)])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("test.Tickets", {
        "Get": grpc.unary_unary_rpc_method_handler(whoami),
        "Resolve": grpc.unary_unary_rpc_method_handler(whoami),
        "Delete": grpc.unary_unary_rpc_method_handler(whoami),
        "List": grpc.unary_stream_rpc_method_handler(listing),
    })])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel, audit
    finally:
        channel.close()
        server.stop(None)


def call(channel: grpc.Channel, method: str, token: str | None, **metadata: str) -> bytes:
    pairs = list(metadata.items())
    if token is not None:
        pairs.append(("authorization", f"Bearer {token}"))
    stub = channel.unary_unary(f"/test.Tickets/{method}")
    result: bytes = stub(b"", metadata=pairs, timeout=5)
    return result


def status_of(channel: grpc.Channel, method: str, token: str | None) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call(channel, method, token)
    code: grpc.StatusCode = caught.value.code()
    return code


def test_allowed_reads_run_with_the_identity_and_are_not_audited(
    channel_and_audit: tuple[grpc.Channel, Audit],
) -> None:
    channel, audit = channel_and_audit
    audit.records.clear()
    token = mint(KEY, claims(roles=["auditor"]))
    assert call(channel, "Get", token) == b"user-1:auditor"
    stream = channel.unary_stream("/test.Tickets/List")(
        b"", metadata=[("authorization", f"Bearer {token}")], timeout=5)
    assert list(stream) == [b"0:user-1", b"1:user-1", b"2:user-1"]
    assert audit.records == []


def test_changes_are_audited_before_the_servicer_runs(
    channel_and_audit: tuple[grpc.Channel, Audit],
) -> None:
    channel, audit = channel_and_audit
    audit.records.clear()
    assert call(channel, "Resolve", mint(KEY), **{"x-request-id": "r-1"}) == b"user-1:operator"
    [record] = audit.records
    entry = entry_of(record)
    assert (entry.kind, entry.outcome, entry.path) == (
        AUDIT_KIND_GRPC, AUDIT_OUTCOME_ALLOWED, "/test.Tickets/Resolve")
    assert entry.request_id == "r-1"
    audit.failing = True
    try:
        assert status_of(channel, "Resolve", mint(KEY)) == grpc.StatusCode.UNAVAILABLE
    finally:
        audit.failing = False


def test_refusals(channel_and_audit: tuple[grpc.Channel, Audit]) -> None:
    channel, audit = channel_and_audit
    audit.records.clear()
    assert status_of(channel, "Get", None) == grpc.StatusCode.UNAUTHENTICATED
    assert status_of(channel, "Get", "x.y.z") == grpc.StatusCode.UNAUTHENTICATED
    expired = mint(KEY, claims(exp=10, iat=0, nbf=0))
    assert status_of(channel, "Get", expired) == grpc.StatusCode.UNAUTHENTICATED
    assert status_of(channel, "Resolve", mint(KEY, claims(roles=["auditor"]))) \
        == grpc.StatusCode.PERMISSION_DENIED
    assert status_of(channel, "Delete", mint(KEY)) == grpc.StatusCode.PERMISSION_DENIED
    outcomes = [entry_of(r).outcome for r in audit.records]
    assert outcomes == [AUDIT_OUTCOME_DENIED_UNAUTHENTICATED] * 3 + [
        AUDIT_OUTCOME_DENIED_FORBIDDEN] * 2
