"""``troupe kafka fetch|up|down|status``: the local Apache Kafka cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from troupe.kafka.local import KAFKA_VERSION, LocalCluster, LocalKafkaError, fetch
from troupe.settings import settings


def _data_dir() -> Path:
    return settings().state_dir / "kafka"


def _cluster(args: argparse.Namespace) -> LocalCluster:
    """The cluster in the state dir; options given on the command line override its layout."""
    saved = LocalCluster.load(_data_dir(), settings().cache_dir)
    brokers = getattr(args, "brokers", None) or saved.brokers
    port = getattr(args, "port", None) or saved.base_port
    return LocalCluster(_data_dir(), brokers, port, settings().cache_dir)


def _fetch(_args: argparse.Namespace) -> int:
    try:
        libs = fetch(settings().cache_dir)
    except LocalKafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Apache Kafka {KAFKA_VERSION}: {libs}")
    return 0


def _up(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    try:
        cluster.start(timeout=args.timeout)
    except LocalKafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(cluster.bootstrap_servers)
    return 0


def _down(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    cluster.stop()
    print("local Kafka stopped")
    return 0


def _status(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    for i in range(cluster.brokers):
        pid = cluster.pid(i)
        state = f"running (pid {pid})" if pid is not None else "stopped"
        print(f"node {i}  127.0.0.1:{cluster.port(i)}  {state}")
    # Exit status 0 only when every node runs, so scripts can test it.
    return 0 if cluster.running() else 1


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    kafka = subparsers.add_parser("kafka", help="the local Apache Kafka cluster (KRaft mode)")
    verbs = kafka.add_subparsers(dest="kafka_command", required=True)

    verbs.add_parser("fetch", help=f"download Apache Kafka {KAFKA_VERSION} from Maven Central").set_defaults(
        handler=_fetch
    )

    up = verbs.add_parser("up", help="start the local cluster and print its bootstrap servers")
    # Without options, the size and port of the cluster last started are kept.
    up.add_argument("--brokers", type=int, help="number of nodes (default 1)")
    up.add_argument("--port", type=int, help="port of node 0; node i uses port+i (default 19092)")
    up.add_argument("--timeout", type=float, default=120, help="seconds to wait for readiness")
    up.set_defaults(handler=_up)

    verbs.add_parser("down", help="stop the local cluster").set_defaults(handler=_down)
    verbs.add_parser("status", help="show which nodes run").set_defaults(handler=_status)
