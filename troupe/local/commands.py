"""``troupe up`` and ``troupe tail``."""

from __future__ import annotations

import argparse
import contextlib

from troupe.local.tail import tail
from troupe.local.up import up
from troupe.settings import settings


def _up(args: argparse.Namespace) -> int:
    return up(settings(), brokers=args.brokers, seconds=args.seconds, port=args.port)


def _tail(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        tail(settings().kafka, from_beginning=args.from_beginning)
    return 0


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up_parser = subparsers.add_parser("up", help="run the whole layer locally with demo traffic")
    up_parser.add_argument("--brokers", type=int, default=1, help="Kafka brokers (3 for a cluster)")
    up_parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    up_parser.add_argument("--port", type=int, default=19092, help="Kafka port; components use port+1000 and up")
    up_parser.set_defaults(handler=_up)

    tail_parser = subparsers.add_parser("tail", help="print every cascade as it happens")
    tail_parser.add_argument("--from-beginning", action="store_true")
    tail_parser.set_defaults(handler=_tail)
