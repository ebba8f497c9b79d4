"""The ``troupe`` command. Each area of the kit adds its own sub-commands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules that expose ``add_commands(subparsers)``; each registers its own verbs.
COMMAND_MODULES = (
    "troupe.kafka.commands",
    "troupe.contracts_build",
    "troupe.service.commands",
    "troupe.local.commands",
    "sidecar.commands",
    "troupe.release.commands",
    "troupe.compiled",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="troupe", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = args.handler(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
