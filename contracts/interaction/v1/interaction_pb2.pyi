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

class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KIND_UNSPECIFIED: _ClassVar[Kind]
    KIND_CALL: _ClassVar[Kind]
    KIND_CHAT: _ClassVar[Kind]

class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATE_UNSPECIFIED: _ClassVar[State]
    STATE_RINGING: _ClassVar[State]
    STATE_QUEUED: _ClassVar[State]
    STATE_ASSIGNED: _ClassVar[State]
    STATE_ACTIVE: _ClassVar[State]
    STATE_WRAP_UP: _ClassVar[State]
    STATE_CLOSED: _ClassVar[State]
    STATE_ABANDONED: _ClassVar[State]
KIND_UNSPECIFIED: Kind
KIND_CALL: Kind
KIND_CHAT: Kind
STATE_UNSPECIFIED: State
STATE_RINGING: State
STATE_QUEUED: State
STATE_ASSIGNED: State
STATE_ACTIVE: State
STATE_WRAP_UP: State
STATE_CLOSED: State
STATE_ABANDONED: State

class Interaction(_message.Message):
    __slots__ = ("interaction_id", "kind", "platform", "external_id", "site", "skill", "caller", "customer_id", "operator_id", "state", "received_at", "assigned_at", "answered_at", "ended_at", "missed_by")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    SKILL_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_AT_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    MISSED_BY_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    kind: Kind
    platform: str
    external_id: str
    site: str
    skill: str
    caller: str
    customer_id: str
    operator_id: str
    state: State
    received_at: _timestamp_pb2.Timestamp
    assigned_at: _timestamp_pb2.Timestamp
    answered_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    missed_by: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, interaction_id: _Optional[str] = ..., kind: _Optional[_Union[Kind, str]] = ..., platform: _Optional[str] = ..., external_id: _Optional[str] = ..., site: _Optional[str] = ..., skill: _Optional[str] = ..., caller: _Optional[str] = ..., customer_id: _Optional[str] = ..., operator_id: _Optional[str] = ..., state: _Optional[_Union[State, str]] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., assigned_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., answered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., missed_by: _Optional[_Iterable[str]] = ...) -> None: ...

class ReceiveInteractionRequest(_message.Message):
    __slots__ = ("interaction_id", "kind", "platform", "external_id", "site", "skill", "caller", "received_at")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    SKILL_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    kind: Kind
    platform: str
    external_id: str
    site: str
    skill: str
    caller: str
    received_at: _timestamp_pb2.Timestamp
    def __init__(self, interaction_id: _Optional[str] = ..., kind: _Optional[_Union[Kind, str]] = ..., platform: _Optional[str] = ..., external_id: _Optional[str] = ..., site: _Optional[str] = ..., skill: _Optional[str] = ..., caller: _Optional[str] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AttachCustomerRequest(_message.Message):
    __slots__ = ("interaction_id", "customer_id")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    customer_id: str
    def __init__(self, interaction_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class QueueInteractionRequest(_message.Message):
    __slots__ = ("interaction_id",)
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    def __init__(self, interaction_id: _Optional[str] = ...) -> None: ...

class AssignOperatorRequest(_message.Message):
    __slots__ = ("interaction_id", "operator_id")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    operator_id: str
    def __init__(self, interaction_id: _Optional[str] = ..., operator_id: _Optional[str] = ...) -> None: ...

class ReturnToQueueRequest(_message.Message):
    __slots__ = ("interaction_id", "operator_id")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    operator_id: str
    def __init__(self, interaction_id: _Optional[str] = ..., operator_id: _Optional[str] = ...) -> None: ...

class AnswerInteractionRequest(_message.Message):
    __slots__ = ("interaction_id", "operator_id", "answered_at")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_AT_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    operator_id: str
    answered_at: _timestamp_pb2.Timestamp
    def __init__(self, interaction_id: _Optional[str] = ..., operator_id: _Optional[str] = ..., answered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AnswerInteractionResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _envelope_pb2.ChangeResult
    def __init__(self, result: _Optional[_Union[_envelope_pb2.ChangeResult, _Mapping]] = ...) -> None: ...

class EndInteractionRequest(_message.Message):
    __slots__ = ("interaction_id", "ended_at")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    ended_at: _timestamp_pb2.Timestamp
    def __init__(self, interaction_id: _Optional[str] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CloseInteractionRequest(_message.Message):
    __slots__ = ("interaction_id",)
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    def __init__(self, interaction_id: _Optional[str] = ...) -> None: ...

class GetInteractionRequest(_message.Message):
    __slots__ = ("interaction_id", "min_version")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    min_version: int
    def __init__(self, interaction_id: _Optional[str] = ..., min_version: _Optional[int] = ...) -> None: ...

class GetInteractionResponse(_message.Message):
    __slots__ = ("interaction", "version")
    INTERACTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    interaction: Interaction
    version: int
    def __init__(self, interaction: _Optional[_Union[Interaction, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...

class ListOpenInteractionsRequest(_message.Message):
    __slots__ = ("site",)
    SITE_FIELD_NUMBER: _ClassVar[int]
    site: str
    def __init__(self, site: _Optional[str] = ...) -> None: ...

class ListOpenInteractionsResponse(_message.Message):
    __slots__ = ("interactions",)
    INTERACTIONS_FIELD_NUMBER: _ClassVar[int]
    interactions: _containers.RepeatedCompositeFieldContainer[Interaction]
    def __init__(self, interactions: _Optional[_Iterable[_Union[Interaction, _Mapping]]] = ...) -> None: ...
