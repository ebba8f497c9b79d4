"""The sidecar's checks as a gRPC server interceptor, for gRPC calls that carry a user
token (``authorization: Bearer <token>`` metadata).

Rules use the method ``GRPC`` and the full method name as the path
(``/contracts.customer.v1.CustomerService/GetCustomer``). A refused call ends
with UNAUTHENTICATED or PERMISSION_DENIED before the servicer runs. An allowed
call runs with the verified identity in ``current_identity``; when an audit log is
given, refusals and every call not allowed by a ``read_only`` rule are audited, and
the servicer runs only once the record is durable (UNAVAILABLE otherwise).
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import grpc

from contracts.audit.v1.audit_pb2 import (
    AUDIT_KIND_GRPC,
    AUDIT_OUTCOME_ALLOWED,
    AUDIT_OUTCOME_DENIED_FORBIDDEN,
    AUDIT_OUTCOME_DENIED_UNAUTHENTICATED,
    AuditActor,
    AuditEntry,
    AuditOutcome,
    AuditRecord,
)
from sidecar.audit import AuditUnavailableError
from sidecar.rules import PathError, Rules, normalize_path
from sidecar.tokens import Identity, TokenError, TokenVerifier

current_identity: contextvars.ContextVar[Identity | None] = contextvars.ContextVar(
    "current_identity", default=None
)


class BlockingAuditLog(Protocol):
    def write_blocking(self, entry: AuditEntry) -> AuditRecord: ...


class _Denied(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, outcome: AuditOutcome) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.outcome = outcome


class AuthInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, verifier: TokenVerifier, rules: Rules,
                 audit: BlockingAuditLog | None = None) -> None:
        self._verifier = verifier
        self._rules = rules
        self._audit = audit

    def intercept_service(
        self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method: str = details.method
        metadata = [(k.lower(), v) for k, v in details.invocation_metadata or ()]
        entry = AuditEntry(service=self._rules.service, kind=AUDIT_KIND_GRPC, method="GRPC",
                           path=method, request_id=_value(metadata, "x-request-id"),
                           correlation_id=_value(metadata, "x-correlation-id"))
        entry.occurred_at.GetCurrentTime()
        entry.request_id = entry.request_id or uuid.uuid4().hex
        entry.correlation_id = entry.correlation_id or entry.request_id
        try:
            identity, read_only = self._check(method, metadata, entry)
        except _Denied as denied:
            entry.outcome, entry.reason = denied.outcome, denied.message
            self._write(entry, required=False)
            return _replace(handler, _aborting(denied.code, denied.message))
        if not read_only:
            entry.outcome = AUDIT_OUTCOME_ALLOWED
            if not self._write(entry, required=True):
                return _replace(handler, _aborting(grpc.StatusCode.UNAVAILABLE,
                                                   "the audit log is unavailable"))
        return _replace(handler, _with_identity(identity))

    def _check(self, method: str, metadata: list[tuple[str, Any]],
               entry: AuditEntry) -> tuple[Identity, bool]:
        authorization = [v for k, v in metadata if k == "authorization"]
        if len(authorization) != 1:
            raise _Denied(grpc.StatusCode.UNAUTHENTICATED, "a bearer token is required",
                          AUDIT_OUTCOME_DENIED_UNAUTHENTICATED)
        scheme, _, token = str(authorization[0]).partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Denied(grpc.StatusCode.UNAUTHENTICATED, "authorization must be 'Bearer <token>'",
                          AUDIT_OUTCOME_DENIED_UNAUTHENTICATED)
        try:
            identity = self._verifier.verify(token.strip())
        except TokenError as error:
            raise _Denied(grpc.StatusCode.UNAUTHENTICATED, str(error),
                          AUDIT_OUTCOME_DENIED_UNAUTHENTICATED) from None
        entry.actor.CopyFrom(AuditActor(subject=identity.subject, name=identity.name,
                                        roles=identity.roles, issuer=identity.issuer))
        try:
            path = normalize_path(method)
        except PathError as error:
            raise _Denied(grpc.StatusCode.PERMISSION_DENIED, str(error),
                          AUDIT_OUTCOME_DENIED_FORBIDDEN) from None
        decision = self._rules.authorize("GRPC", path, identity.roles)
        if not decision.allowed or decision.rule is None:
            raise _Denied(grpc.StatusCode.PERMISSION_DENIED,
                          f"no rule allows {method} for roles {', '.join(identity.roles)}",
                          AUDIT_OUTCOME_DENIED_FORBIDDEN)
        entry.rule = decision.rule.name
        entry.entity_id = decision.entity_id
        return identity, decision.rule.read_only

    def _write(self, entry: AuditEntry, required: bool) -> bool:
        if self._audit is None:
            return True
        try:
            self._audit.write_blocking(entry)
        except AuditUnavailableError:
            return not required
        return True


def _value(metadata: list[tuple[str, Any]], name: str) -> str:
    return next((str(v)[:128] for k, v in metadata if k == name), "")


Behaviour = Callable[[Any, grpc.ServicerContext], Any]


def _aborting(code: grpc.StatusCode, message: str) -> Callable[[Behaviour], Behaviour]:
    def wrap(_behaviour: Behaviour) -> Behaviour:
        def abort(_request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(code, message)

        return abort

    return wrap


def _with_identity(identity: Identity) -> Callable[[Behaviour], Behaviour]:
    def wrap(behaviour: Behaviour) -> Behaviour:
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            token = current_identity.set(identity)
            try:
                result = behaviour(request, context)
            finally:
                current_identity.reset(token)
            if isinstance(result, Iterator):
                return _iterate_as(identity, result)
            return result

        return run

    return wrap


def _iterate_as(identity: Identity, items: Iterator[Any]) -> Iterator[Any]:
    while True:
        token = current_identity.set(identity)
        try:
            item = next(items)
        except StopIteration:
            return
        finally:
            current_identity.reset(token)
        yield item


def _replace(handler: Any, wrap: Callable[[Behaviour], Behaviour]) -> Any:
    """A method handler of the same kind as ``handler`` whose behaviour is wrapped."""
    kinds = (
        ("unary_unary", grpc.unary_unary_rpc_method_handler),
        ("unary_stream", grpc.unary_stream_rpc_method_handler),
        ("stream_unary", grpc.stream_unary_rpc_method_handler),
        ("stream_stream", grpc.stream_stream_rpc_method_handler),
    )
    for attribute, make in kinds:
        behaviour = getattr(handler, attribute)
        if behaviour is not None:
            return make(wrap(behaviour), request_deserializer=handler.request_deserializer,
                        response_serializer=handler.response_serializer)
    raise ValueError("unknown gRPC method handler")
