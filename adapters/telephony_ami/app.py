"""The manager-interface telephony adapter: ``POST /sites/{site}/ami``.

The PBX forwards its manager event stream in batches of ``Key: Value`` blocks,
one blank line between events::

    Event: Newchannel
    Uniqueid: 1709283600.117
    CallerIDNum: 89161234567
    Exten: orders
    Timestamp: 1709283600.251

    Event: BridgeEnter
    Uniqueid: 1709283600.117
    Timestamp: 1709283612.004

    Event: Hangup
    Uniqueid: 1709283600.117
    Cause: 16
    Timestamp: 1709283700.533

``Newchannel`` starts a call, ``BridgeEnter`` (the agent's leg joins) answers it,
``Hangup`` ends it; the many other events a PBX sends are ignored. An event is
identified by its ``Uniqueid`` and ``Event``, so a stream replayed after a
reconnect has one effect. A batch with any malformed block gets a 400 naming the
block and line, and none of it is published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from adapters.calls import CallEvent, CallStep, Sender, interaction_id, publish

PLATFORM = "ami"
STEPS = {
    "Newchannel": CallStep.STARTED,
    "BridgeEnter": CallStep.ANSWERED,
    "Hangup": CallStep.ENDED,
}
MAX_BATCH_BYTES = 1_000_000


class BadStream(ValueError):
    pass


@dataclass(frozen=True)
class Block:
    number: int
    fields: dict[str, str]


def parse_blocks(text: str) -> list[Block]:
    """Splits the stream into ``Key: Value`` blocks; refuses a line that is not one."""
    blocks: list[Block] = []
    fields: dict[str, str] = {}
    for line_number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            if fields:
                blocks.append(Block(len(blocks) + 1, fields))
                fields = {}
            continue
        key, separator, value = line.partition(":")
        if not separator or not key.strip():
            raise BadStream(f"line {line_number}: {raw!r} is not a 'Key: Value' line")
        fields[key.strip()] = value.strip()
    if fields:
        blocks.append(Block(len(blocks) + 1, fields))
    return blocks


def _required(block: Block, key: str) -> str:
    value = block.fields.get(key, "")
    if not value:
        raise BadStream(
            f"event {block.number} ({block.fields.get('Event', '?')}): {key} is missing"
        )
    return value


def _timestamp(block: Block) -> datetime:
    raw = block.fields.get("Timestamp")
    if raw is None:
        return datetime.now(UTC)
    try:
        return datetime.fromtimestamp(float(raw), UTC)
    except ValueError as error:
        raise BadStream(f"event {block.number}: Timestamp {raw!r} is not epoch seconds") from error


def to_call_events(site: str, text: str, platform: str = PLATFORM) -> list[CallEvent]:
    """The call events of a batch; ``BadStream`` if any block is malformed."""
    events = []
    for block in parse_blocks(text):
        name = _required(block, "Event")
        step = STEPS.get(name)
        if step is None:
            continue
        unique_id = _required(block, "Uniqueid")
        caller = _required(block, "CallerIDNum") if step is CallStep.STARTED else ""
        events.append(
            CallEvent(
                platform=platform,
                event_id=f"{unique_id}/{name}",
                call_id=unique_id,
                step=step,
                at=_timestamp(block),
                site=site,
                caller=caller,
                skill=block.fields.get("Exten", "") if step is CallStep.STARTED else "",
            )
        )
    return events


def create_app(sender: Sender, platform: str = PLATFORM) -> FastAPI:
    app = FastAPI(title="Telephony manager-interface adapter")

    @app.post("/sites/{site}/ami", status_code=202)
    async def receive(site: str, request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BATCH_BYTES:
            return JSONResponse({"error": f"batch over {MAX_BATCH_BYTES} bytes"}, status_code=413)
        try:
            events = to_call_events(site, body.decode("utf-8"), platform)
        except UnicodeDecodeError:
            return JSONResponse({"error": "the stream is not UTF-8 text"}, status_code=400)
        except BadStream as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        sent = await publish(sender, events)
        return JSONResponse(
            {
                "accepted": len(sent),
                "interaction_ids": [interaction_id(platform, e.call_id) for e in events],
            },
            status_code=202,
        )

    return app
