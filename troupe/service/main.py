"""Running a service process, as ``python -m services.<name>`` or ``troupe run``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from troupe.observability import logs
from troupe.service.registry import load
from troupe.service.runtime import Runtime, RuntimeOptions
from troupe.settings import settings


def options_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--instance",
        default=os.environ.get("TROUPE_INSTANCE", "0"),
        help="instance id, stable across restarts (names its store and transactional id)",
    )
    parser.add_argument(
        "--grpc",
        default=os.environ.get("TROUPE_GRPC_ADDRESS", "127.0.0.1:0"),
        help="gRPC listen address",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("TROUPE_METRICS_PORT", "0")),
        help="Prometheus /metrics port (0: off)",
    )
    return parser


def run_service(spec: str, argv: Sequence[str] | None = None) -> None:
    args = argparse.ArgumentParser(parents=[options_parser()]).parse_args(argv)
    start(spec, args)


def start(spec: str, args: argparse.Namespace) -> None:
    config = settings()
    service = load(spec)
    logs.configure(config.log_level, component=f"{service.name}-{args.instance}")
    options = RuntimeOptions(
        state_dir=config.state_dir,
        instance=args.instance,
        grpc_address=args.grpc,
        metrics_port=args.metrics_port,
    )
    Runtime(service, config.kafka, options).run_forever()
