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

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_SMS: _ClassVar[Channel]
    CHANNEL_EMAIL: _ClassVar[Channel]
CHANNEL_UNSPECIFIED: Channel
CHANNEL_SMS: Channel
CHANNEL_EMAIL: Channel

class Customer(_message.Message):
    __slots__ = ("customer_id", "name", "phones", "email", "loyalty_card", "preferred_channel", "loyalty_points", "merged_into", "last_interaction_id", "last_contact_at", "merged_from")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PHONES_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    LOYALTY_CARD_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LOYALTY_POINTS_FIELD_NUMBER: _ClassVar[int]
    MERGED_INTO_FIELD_NUMBER: _ClassVar[int]
    LAST_INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_CONTACT_AT_FIELD_NUMBER: _ClassVar[int]
    MERGED_FROM_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    name: str
    phones: _containers.RepeatedScalarFieldContainer[str]
    email: str
    loyalty_card: str
    preferred_channel: Channel
    loyalty_points: int
    merged_into: str
    last_interaction_id: str
    last_contact_at: _timestamp_pb2.Timestamp
    merged_from: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer_id: _Optional[str] = ..., name: _Optional[str] = ..., phones: _Optional[_Iterable[str]] = ..., email: _Optional[str] = ..., loyalty_card: _Optional[str] = ..., preferred_channel: _Optional[_Union[Channel, str]] = ..., loyalty_points: _Optional[int] = ..., merged_into: _Optional[str] = ..., last_interaction_id: _Optional[str] = ..., last_contact_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., merged_from: _Optional[_Iterable[str]] = ...) -> None: ...

class RegisterCustomerRequest(_message.Message):
    __slots__ = ("customer_id", "name", "phone", "email", "preferred_channel")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    name: str
    phone: str
    email: str
    preferred_channel: Channel
    def __init__(self, customer_id: _Optional[str] = ..., name: _Optional[str] = ..., phone: _Optional[str] = ..., email: _Optional[str] = ..., preferred_channel: _Optional[_Union[Channel, str]] = ...) -> None: ...

class RegisterCustomerResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _envelope_pb2.ChangeResult
    def __init__(self, result: _Optional[_Union[_envelope_pb2.ChangeResult, _Mapping]] = ...) -> None: ...

class ChangeContactRequest(_message.Message):
    __slots__ = ("customer_id", "phones", "email", "preferred_channel")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PHONES_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    phones: _containers.RepeatedScalarFieldContainer[str]
    email: str
    preferred_channel: Channel
    def __init__(self, customer_id: _Optional[str] = ..., phones: _Optional[_Iterable[str]] = ..., email: _Optional[str] = ..., preferred_channel: _Optional[_Union[Channel, str]] = ...) -> None: ...

class ChangeContactResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _envelope_pb2.ChangeResult
    def __init__(self, result: _Optional[_Union[_envelope_pb2.ChangeResult, _Mapping]] = ...) -> None: ...

class AwardLoyaltyPointsRequest(_message.Message):
    __slots__ = ("customer_id", "points", "reason")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    points: int
    reason: str
    def __init__(self, customer_id: _Optional[str] = ..., points: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class AwardLoyaltyPointsResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _envelope_pb2.ChangeResult
    def __init__(self, result: _Optional[_Union[_envelope_pb2.ChangeResult, _Mapping]] = ...) -> None: ...

class IdentifyCallerRequest(_message.Message):
    __slots__ = ("customer_id", "phone", "interaction_id")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    phone: str
    interaction_id: str
    def __init__(self, customer_id: _Optional[str] = ..., phone: _Optional[str] = ..., interaction_id: _Optional[str] = ...) -> None: ...

class MergeCustomersRequest(_message.Message):
    __slots__ = ("customer_id", "duplicate_id")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    duplicate_id: str
    def __init__(self, customer_id: _Optional[str] = ..., duplicate_id: _Optional[str] = ...) -> None: ...

class MergeCustomersResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _envelope_pb2.ChangeResult
    def __init__(self, result: _Optional[_Union[_envelope_pb2.ChangeResult, _Mapping]] = ...) -> None: ...

class MarkMergedRequest(_message.Message):
    __slots__ = ("customer_id", "merged_into")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    MERGED_INTO_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    merged_into: str
    def __init__(self, customer_id: _Optional[str] = ..., merged_into: _Optional[str] = ...) -> None: ...

class GetCustomerRequest(_message.Message):
    __slots__ = ("customer_id", "min_version")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    min_version: int
    def __init__(self, customer_id: _Optional[str] = ..., min_version: _Optional[int] = ...) -> None: ...

class GetCustomerResponse(_message.Message):
    __slots__ = ("customer", "version")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    customer: Customer
    version: int
    def __init__(self, customer: _Optional[_Union[Customer, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...

class FindCustomerByPhoneRequest(_message.Message):
    __slots__ = ("phone",)
    PHONE_FIELD_NUMBER: _ClassVar[int]
    phone: str
    def __init__(self, phone: _Optional[str] = ...) -> None: ...

class FindCustomerByPhoneResponse(_message.Message):
    __slots__ = ("customer", "version")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    customer: Customer
    version: int
    def __init__(self, customer: _Optional[_Union[Customer, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...
