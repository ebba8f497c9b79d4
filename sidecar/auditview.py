"""The audit view: who changed which entity when, and what it was before and after.

Queries ``audit.events`` by user, entity, service, time range and outcome. Each
allowed change is joined, through its correlation id, with the entity's events on
``<service>.events``: the event the change caused carries the entity's full new
state ("after"), and the entity's event just before it the previous one ("before").

The view reads the topics at each query (no index of its own yet), which is fine for
the audit volumes of a contact-center day; see docs/sidecar.md. It is served as a
REST API (``/audit/api/records``), a page (``/audit``) and the CLI
(``troupe audit query``); behind a sidecar whose rules allow only the auditor role.
"""

from __future__ import annotations

import datetime as dt
import html
import importlib
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import HTMLResponse
from google.protobuf import json_format

import contracts
from contracts.audit.v1.audit_pb2 import AuditEntry, AuditOutcome, AuditRecord
from contracts.events.v1.envelope_pb2 import Envelope
from sidecar.audit import entry_of
from sidecar.audit_kafka import read_all, read_topic
from troupe.bus.topics import AUDIT_TOPIC, events_topic
from troupe.settings import KafkaSettings

OUTCOMES = {
    name.removeprefix("AUDIT_OUTCOME_").lower(): number
    for name, number in AuditOutcome.items() if number != 0
}


def _load_contracts() -> None:
    """Imports every generated contract module, so event states (Any) can be shown."""
    for module in pkgutil.walk_packages(contracts.__path__, "contracts."):
        if module.name.endswith("_pb2"):
            importlib.import_module(module.name)


@dataclass(frozen=True)
class AuditQuery:
    user: str = ""  # subject, or part of the name (case-insensitive)
    entity: str = ""
    service: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    outcome: str = ""  # allowed | denied_unauthenticated | denied_forbidden | rejected
    limit: int = 200

    def __post_init__(self) -> None:
        if self.outcome and self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")

    def matches(self, entry: AuditEntry) -> bool:
        at = entry.occurred_at.ToDatetime(tzinfo=dt.UTC)
        user = self.user.lower()
        return (
            (not user or entry.actor.subject.lower() == user or user in entry.actor.name.lower())
            and (not self.entity or entry.entity_id == self.entity)
            and (not self.service or entry.service == self.service)
            and (self.since is None or at >= self.since)
            and (self.until is None or at < self.until)
            and (not self.outcome or entry.outcome == OUTCOMES[self.outcome])
        )


def _entry_json(record: AuditRecord, entry: AuditEntry) -> dict[str, Any]:
    data = json_format.MessageToDict(entry, preserving_proto_field_name=True)
    data["outcome"] = AuditOutcome.Name(entry.outcome).removeprefix("AUDIT_OUTCOME_").lower()
    data["record"] = f"{record.instance_id}#{record.sequence}"
    return data


def _state(envelope: Envelope | None) -> dict[str, Any] | None:
    if envelope is None or not envelope.HasField("state"):
        return None
    try:
        return json_format.MessageToDict(envelope.state, preserving_proto_field_name=True)
    except (TypeError, json_format.Error):  # a type this build does not know
        return {"@type": envelope.state.type_url, "undecoded": True}


def _histories(kafka: KafkaSettings, service: str, entities: set[str]) -> dict[str, list[Envelope]]:
    histories: dict[str, list[Envelope]] = {}
    for value in read_topic(kafka, events_topic(service)):
        envelope = Envelope()
        envelope.ParseFromString(value)
        if envelope.entity_id in entities:
            histories.setdefault(envelope.entity_id, []).append(envelope)
    for history in histories.values():
        history.sort(key=lambda e: e.entity_version)
    return histories


def query_audit(kafka: KafkaSettings, query: AuditQuery, topic: str = AUDIT_TOPIC,
                records: Iterable[AuditRecord] | None = None) -> list[dict[str, Any]]:
    """The matching records, newest first, each change with the entity's state
    before and after (``None`` where there is none)."""
    _load_contracts()
    found = []
    for record in read_all(kafka, topic) if records is None else records:
        entry = entry_of(record)
        if query.matches(entry):
            found.append((record, entry))
    found.sort(key=lambda pair: pair[1].occurred_at.ToNanoseconds(), reverse=True)
    found = found[: query.limit]
    wanted: dict[str, set[str]] = {}
    for _, entry in found:
        if entry.outcome == OUTCOMES["allowed"] and entry.entity_id:
            wanted.setdefault(entry.service, set()).add(entry.entity_id)
    histories = {service: _histories(kafka, service, ids) for service, ids in wanted.items()}
    rows = []
    for record, entry in found:
        row = _entry_json(record, entry)
        history = histories.get(entry.service, {}).get(entry.entity_id, [])
        caused = [i for i, e in enumerate(history) if e.correlation_id == entry.correlation_id]
        if caused:
            first, last = caused[0], caused[-1]
            row["before"] = _state(history[first - 1] if first > 0 else None)
            row["after"] = _state(history[last])
            row["events"] = [history[i].type for i in caused]
        rows.append(row)
    return rows


