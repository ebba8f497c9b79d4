"""``troupe run``, ``troupe rebuild``, ``troupe store``, ``troupe topology``."""

from __future__ import annotations

import argparse
import sys
import time

from contracts.events.v1 import envelope_pb2
from troupe.observability import logs
from troupe.service import dead_letters, registry
from troupe.service.main import options_parser, start
from troupe.service.rebuild import rebuild
from troupe.service.runtime import Runtime, RuntimeOptions
from troupe.settings import settings
from troupe.state.store import Store


def _run(args: argparse.Namespace) -> int:
    start(args.service, args)
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    config = settings()
    logs.configure(config.log_level)
    service = registry.load(args.service)
    options = RuntimeOptions(state_dir=config.state_dir, instance=args.instance)
    started = time.monotonic()
    count = rebuild(service, config.kafka, Runtime.store_path(service.name, options))
    print(f"rebuilt {service.name} store: {count} entities in {time.monotonic() - started:.1f}s")
    return 0


def _dump(args: argparse.Namespace) -> int:
    config = settings()
    service = registry.load(args.service)
    path = Runtime.store_path(service.name, RuntimeOptions(state_dir=config.state_dir, instance=args.instance))
    if not path.exists():
        print(f"no store at {path}", file=sys.stderr)
        return 1
    for line in Store(path).dump():
        print(line)
    return 0


def _topology(args: argparse.Namespace) -> int:
    for name in args.services or registry.names():
        print(registry.load(name).topology())
    return 0


def _dlq_list(args: argparse.Namespace) -> int:
    for letter in dead_letters.read(settings().kafka, args.service):
        reason = envelope_pb2.DeadLetterReason.Name(letter.reason).removeprefix("DEAD_LETTER_REASON_")
        print(
            f"{letter.topic}[{letter.partition}]@{letter.offset}\t{reason}\t{letter.attempts}\t"
            f"{letter.entity_id}\t{letter.record_id}\t{letter.error}"
        )
    return 0


def _dlq_retry(args: argparse.Namespace) -> int:
    wanted = set(args.record_ids)
    letters = [
        letter
        for letter in dead_letters.read(settings().kafka, args.service)
        if (args.all or letter.record_id in wanted) and letter.reason != envelope_pb2.DEAD_LETTER_REASON_UNDECODABLE
    ]
    if not letters:
        print("nothing to retry", file=sys.stderr)
        return 1
    print(f"sent back {dead_letters.retry(settings().kafka, letters)} records")
    return 0


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = subparsers.add_parser("run", parents=[options_parser()], help="run one instance of a service")
    run.add_argument("service")
    run.set_defaults(handler=_run)

    rebuild_parser = subparsers.add_parser("rebuild", help="drop a service's store and replay its topic")
    rebuild_parser.add_argument("service")
    rebuild_parser.add_argument("--instance", default="0")
    rebuild_parser.set_defaults(handler=_rebuild)

    store = subparsers.add_parser("store", help="inspect a service's local store")
    store_verbs = store.add_subparsers(dest="verb", required=True)
    dump = store_verbs.add_parser("dump", help="print the store in canonical form")
    dump.add_argument("service")
    dump.add_argument("--instance", default="0")
    dump.set_defaults(handler=_dump)

    dlq = subparsers.add_parser("dlq", help="a service's dead letters")
    dlq_verbs = dlq.add_subparsers(dest="verb", required=True)
    dlq_list = dlq_verbs.add_parser("list", help="print every record of <service>.dlq")
    dlq_list.add_argument("service")
    dlq_list.set_defaults(handler=_dlq_list)
    dlq_retry = dlq_verbs.add_parser("retry", help="send dead letters back to their topic")
    dlq_retry.add_argument("service")
    dlq_retry.add_argument("record_ids", nargs="*", help="command or event ids to retry")
    dlq_retry.add_argument("--all", action="store_true", help="retry every decodable record")
    dlq_retry.set_defaults(handler=_dlq_retry)

    topology = subparsers.add_parser("topology", help="print the choreography map from the declarations")
    topology.add_argument("services", nargs="*")
    topology.set_defaults(handler=_topology)
