"""The release page: ``troupe release serve --port P``.

What a release engineer sees on one page: the manifest being prepared (with the
components whose current version is newer), every release with who cut it and why,
the result of ``check``, the difference between two releases (the same as ``troupe
release diff``) and a form that bumps components and cuts the next release.

It runs behind the sidecar (``troupe/release/sidecar-rules.yaml``), which checks the
token and forwards who is asking in ``X-Troupe-Subject``, ``X-Troupe-Name`` (both
percent-encoded) and ``X-Troupe-Roles`` (comma-separated). Reading needs no role of
the page itself (the sidecar's rules decide who may read); bumping and cutting
needs the ``release-engineer`` role in those headers, else 403 with a JSON reason.

Everything is server-rendered; every value is inserted as escaped text. The same
data is served as JSON under ``/releases/api/``.
"""

from __future__ import annotations

import html
import json
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from troupe.release import actions, history
from troupe.release.check import Problem, check_release
from troupe.release.components import DeclarationError, current_version
from troupe.release.contracts import BufError
from troupe.release.git import GitError, Repo
from troupe.release.manifest import MANIFEST_PATH, ManifestError

ROLE = "release-engineer"
PREFIX = "/releases"
SUBJECT, NAME, ROLES = "x-troupe-subject", "x-troupe-name", "x-troupe-roles"
FAILURES: tuple[type[Exception], ...] = (GitError, BufError, ManifestError, DeclarationError, ValueError)


@dataclass(frozen=True)
class Identity:
    """Who is asking, as the sidecar forwards it (empty when no sidecar vouched)."""

    subject: str
    name: str
    roles: frozenset[str]

    @classmethod
    def of(cls, request: Request) -> Identity:
        headers = request.headers
        roles = frozenset(unquote(r.strip()) for r in headers.get(ROLES, "").split(",") if r.strip())
        return cls(unquote(headers.get(SUBJECT, "")), unquote(headers.get(NAME, "")), roles)

    @property
    def who(self) -> str:
        """How a release records who cut it: ``Name <subject>``."""
        if self.name and self.subject:
            return f"{self.name} <{self.subject}>"
        return self.name or self.subject


def forbidden(identity: Identity) -> JSONResponse:
    held = ", ".join(sorted(identity.roles)) or "none"
    return JSONResponse(
        {
            "error": "forbidden",
            "detail": f"bumping and cutting a release needs the {ROLE} role (roles: {held})",
        },
        status_code=403,
    )


# -- what the page shows, as data -------------------------------------------------


def manifest_data(repo: Repo) -> dict[str, Any]:
    """The manifest being prepared; each component with the version it could be bumped to."""
    manifest = actions.working_manifest(repo)
    last = history.last_release(repo)
    released = history.manifest_at(repo, last).components if last else {}
    components = []
    for path, pinned in sorted(manifest.components.items()):
        now = current_version(repo, path)
        components.append(
            {
                "component": path,
                "version": pinned.version,
                "contracts": pinned.contracts,
                "current": now.version if now else None,
                "outdated": bool(now and not repo.same_commit(now.version, pinned.version)),
                "changed_since_release": path not in released or released[path] != pinned,
            }
        )
    return {
        "release": manifest.release,
        "last_release": last,
        "notes": manifest.notes,
        "released_by": manifest.released_by,
        "rollback_of": manifest.rollback_of,
        "components": components,
    }


def releases_data(repo: Repo) -> list[dict[str, Any]]:
    """Every release, newest first."""
    found = []
    for number in reversed(history.releases(repo)):
        release = history.manifest_at(repo, number)
        commit, date = repo.git("log", "-1", "--format=%h%x1f%cI", history.tag(number)).strip().split("\x1f")
        found.append(
            {
                "release": number,
                "notes": release.notes,
                "released_by": release.released_by,
                "rollback_of": release.rollback_of,
                "components": len(release.components),
                "commit": commit,
                "date": date,
            }
        )
    return found


def check_data(repo: Repo) -> dict[str, Any]:
    manifest = actions.working_manifest(repo)
    with tempfile.TemporaryDirectory() as tmp:
        problems = check_release(repo, manifest, Path(tmp))
    return {"release": manifest.release, "ok": not problems, "problems": [asdict(p) for p in problems]}


