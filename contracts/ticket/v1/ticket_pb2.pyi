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

class Category(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CATEGORY_UNSPECIFIED: _ClassVar[Category]
    CATEGORY_ORDER: _ClassVar[Category]
    CATEGORY_DELIVERY: _ClassVar[Category]
    CATEGORY_RETURN: _ClassVar[Category]
    CATEGORY_COMPLAINT: _ClassVar[Category]
    CATEGORY_LOYALTY: _ClassVar[Category]
    CATEGORY_OTHER: _ClassVar[Category]

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_LOW: _ClassVar[Priority]
    PRIORITY_NORMAL: _ClassVar[Priority]
    PRIORITY_HIGH: _ClassVar[Priority]
    PRIORITY_URGENT: _ClassVar[Priority]

class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_UNSPECIFIED: _ClassVar[Status]
    STATUS_NEW: _ClassVar[Status]
    STATUS_IN_PROGRESS: _ClassVar[Status]
    STATUS_WAITING_FOR_CUSTOMER: _ClassVar[Status]
    STATUS_RESOLVED: _ClassVar[Status]
    STATUS_CLOSED: _ClassVar[Status]
CATEGORY_UNSPECIFIED: Category
CATEGORY_ORDER: Category
CATEGORY_DELIVERY: Category
CATEGORY_RETURN: Category
CATEGORY_COMPLAINT: Category
CATEGORY_LOYALTY: Category
CATEGORY_OTHER: Category
PRIORITY_UNSPECIFIED: Priority
PRIORITY_LOW: Priority
PRIORITY_NORMAL: Priority
PRIORITY_HIGH: Priority
PRIORITY_URGENT: Priority
STATUS_UNSPECIFIED: Status
STATUS_NEW: Status
STATUS_IN_PROGRESS: Status
STATUS_WAITING_FOR_CUSTOMER: Status
STATUS_RESOLVED: Status
STATUS_CLOSED: Status

class Ticket(_message.Message):
    __slots__ = ("ticket_id", "customer_id", "interaction_id", "category", "priority", "subject", "description", "status", "opened_at", "sla_deadline", "opened_by", "assignee", "resolution", "resolved_at")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    SLA_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    OPENED_BY_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    customer_id: str
    interaction_id: str
    category: Category
    priority: Priority
    subject: str
    description: str
    status: Status
    opened_at: _timestamp_pb2.Timestamp
    sla_deadline: _timestamp_pb2.Timestamp
    opened_by: str
    assignee: str
    resolution: str
    resolved_at: _timestamp_pb2.Timestamp
    def __init__(self, ticket_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., interaction_id: _Optional[str] = ..., category: _Optional[_Union[Category, str]] = ..., priority: _Optional[_Union[Priority, str]] = ..., subject: _Optional[str] = ..., description: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sla_deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., opened_by: _Optional[str] = ..., assignee: _Optional[str] = ..., resolution: _Optional[str] = ..., resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OpenTicketRequest(_message.Message):
    __slots__ = ("ticket_id", "customer_id", "interaction_id", "category", "priority", "subject", "description", "opened_by")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    OPENED_BY_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    customer_id: str
    interaction_id: str
    category: Category
    priority: Priority
    subject: str
    description: str
    opened_by: str
    def __init__(self, ticket_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., interaction_id: _Optional[str] = ..., category: _Optional[_Union[Category, str]] = ..., priority: _Optional[_Union[Priority, str]] = ..., subject: _Optional[str] = ..., description: _Optional[str] = ..., opened_by: _Optional[str] = ...) -> None: ...

class OpenTicketResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _envelope_pb2.ChangeResult
    def __init__(self, result: _Optional[_Union[_envelope_pb2.ChangeResult, _Mapping]] = ...) -> None: ...

class StartWorkRequest(_message.Message):
    __slots__ = ("ticket_id", "assignee")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    assignee: str
    def __init__(self, ticket_id: _Optional[str] = ..., assignee: _Optional[str] = ...) -> None: ...

class StartWorkResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _envelope_pb2.ChangeResult
    def __init__(self, result: _Optional[_Union[_envelope_pb2.ChangeResult, _Mapping]] = ...) -> None: ...

class AwaitCustomerRequest(_message.Message):
    __slots__ = ("ticket_id", "question")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    question: str
    def __init__(self, ticket_id: _Optional[str] = ..., question: _Optional[str] = ...) -> None: ...

class AwaitCustomerResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _envelope_pb2.ChangeResult
    def __init__(self, result: _Optional[_Union[_envelope_pb2.ChangeResult, _Mapping]] = ...) -> None: ...

class ResolveTicketRequest(_message.Message):
    __slots__ = ("ticket_id", "resolution")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    resolution: str
    def __init__(self, ticket_id: _Optional[str] = ..., resolution: _Optional[str] = ...) -> None: ...

class ResolveTicketResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _envelope_pb2.ChangeResult
    def __init__(self, result: _Optional[_Union[_envelope_pb2.ChangeResult, _Mapping]] = ...) -> None: ...

class ReopenTicketRequest(_message.Message):
    __slots__ = ("ticket_id", "reason")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    reason: str
    def __init__(self, ticket_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReopenTicketResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _envelope_pb2.ChangeResult
    def __init__(self, result: _Optional[_Union[_envelope_pb2.ChangeResult, _Mapping]] = ...) -> None: ...

class CloseTicketRequest(_message.Message):
    __slots__ = ("ticket_id",)
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    def __init__(self, ticket_id: _Optional[str] = ...) -> None: ...

class CloseTicketResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _envelope_pb2.ChangeResult
    def __init__(self, result: _Optional[_Union[_envelope_pb2.ChangeResult, _Mapping]] = ...) -> None: ...

class GetTicketRequest(_message.Message):
    __slots__ = ("ticket_id", "min_version")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    min_version: int
    def __init__(self, ticket_id: _Optional[str] = ..., min_version: _Optional[int] = ...) -> None: ...

class GetTicketResponse(_message.Message):
    __slots__ = ("ticket", "version")
    TICKET_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ticket: Ticket
    version: int
    def __init__(self, ticket: _Optional[_Union[Ticket, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...

class ListCustomerTicketsRequest(_message.Message):
    __slots__ = ("customer_id", "open_only")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    OPEN_ONLY_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    open_only: bool
    def __init__(self, customer_id: _Optional[str] = ..., open_only: _Optional[bool] = ...) -> None: ...

class ListCustomerTicketsResponse(_message.Message):
    __slots__ = ("tickets",)
    TICKETS_FIELD_NUMBER: _ClassVar[int]
    tickets: _containers.RepeatedCompositeFieldContainer[Ticket]
    def __init__(self, tickets: _Optional[_Iterable[_Union[Ticket, _Mapping]]] = ...) -> None: ...
