"""Structured logs: one JSON object per line, with the correlation id of the
cascade being handled (taken from a context variable the runtime sets)."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="")
# The component this process runs, named in every line.
_component = {"name": ""}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if _component["name"]:
            entry["component"] = _component["name"]
        if cid := correlation_id.get():
            entry["correlation_id"] = cid
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str = "INFO", component: str = "") -> None:
    _component["name"] = component
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def fields(**values: object) -> dict[str, dict[str, object]]:
    """Extra structured fields: ``log.info("...", extra=fields(topic=t))``."""
    return {"fields": values}
