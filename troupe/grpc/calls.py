"""What every gRPC servicer of a service does the same way: who is calling,
turning a command's outcome into a reply, and refusing with a clear status."""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
from google.protobuf.message import Message

from contracts.events.v1 import envelope_pb2
from troupe.service import records
from troupe.service.runtime import CommandRefused, CommandTimeout, Runtime

# Set by the sidecar (or its gRPC interceptor) after verifying the caller's token.
SUBJECT_HEADER = "x-troupe-subject"
NAME_HEADER = "x-troupe-name"
CORRELATION_HEADER = "x-correlation-id"


def refuse(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("abort returns only by raising")


def metadata(context: grpc.ServicerContext) -> dict[str, str]:
    return {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}


def actor_of(context: grpc.ServicerContext) -> envelope_pb2.Actor:
    headers = metadata(context)
    subject = headers.get(SUBJECT_HEADER)
    if subject:
        return records.user(subject, headers.get(NAME_HEADER, ""))
    return records.system("grpc")


def change_result(
    runtime: Runtime[Any],
    request: Message,
    context: grpc.ServicerContext,
    actor: envelope_pb2.Actor,
    expected_version: int | None = None,
) -> envelope_pb2.ChangeResult:
    """Submits ``request`` as a command and answers with the version it produced."""
    try:
        outcome = runtime.submit(
            request,
            actor=actor,
            correlation_id=metadata(context).get(CORRELATION_HEADER, ""),
            expected_version=expected_version,
        )
    except ValueError as error:
        refuse(context, grpc.StatusCode.INVALID_ARGUMENT, str(error))
    except CommandRefused as refused:
        code = grpc.StatusCode.FAILED_PRECONDITION if refused.rejected else grpc.StatusCode.INTERNAL
        refuse(context, code, str(refused))
    except CommandTimeout as error:
        refuse(context, grpc.StatusCode.DEADLINE_EXCEEDED, str(error))
    return envelope_pb2.ChangeResult(
        entity_id=outcome.entity_id,
        entity_version=outcome.version,
        event_id=outcome.event_id,
        correlation_id=metadata(context).get(CORRELATION_HEADER, ""),
    )
