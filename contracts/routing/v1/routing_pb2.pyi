import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATE_UNSPECIFIED: _ClassVar[State]
    STATE_WAITING: _ClassVar[State]
    STATE_OFFERED: _ClassVar[State]
    STATE_ANSWERED: _ClassVar[State]
    STATE_CANCELLED: _ClassVar[State]
STATE_UNSPECIFIED: State
STATE_WAITING: State
STATE_OFFERED: State
STATE_ANSWERED: State
STATE_CANCELLED: State

class Assignment(_message.Message):
    __slots__ = ("interaction_id", "site", "skill", "queued_at", "state", "operator_id", "offered_at", "passed_over", "released_operator_id", "offers", "announced_waiting")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    SKILL_FIELD_NUMBER: _ClassVar[int]
    QUEUED_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    OFFERED_AT_FIELD_NUMBER: _ClassVar[int]
    PASSED_OVER_FIELD_NUMBER: _ClassVar[int]
    RELEASED_OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCED_WAITING_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    site: str
    skill: str
    queued_at: _timestamp_pb2.Timestamp
    state: State
    operator_id: str
    offered_at: _timestamp_pb2.Timestamp
    passed_over: _containers.RepeatedScalarFieldContainer[str]
    released_operator_id: str
    offers: int
    announced_waiting: bool
    def __init__(self, interaction_id: _Optional[str] = ..., site: _Optional[str] = ..., skill: _Optional[str] = ..., queued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[State, str]] = ..., operator_id: _Optional[str] = ..., offered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., passed_over: _Optional[_Iterable[str]] = ..., released_operator_id: _Optional[str] = ..., offers: _Optional[int] = ..., announced_waiting: _Optional[bool] = ...) -> None: ...

class RouteInteractionRequest(_message.Message):
    __slots__ = ("interaction_id", "site", "skill", "queued_at")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    SKILL_FIELD_NUMBER: _ClassVar[int]
    QUEUED_AT_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    site: str
    skill: str
    queued_at: _timestamp_pb2.Timestamp
    def __init__(self, interaction_id: _Optional[str] = ..., site: _Optional[str] = ..., skill: _Optional[str] = ..., queued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OfferOperatorRequest(_message.Message):
    __slots__ = ("interaction_id", "operator_id")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    operator_id: str
    def __init__(self, interaction_id: _Optional[str] = ..., operator_id: _Optional[str] = ...) -> None: ...

class RecordRefusalRequest(_message.Message):
    __slots__ = ("interaction_id", "operator_id")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    operator_id: str
    def __init__(self, interaction_id: _Optional[str] = ..., operator_id: _Optional[str] = ...) -> None: ...

class ExpireOfferRequest(_message.Message):
    __slots__ = ("interaction_id", "operator_id")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    operator_id: str
    def __init__(self, interaction_id: _Optional[str] = ..., operator_id: _Optional[str] = ...) -> None: ...

class MarkAnsweredRequest(_message.Message):
    __slots__ = ("interaction_id", "operator_id")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    operator_id: str
    def __init__(self, interaction_id: _Optional[str] = ..., operator_id: _Optional[str] = ...) -> None: ...

class CancelRoutingRequest(_message.Message):
    __slots__ = ("interaction_id",)
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    def __init__(self, interaction_id: _Optional[str] = ...) -> None: ...

class GetAssignmentRequest(_message.Message):
    __slots__ = ("interaction_id", "min_version")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    min_version: int
    def __init__(self, interaction_id: _Optional[str] = ..., min_version: _Optional[int] = ...) -> None: ...

class GetAssignmentResponse(_message.Message):
    __slots__ = ("assignment", "version")
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    assignment: Assignment
    version: int
    def __init__(self, assignment: _Optional[_Union[Assignment, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...

class ListWaitingRequest(_message.Message):
    __slots__ = ("site",)
    SITE_FIELD_NUMBER: _ClassVar[int]
    site: str
    def __init__(self, site: _Optional[str] = ...) -> None: ...

class ListWaitingResponse(_message.Message):
    __slots__ = ("assignments",)
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    assignments: _containers.RepeatedCompositeFieldContainer[Assignment]
    def __init__(self, assignments: _Optional[_Iterable[_Union[Assignment, _Mapping]]] = ...) -> None: ...
