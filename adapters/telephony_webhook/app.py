"""The JSON-webhook telephony adapter: ``POST /sites/{site}/events``.

The platform posts one event per request::

    {"id": "evt-81", "type": "call.started", "occurred_at": "2025-03-01T10:00:00Z",
     "call": {"id": "c-17", "from": "+7 916 123-45-67", "line": "orders"}}

``type`` is ``call.started``, ``call.answered`` or ``call.ended``; ``from`` and
``line`` are needed only when the call starts. A repeated ``id`` is the same
event delivered again: it has one effect. Anything malformed gets a 4xx with a
message naming the field, and nothing is published.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from adapters.calls import CallEvent, CallStep, Sender, interaction_id, publish

PLATFORM = "webhook"
STEPS = {
    "call.started": CallStep.STARTED,
    "call.answered": CallStep.ANSWERED,
    "call.ended": CallStep.ENDED,
}


class Call(BaseModel):
    id: str = Field(min_length=1)
    from_: str = Field("", alias="from")
    line: str = ""


class WebhookEvent(BaseModel):
    id: str = Field(min_length=1)
    type: Literal["call.started", "call.answered", "call.ended"]
    occurred_at: AwareDatetime
    call: Call

    @model_validator(mode="after")
    def started_calls_have_a_caller(self) -> WebhookEvent:
        if self.type == "call.started" and not self.call.from_.strip():
            raise ValueError("call.from is required when a call starts")
        return self


class Accepted(BaseModel):
    interaction_id: str
    command_id: str


def to_call_event(site: str, event: WebhookEvent, platform: str = PLATFORM) -> CallEvent:
    return CallEvent(
        platform=platform,
        event_id=event.id,
        call_id=event.call.id,
        step=STEPS[event.type],
        at=event.occurred_at,
        site=site,
        caller=event.call.from_.strip(),
        skill=event.call.line,
    )


def create_app(sender: Sender, platform: str = PLATFORM) -> FastAPI:
    app = FastAPI(title="Telephony webhook adapter")

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"error": _explain(error.errors())})

    @app.post("/sites/{site}/events", status_code=202)
    async def receive(site: str, event: WebhookEvent) -> Accepted:
        call_event = to_call_event(site, event, platform)
        (sent,) = await publish(sender, [call_event])
        return Accepted(interaction_id=interaction_id(platform, event.call.id), command_id=sent)

    return app


def _explain(errors: Any) -> str:
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error["loc"] if p != "body") or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
