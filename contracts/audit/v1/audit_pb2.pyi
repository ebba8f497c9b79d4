import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_KIND_UNSPECIFIED: _ClassVar[AuditKind]
    AUDIT_KIND_HTTP: _ClassVar[AuditKind]
    AUDIT_KIND_WEBSOCKET_MESSAGE: _ClassVar[AuditKind]
    AUDIT_KIND_WEBSOCKET_CONNECT: _ClassVar[AuditKind]
    AUDIT_KIND_GRPC: _ClassVar[AuditKind]

class AuditOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_OUTCOME_UNSPECIFIED: _ClassVar[AuditOutcome]
    AUDIT_OUTCOME_ALLOWED: _ClassVar[AuditOutcome]
    AUDIT_OUTCOME_DENIED_UNAUTHENTICATED: _ClassVar[AuditOutcome]
    AUDIT_OUTCOME_DENIED_FORBIDDEN: _ClassVar[AuditOutcome]
    AUDIT_OUTCOME_REJECTED: _ClassVar[AuditOutcome]
AUDIT_KIND_UNSPECIFIED: AuditKind
AUDIT_KIND_HTTP: AuditKind
AUDIT_KIND_WEBSOCKET_MESSAGE: AuditKind
AUDIT_KIND_WEBSOCKET_CONNECT: AuditKind
AUDIT_KIND_GRPC: AuditKind
AUDIT_OUTCOME_UNSPECIFIED: AuditOutcome
AUDIT_OUTCOME_ALLOWED: AuditOutcome
AUDIT_OUTCOME_DENIED_UNAUTHENTICATED: AuditOutcome
AUDIT_OUTCOME_DENIED_FORBIDDEN: AuditOutcome
AUDIT_OUTCOME_REJECTED: AuditOutcome

class AuditRecord(_message.Message):
    __slots__ = ("instance_id", "sequence", "previous_hash", "hash", "entry")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    sequence: int
    previous_hash: bytes
    hash: bytes
    entry: bytes
    def __init__(self, instance_id: _Optional[str] = ..., sequence: _Optional[int] = ..., previous_hash: _Optional[bytes] = ..., hash: _Optional[bytes] = ..., entry: _Optional[bytes] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("occurred_at", "actor", "service", "kind", "method", "path", "entity_id", "outcome", "reason", "status_code", "request_id", "correlation_id", "client_address", "user_agent", "rule")
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    occurred_at: _timestamp_pb2.Timestamp
    actor: AuditActor
    service: str
    kind: AuditKind
    method: str
    path: str
    entity_id: str
    outcome: AuditOutcome
    reason: str
    status_code: int
    request_id: str
    correlation_id: str
    client_address: str
    user_agent: str
    rule: str
    def __init__(self, occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[_Union[AuditActor, _Mapping]] = ..., service: _Optional[str] = ..., kind: _Optional[_Union[AuditKind, str]] = ..., method: _Optional[str] = ..., path: _Optional[str] = ..., entity_id: _Optional[str] = ..., outcome: _Optional[_Union[AuditOutcome, str]] = ..., reason: _Optional[str] = ..., status_code: _Optional[int] = ..., request_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., client_address: _Optional[str] = ..., user_agent: _Optional[str] = ..., rule: _Optional[str] = ...) -> None: ...

class AuditActor(_message.Message):
    __slots__ = ("subject", "name", "roles", "issuer")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    subject: str
    name: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    issuer: str
    def __init__(self, subject: _Optional[str] = ..., name: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., issuer: _Optional[str] = ...) -> None: ...
