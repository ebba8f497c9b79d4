import datetime

from contracts.events.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Presence(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRESENCE_UNSPECIFIED: _ClassVar[Presence]
    PRESENCE_OFFLINE: _ClassVar[Presence]
    PRESENCE_AVAILABLE: _ClassVar[Presence]
    PRESENCE_BUSY: _ClassVar[Presence]
    PRESENCE_WRAP_UP: _ClassVar[Presence]
    PRESENCE_BREAK: _ClassVar[Presence]
PRESENCE_UNSPECIFIED: Presence
PRESENCE_OFFLINE: Presence
PRESENCE_AVAILABLE: Presence
PRESENCE_BUSY: Presence
PRESENCE_WRAP_UP: Presence
PRESENCE_BREAK: Presence

class Operator(_message.Message):
    __slots__ = ("operator_id", "name", "site", "skills", "roles", "presence", "presence_since", "current_interaction_id", "wrap_up_until", "last_interaction_id", "last_refused_interaction_id", "break_reason")
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_SINCE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    WRAP_UP_UNTIL_FIELD_NUMBER: _ClassVar[int]
    LAST_INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_REFUSED_INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    BREAK_REASON_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    name: str
    site: str
    skills: _containers.RepeatedScalarFieldContainer[str]
    roles: _containers.RepeatedScalarFieldContainer[str]
    presence: Presence
    presence_since: _timestamp_pb2.Timestamp
    current_interaction_id: str
    wrap_up_until: _timestamp_pb2.Timestamp
    last_interaction_id: str
    last_refused_interaction_id: str
    break_reason: str
    def __init__(self, operator_id: _Optional[str] = ..., name: _Optional[str] = ..., site: _Optional[str] = ..., skills: _Optional[_Iterable[str]] = ..., roles: _Optional[_Iterable[str]] = ..., presence: _Optional[_Union[Presence, str]] = ..., presence_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., current_interaction_id: _Optional[str] = ..., wrap_up_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_interaction_id: _Optional[str] = ..., last_refused_interaction_id: _Optional[str] = ..., break_reason: _Optional[str] = ...) -> None: ...

class RegisterOperatorRequest(_message.Message):
    __slots__ = ("operator_id", "name", "site", "skills", "roles")
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    name: str
    site: str
    skills: _containers.RepeatedScalarFieldContainer[str]
    roles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, operator_id: _Optional[str] = ..., name: _Optional[str] = ..., site: _Optional[str] = ..., skills: _Optional[_Iterable[str]] = ..., roles: _Optional[_Iterable[str]] = ...) -> None: ...

class RegisterOperatorResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _envelope_pb2.ChangeResult
    def __init__(self, result: _Optional[_Union[_envelope_pb2.ChangeResult, _Mapping]] = ...) -> None: ...

class SetPresenceRequest(_message.Message):
    __slots__ = ("operator_id", "presence", "reason")
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    presence: Presence
    reason: str
    def __init__(self, operator_id: _Optional[str] = ..., presence: _Optional[_Union[Presence, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class SetPresenceResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _envelope_pb2.ChangeResult
    def __init__(self, result: _Optional[_Union[_envelope_pb2.ChangeResult, _Mapping]] = ...) -> None: ...

class ReserveOperatorRequest(_message.Message):
    __slots__ = ("operator_id", "interaction_id")
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    interaction_id: str
    def __init__(self, operator_id: _Optional[str] = ..., interaction_id: _Optional[str] = ...) -> None: ...

class StartWrapUpRequest(_message.Message):
    __slots__ = ("operator_id", "interaction_id")
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    interaction_id: str
    def __init__(self, operator_id: _Optional[str] = ..., interaction_id: _Optional[str] = ...) -> None: ...

class EndWrapUpRequest(_message.Message):
    __slots__ = ("operator_id",)
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    def __init__(self, operator_id: _Optional[str] = ...) -> None: ...

class ReleaseOperatorRequest(_message.Message):
    __slots__ = ("operator_id", "interaction_id", "missed")
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    MISSED_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    interaction_id: str
    missed: bool
    def __init__(self, operator_id: _Optional[str] = ..., interaction_id: _Optional[str] = ..., missed: _Optional[bool] = ...) -> None: ...

class GetOperatorRequest(_message.Message):
    __slots__ = ("operator_id", "min_version")
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    min_version: int
    def __init__(self, operator_id: _Optional[str] = ..., min_version: _Optional[int] = ...) -> None: ...

class GetOperatorResponse(_message.Message):
    __slots__ = ("operator", "version")
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    operator: Operator
    version: int
    def __init__(self, operator: _Optional[_Union[Operator, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...

class ListOperatorsRequest(_message.Message):
    __slots__ = ("site",)
    SITE_FIELD_NUMBER: _ClassVar[int]
    site: str
    def __init__(self, site: _Optional[str] = ...) -> None: ...

class ListOperatorsResponse(_message.Message):
    __slots__ = ("operators",)
    OPERATORS_FIELD_NUMBER: _ClassVar[int]
    operators: _containers.RepeatedCompositeFieldContainer[Operator]
    def __init__(self, operators: _Optional[_Iterable[_Union[Operator, _Mapping]]] = ...) -> None: ...