def create_app(kafka: KafkaSettings, topic: str = AUDIT_TOPIC, sign_in_url: str = "") -> FastAPI:
    """The REST API and the page. Behind its sidecar (``auditview-rules.yaml``) the page
    itself is public and holds no data; it reads the API with the token the identity
    provider at ``sign_in_url`` hands back (``#access_token=``), and only an auditor's
    token gets an answer."""
    app = FastAPI(title="Troupe audit view", docs_url=None, redoc_url=None)

    @app.get("/audit/api/records")
    def records(
        user: str = "", entity: str = "", service: str = "",
        since: dt.datetime | None = None, until: dt.datetime | None = None,
        outcome: str = Query("", pattern="^(|" + "|".join(OUTCOMES) + ")$"),
        limit: int = Query(200, ge=1, le=5000),
    ) -> list[dict[str, Any]]:
        query = AuditQuery(user, entity, service, _utc(since), _utc(until), outcome, limit)
        return query_audit(kafka, query, topic)

    @app.get("/audit", response_class=HTMLResponse)
    def page() -> str:
        return _PAGE.replace("{outcomes}", "".join(
            f'<option value="{html.escape(o)}">{html.escape(o)}</option>' for o in OUTCOMES)
        ).replace("{sign_in}", html.escape(sign_in_url))

    return app


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Audit</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top;font-size:.9rem}
pre{margin:0;max-width:28rem;white-space:pre-wrap}form input,form select{margin-right:.5rem}</style>
</head><body><h1>Audit</h1>
<p id="who"><a id="signin" href="{sign_in}">Sign in</a> as an auditor to read the audit.</p>
<form id="q">User <input name="user"> Entity <input name="entity"> Service <input name="service">
Since <input name="since" type="datetime-local"> Until <input name="until" type="datetime-local">
Outcome <select name="outcome"><option value="">any</option>{outcomes}</select>
<button>Search</button></form>
<table><thead><tr><th>When</th><th>Who</th><th>What</th><th>Outcome</th><th>Before</th>
<th>After</th></tr></thead><tbody id="rows"></tbody></table>
<script>
const text = (v) => document.createTextNode(v ?? "");
const cell = (row, v, pre) => { const td = row.insertCell(); const el = pre ?
  document.createElement("pre") : td; if (pre) td.appendChild(el);
  el.appendChild(text(pre ? (v ? JSON.stringify(v, null, 1) : "") : v)); };
// The identity provider sends the auditor back here with #access_token=...; it is kept
// for this tab only, and taken out of the address bar.
const back = new URLSearchParams(location.hash.slice(1)).get("access_token");
if (back) { sessionStorage.setItem("token", back); history.replaceState(null, "", location.pathname); }
const token = sessionStorage.getItem("token");
const signin = document.getElementById("signin");
if (signin.getAttribute("href")) {
  signin.href = signin.getAttribute("href") + "?redirect_uri=" +
    encodeURIComponent(location.origin + location.pathname);
} else { signin.removeAttribute("href"); }
if (token) { signin.textContent = "Sign in again"; }
document.getElementById("q").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const params = new URLSearchParams([...new FormData(ev.target)].filter(([, v]) => v));
  const answer = await fetch("/audit/api/records?" + params,
    token ? {headers: {Authorization: "Bearer " + token}} : {});
  const body = document.getElementById("rows"); body.replaceChildren();
  if (!answer.ok) {
    const reason = answer.status === 401 ? ": sign in" : answer.status === 403 ? ": not an auditor" : "";
    cell(body.insertRow(), "error " + answer.status + reason); return;
  }
  for (const r of await answer.json()) {
    const row = body.insertRow();
    const actor = r.actor || {};
    cell(row, r.occurred_at);
    cell(row, (actor.name || "-") + " (" + (actor.roles || []).join(", ") + ")");
    cell(row, r.service + " " + r.method + " " + r.path + (r.entity_id ? " [" + r.entity_id + "]" : ""));
    cell(row, r.outcome + (r.reason ? ": " + r.reason : ""));
    cell(row, r.before, true); cell(row, r.after, true);
  }
});
</script></body></html>"""
