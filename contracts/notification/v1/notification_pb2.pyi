import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_SMS: _ClassVar[Channel]
    CHANNEL_EMAIL: _ClassVar[Channel]

class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_UNSPECIFIED: _ClassVar[Status]
    STATUS_PENDING: _ClassVar[Status]
    STATUS_SENT: _ClassVar[Status]
    STATUS_FAILED: _ClassVar[Status]
CHANNEL_UNSPECIFIED: Channel
CHANNEL_SMS: Channel
CHANNEL_EMAIL: Channel
STATUS_UNSPECIFIED: Status
STATUS_PENDING: Status
STATUS_SENT: Status
STATUS_FAILED: Status

class Notification(_message.Message):
    __slots__ = ("notification_id", "customer_id", "ticket_id", "reason", "channel", "address", "subject", "text", "status", "requested_at", "sent_at", "provider_message_id", "attempts", "error")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    customer_id: str
    ticket_id: str
    reason: str
    channel: Channel
    address: str
    subject: str
    text: str
    status: Status
    requested_at: _timestamp_pb2.Timestamp
    sent_at: _timestamp_pb2.Timestamp
    provider_message_id: str
    attempts: int
    error: str
    def __init__(self, notification_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., ticket_id: _Optional[str] = ..., reason: _Optional[str] = ..., channel: _Optional[_Union[Channel, str]] = ..., address: _Optional[str] = ..., subject: _Optional[str] = ..., text: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., requested_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., provider_message_id: _Optional[str] = ..., attempts: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class NotifyCustomerRequest(_message.Message):
    __slots__ = ("notification_id", "customer_id", "ticket_id", "reason", "ticket_subject", "resolution")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TICKET_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    customer_id: str
    ticket_id: str
    reason: str
    ticket_subject: str
    resolution: str
    def __init__(self, notification_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., ticket_id: _Optional[str] = ..., reason: _Optional[str] = ..., ticket_subject: _Optional[str] = ..., resolution: _Optional[str] = ...) -> None: ...

class MarkSentRequest(_message.Message):
    __slots__ = ("notification_id", "provider_message_id", "attempts")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    provider_message_id: str
    attempts: int
    def __init__(self, notification_id: _Optional[str] = ..., provider_message_id: _Optional[str] = ..., attempts: _Optional[int] = ...) -> None: ...

class MarkFailedRequest(_message.Message):
    __slots__ = ("notification_id", "error", "attempts")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    error: str
    attempts: int
    def __init__(self, notification_id: _Optional[str] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ...) -> None: ...

class GetNotificationRequest(_message.Message):
    __slots__ = ("notification_id", "min_version")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    min_version: int
    def __init__(self, notification_id: _Optional[str] = ..., min_version: _Optional[int] = ...) -> None: ...

class GetNotificationResponse(_message.Message):
    __slots__ = ("notification", "version")
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    notification: Notification
    version: int
    def __init__(self, notification: _Optional[_Union[Notification, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...
