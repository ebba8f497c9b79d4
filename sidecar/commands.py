"""``troupe sidecar run``, ``troupe audit verify|query|serve`` and ``troupe idp run``.

Every option of ``sidecar run`` can also come from the environment
(``TROUPE_SIDECAR_<OPTION>``, e.g. ``TROUPE_SIDECAR_JWKS_URL``); Kafka comes from
the usual Troupe settings (``TROUPE_KAFKA__BOOTSTRAP_SERVERS`` ...).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
from pathlib import Path

from sidecar.tokens import Issuer, Policy
from troupe.settings import settings


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"TROUPE_SIDECAR_{name.upper().replace('-', '_')}", default)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _sidecar_run(args: argparse.Namespace) -> int:
    from sidecar.server import SidecarSettings, run

    logging.basicConfig(level=settings().log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    missing = [name for name in ("service", "rules", "upstream", "issuer", "jwks_url", "audience")
               if not getattr(args, name)]
    if missing:
        options = ", ".join("--" + m.replace("_", "-") for m in missing)
        print(f"error: missing {options}", file=sys.stderr)
        return 2
    host, _, port = args.listen.rpartition(":")
    issuer = Issuer(
        issuer=args.issuer, jwks_url=args.jwks_url, audiences=_csv(args.audience),
        algorithms=_csv(args.algorithms), token_types=_csv(args.token_types),
        roles_claim=args.roles_claim,
    )
    run(SidecarSettings(
        service=args.service, rules_file=Path(args.rules), upstream=args.upstream,
        issuers=[issuer], kafka=settings().kafka, host=host or "127.0.0.1", port=int(port),
        instance_id=args.instance_id or "",
        spool_dir=Path(args.spool_dir) if args.spool_dir else settings().state_dir / "sidecar",
        policy=Policy(leeway_seconds=args.leeway, max_lifetime_seconds=args.max_lifetime,
                      token_cache_size=args.token_cache_size),
        workers=args.workers,
    ))
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from sidecar.audit import verify_records
    from sidecar.audit_kafka import read_all

    records = read_all(settings().kafka, args.topic)
    if args.instance:
        records = [r for r in records if r.instance_id == args.instance]
    report = verify_records(records, from_start=not args.allow_truncated_start)
    for instance, head in sorted(report.instances.items()):
        print(f"{instance}: up to #{head.sequence}")
    for problem in report.problems[: args.max_problems]:
        print(f"PROBLEM {problem}")
    hidden = len(report.problems) - args.max_problems
    if hidden > 0:
        print(f"... and {hidden} more problems")
    verdict = "OK" if report.ok else "FAILED"
    print(f"{verdict}: {report.records} records, {len(report.instances)} chains, "
          f"{len(report.problems)} problems")
    return 0 if report.ok else 1


def _audit_query(args: argparse.Namespace) -> int:
    import json

    from sidecar.auditview import AuditQuery, query_audit

    def when(value: str | None) -> dt.datetime | None:
        if not value:
            return None
        parsed = dt.datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)

    query = AuditQuery(user=args.user or "", entity=args.entity or "",
                       service=args.service or "", since=when(args.since),
                       until=when(args.until), outcome=args.outcome or "", limit=args.limit)
    for row in query_audit(settings().kafka, query, args.topic):
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
            continue
        actor = row.get("actor", {})
        print(f"{row.get('occurred_at', '')}  {actor.get('name', '-')} "
              f"({','.join(actor.get('roles', []))})  {row.get('service', '')} "
              f"{row.get('method', '')} {row.get('path', '')}  {row['outcome']}"
              f"{'  ' + row['reason'] if row.get('reason') else ''}")
        if "after" in row:
            print(f"    before: {json.dumps(row['before'], ensure_ascii=False)}")
            print(f"    after:  {json.dumps(row['after'], ensure_ascii=False)}")
    return 0


def _audit_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from sidecar.auditview import create_app

    host, _, port = args.listen.rpartition(":")
    uvicorn.run(create_app(settings().kafka, args.topic, args.sign_in_url), host=host or "127.0.0.1",
                port=int(port), log_level="warning", proxy_headers=False)
    return 0


def _idp_run(args: argparse.Namespace) -> int:
    from sidecar.devidp import run_idp

    host, _, port = args.listen.rpartition(":")
    run_idp(host or "127.0.0.1", int(port), issuer=args.issuer, audience=args.audience,
            key_dir=Path(args.key_dir) if args.key_dir else settings().state_dir / "idp")
    return 0


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sidecar = subparsers.add_parser("sidecar", help="the JWT/role/audit proxy of a service")
    verbs = sidecar.add_subparsers(dest="verb", required=True)
    run = verbs.add_parser("run", help="run a sidecar in front of one service instance")
    run.add_argument("--service", default=_env("service"))
    run.add_argument("--rules", default=_env("rules"), help="the service's rules YAML file")
    run.add_argument("--upstream", default=_env("upstream"),
                     help="the service instance, e.g. http://127.0.0.1:8001")
    run.add_argument("--listen", default=_env("listen", "127.0.0.1:8100"))
    run.add_argument("--issuer", default=_env("issuer"), help="the trusted token issuer (iss)")
    run.add_argument("--jwks-url", default=_env("jwks_url"))
    run.add_argument("--audience", default=_env("audience"), help="accepted aud values (csv)")
    run.add_argument("--algorithms", default=_env("algorithms", "RS256"),
                     help="algorithms pinned for the issuer (csv of RS256, ES256, EdDSA)")
    run.add_argument("--token-types", default=_env("token_types", "at+jwt"),
                     help="accepted typ headers (csv); Keycloak: JWT")
    run.add_argument("--roles-claim", default=_env("roles_claim", "roles"),
                     help="dotted path of the roles claim; Keycloak: realm_access.roles")
    run.add_argument("--instance-id", default=_env("instance_id"))
    run.add_argument("--spool-dir", default=_env("spool_dir"))
    run.add_argument("--leeway", type=float, default=float(_env("leeway", "30") or 30))
    run.add_argument("--max-lifetime", type=float,
                     default=float(_env("max_lifetime", "3600") or 3600))
    run.add_argument("--token-cache-size", type=int,
                     default=int(_env("token_cache_size", "10000") or 10000),
                     help="verified tokens recognized again by their exact text (time checks "
                          "still made on every request); 0: every request verified from scratch")
    run.add_argument("--workers", type=int, default=int(_env("workers", "1") or 1),
                     help="processes on the port (SO_REUSEPORT); each its own audit chain, "
                          "instance id + -w<n>")
    run.set_defaults(handler=_sidecar_run)

    audit = subparsers.add_parser("audit", help="the business audit (audit.events)")
    audit_verbs = audit.add_subparsers(dest="verb", required=True)
    verify = audit_verbs.add_parser(
        "verify", help="check every sidecar's hash chain: missing, altered, reordered records")
    verify.add_argument("--topic", default="audit.events")
    verify.add_argument("--instance", help="only this sidecar instance")
    verify.add_argument("--allow-truncated-start", action="store_true",
                        help="accept chains whose first records retention removed")
    verify.add_argument("--max-problems", type=int, default=50)
    verify.set_defaults(handler=_audit_verify)
    query = audit_verbs.add_parser(
        "query", help="who changed what, when; each change with the state before and after")
    query.add_argument("--topic", default="audit.events")
    query.add_argument("--user", help="subject, or part of the name")
    query.add_argument("--entity")
    query.add_argument("--service")
    query.add_argument("--since", help="ISO time, e.g. 2026-11-23T08:00 (UTC unless given)")
    query.add_argument("--until")
    query.add_argument("--outcome",
                       choices=["allowed", "denied_unauthenticated", "denied_forbidden",
                                "rejected"])
    query.add_argument("--limit", type=int, default=200)
    query.add_argument("--json", action="store_true", help="one JSON object per line")
    query.set_defaults(handler=_audit_query)
    serve = audit_verbs.add_parser(
        "serve", help="the audit view (REST API and page); run it behind a sidecar that "
                      "allows only the auditor role")
    serve.add_argument("--topic", default="audit.events")
    serve.add_argument("--listen", default="127.0.0.1:8095")
    serve.add_argument("--sign-in-url", default=_env("sign_in_url", "") or "",
                       help="the identity provider's login page the page sends auditors to, "
                            "e.g. http://127.0.0.1:8090/login")
    serve.set_defaults(handler=_audit_serve)

    idp = subparsers.add_parser("idp", help="the development identity provider")
    idp_verbs = idp.add_subparsers(dest="verb", required=True)
    idp_run = idp_verbs.add_parser("run", help="login page, demo users, RS256 tokens, JWKS")
    idp_run.add_argument("--listen", default="127.0.0.1:8090")
    idp_run.add_argument("--issuer", default=None,
                         help="iss of the tokens (default: http://<listen>)")
    idp_run.add_argument("--audience", default="troupe")
    idp_run.add_argument("--key-dir", default=None)
    idp_run.set_defaults(handler=_idp_run)