def diff_data(repo: Repo, a: int, b: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        found = actions.diff(repo, a, b, Path(tmp))
    return {**asdict(found), "text": str(found)}


# -- HTML ---------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: .25em .75em; text-align: left; vertical-align: top; }
code, pre { font-family: ui-monospace, monospace; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
.ok { color: #176117; } .bad { color: #a31515; } .muted { color: #777; }
form { margin: .5em 0 1.5em; } label { margin-right: 1em; }
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def page(title: str, body: str, identity: Identity, status: int = 200) -> HTMLResponse:
    who = esc(identity.who) or "nobody (no identity from the sidecar)"
    roles = esc(", ".join(sorted(identity.roles))) or "none"
    text = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title><style>{STYLE}</style></head>
<body>
<p class="muted">{who} · roles: {roles} · <a href="{PREFIX}">releases</a></p>
<h1>{esc(title)}</h1>
{body}
</body></html>
"""
    return HTMLResponse(text, status_code=status)


def table(head: list[str], rows: list[list[str]]) -> str:
    """``rows`` hold HTML already escaped by the caller."""
    heading = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{heading}</tr></thead><tbody>{body}</tbody></table>"


def manifest_html(data: dict[str, Any]) -> str:
    rows = []
    for c in data["components"]:
        current = esc(c["current"]) if c["outdated"] else '<span class="muted">same</span>'
        changed = "yes" if c["changed_since_release"] else ""
        rows.append(
            [
                f"<code>{esc(c['component'])}</code>",
                f"<code>{esc(c['version'])}</code>",
                f"<code>{esc(c['contracts'])}</code>",
                current,
                changed,
            ]
        )
    last = data["last_release"]
    head = f"<p>Release {esc(data['release'])} in <code>{esc(MANIFEST_PATH)}</code>"
    head += f" (last cut: {esc(last)})</p>" if last else " (no release cut yet)</p>"
    listing = table(["component", "version", "contracts", "current version", f"changed since {last}"], rows)
    return head + (listing if rows else "<p>No components yet: bump them.</p>")


def releases_html(data: list[dict[str, Any]]) -> str:
    if not data:
        return "<p>No release has been cut yet.</p>"
    rows = [
        [
            esc(r["release"]) + (f" (rollback to {esc(r['rollback_of'])})" if r["rollback_of"] else ""),
            esc(r["notes"]),
            esc(r["released_by"]),
            esc(r["date"]),
            f"<code>{esc(r['commit'])}</code>",
            esc(r["components"]),
        ]
        for r in data
    ]
    return table(["release", "why", "who", "when", "commit", "components"], rows)


def check_html(data: dict[str, Any]) -> str:
    if data["ok"]:
        return f'<p class="ok">Release {esc(data["release"])} can be cut: its components work together.</p>'
    rows = [[f"<code>{esc(p['rule'])}</code>", esc(p["subject"]), esc(p["detail"])] for p in data["problems"]]
    count = len(data["problems"])
    return f'<p class="bad">Release {esc(data["release"])} cannot be cut: {count} problem(s).</p>' + table(
        ["rule", "what", "why"], rows
    )


def diff_form(numbers: list[int], a: int | None = None, b: int | None = None) -> str:
    def options(selected: int | None, working: bool) -> str:
        found = [f'<option value="{n}"{" selected" if n == selected else ""}>release {n}</option>' for n in numbers]
        if working:
            found.append(f'<option value=""{" selected" if selected is None else ""}>the working manifest</option>')
        return "".join(found)

    first = a if a is not None else (numbers[-1] if numbers else None)
    return f"""<form method="get" action="{PREFIX}/diff">
<label>from <select name="a">{options(first, False)}</select></label>
<label>to <select name="b">{options(b, True)}</select></label>
<button type="submit">Show the difference</button></form>"""


def cut_form(release: int) -> str:
    return f"""<form method="post" action="{PREFIX}/cut">
<p><label>Bump components <input name="components" size="40" placeholder="all, or e.g. customer routing"></label></p>
<p><label>Why <input name="notes" size="60" required></label></p>
<p><button type="submit">Bump and cut release {esc(release)}</button>
<span class="muted">needs the {esc(ROLE)} role; refused with every reason if the check fails</span></p>
</form>"""


# -- the app ------------------------------------------------------------------------


def _release_number(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a release number, got {value!r}")
    return int(value)


def _names(text: str) -> list[str]:
    return [n for n in text.replace(",", " ").split() if n]


@dataclass
class CutResult:
    release: int
    lines: list[str]
    problems: list[Problem]


def create_app(repo: Repo) -> FastAPI:
    app = FastAPI(title="Troupe releases", docs_url=None, redoc_url=None, openapi_url=None)
    lock = threading.Lock()  # one bump-and-cut at a time: each writes the manifest and a tag

    def bump_and_cut(names: list[str], notes: str, who: str) -> CutResult:
        if not notes.strip():
            raise ValueError("say why this release is made (notes)")
        if not who:
            raise ValueError("the sidecar forwarded no name or subject to record as who released")
        with lock, tempfile.TemporaryDirectory() as tmp:
            bumped = actions.bump(repo, names)
            outcome = actions.cut(repo, notes.strip(), who, Path(tmp))
        return CutResult(outcome.manifest.release, bumped.lines + outcome.lines, outcome.problems)

    @app.exception_handler(history.UnknownReleaseError)
    async def unknown(_request: Request, error: history.UnknownReleaseError) -> JSONResponse:
        return JSONResponse({"error": "not_found", "detail": str(error)}, status_code=404)

    async def failed(_request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"error": "bad_request", "detail": str(error)}, status_code=400)

    for failure in FAILURES:
        app.add_exception_handler(failure, failed)

    @app.get(PREFIX, response_class=HTMLResponse)
    def overview(request: Request) -> HTMLResponse:
        identity = Identity.of(request)
        manifest = manifest_data(repo)
        releases = releases_data(repo)
        numbers = sorted(r["release"] for r in releases)
        cut = request.query_params.get("cut")
        notice = f'<p class="ok">Cut release {esc(cut)}.</p>' if cut else ""
        body = notice + "<h2>Manifest</h2>" + manifest_html(manifest)
        body += "<h2>Check</h2>" + check_html(check_data(repo))
        if ROLE in identity.roles:
            body += "<h2>Bump and cut</h2>" + cut_form(manifest["release"])
        body += "<h2>Releases</h2>" + releases_html(releases)
        if numbers:
            body += "<h2>Difference</h2>" + diff_form(numbers)
        return page("Releases", body, identity)

    @app.get(PREFIX + "/diff", response_class=HTMLResponse)
    def diff_page(request: Request, a: str, b: str | None = None) -> HTMLResponse:
        first = _release_number(a, "a")
        if first is None:
            raise ValueError("a must be a release number")
        second = _release_number(b, "b")
        data = diff_data(repo, first, second)
        numbers = history.releases(repo)
        body = diff_form(numbers, first, second) + f"<pre>{esc(data['text'])}</pre>"
        return page(f"{data['before']} → {data['after']}", body, Identity.of(request))

    @app.post(PREFIX + "/cut")
    async def cut_from_form(request: Request) -> Response:
        identity = Identity.of(request)
        if ROLE not in identity.roles:
            return forbidden(identity)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        notes = form.get("notes", [""])[0]
        names = _names(form.get("components", [""])[0])
        result = await run_in_threadpool(bump_and_cut, names, notes, identity.who)
        if result.problems:
            lines = "".join(f"<li>{esc(line)}</li>" for line in result.lines)
            rows = [[f"<code>{esc(p.rule)}</code>", esc(p.subject), esc(p.detail)] for p in result.problems]
            body = f"<ul>{lines}</ul>" + table(["rule", "what", "why"], rows)
            body += "<p>Nothing was committed or tagged. The bumped manifest is in the working tree.</p>"
            return page(f"Release {result.release} refused", body, identity, status=409)
        return RedirectResponse(f"{PREFIX}?cut={quote(str(result.release))}", status_code=303)

    @app.get(PREFIX + "/api/manifest")
    def api_manifest() -> dict[str, Any]:
        return manifest_data(repo)

    @app.get(PREFIX + "/api/releases")
    def api_releases() -> list[dict[str, Any]]:
        return releases_data(repo)

    @app.get(PREFIX + "/api/check")
    def api_check() -> dict[str, Any]:
        return check_data(repo)

    @app.get(PREFIX + "/api/diff")
    def api_diff(a: int, b: int | None = None) -> dict[str, Any]:
        return diff_data(repo, a, b)

    @app.post(PREFIX + "/api/cut")
    async def api_cut(request: Request) -> Response:
        identity = Identity.of(request)
        if ROLE not in identity.roles:
            return forbidden(identity)
        try:
            body = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError as error:
            raise ValueError(f"the body is not JSON: {error}") from error
        if not isinstance(body, dict):
            raise ValueError('the body must be {"notes": "...", "components": [...]}')
        names = body.get("components") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("components must be a list of component names")
        result = await run_in_threadpool(bump_and_cut, names, str(body.get("notes") or ""), identity.who)
        answer = {
            "release": result.release,
            "cut": not result.problems,
            "lines": result.lines,
            "problems": [asdict(p) for p in result.problems],
        }
        return JSONResponse(answer, status_code=409 if result.problems else 201)

    return app


def serve(repo: Repo, host: str, port: int) -> None:
    import uvicorn

    print(f"release page: http://{host}:{port}{PREFIX}")
    uvicorn.run(create_app(repo), host=host, port=port, log_level="info", proxy_headers=False)
