"""The same work with FastStream (aiokafka), at-least-once.

FastStream has no Kafka transactions in its consume loop (0.7.8 passes a
transactional id on to aiokafka's producer, but has no way to commit a handler's
output together with the consumed offsets): output and offsets are not committed
atomically, so a crash between the two duplicates effects (or, with
its default AckPolicy.ACK_FIRST, loses them). The loop measured here is its
at-least-once form: a batch subscriber with AckPolicy.ACK, every event published
and confirmed by Kafka before the batch's offsets are committed. Entity states
live in a dict, as in the plain loop.

Run by the benchmark: ``python -m bench.runtime.faststream_loop ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import threading
from typing import Any

from . import work
from .child import arguments, emit, listen_for_stop

MAX_BATCH = 5_000


def build(args: argparse.Namespace) -> Any:
    faststream = importlib.import_module("faststream")
    kafka = importlib.import_module("faststream.kafka")
    broker = kafka.KafkaBroker(
        args.bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        compression_type="lz4",
    )
    states: dict[str, tuple[int, bytes]] = {}
    message_context = faststream.Context("message")

    async def handle(_bodies: list[bytes], message: Any = message_context) -> None:
        sent = []
        for record in message.raw_message:
            command = work.decode(record.value)
            entity_id = command.entity_id
            version, state = states.get(entity_id) or (0, b"")
            event, new_state = work.decide(command, version, state)
            headers = {k: v.decode() for k, v in record.headers or () if k == work.TRACEPARENT}
            sent.append(await broker.publish(event, args.output, key=record.key, headers=headers, no_confirm=True))
            states[entity_id] = (version + 1, new_state)
        # Every event confirmed before FastStream commits the batch's offsets.
        await asyncio.gather(*sent)

    broker.subscriber(
        args.input,
        group_id=args.group,
        batch=True,
        max_records=MAX_BATCH,
        batch_timeout_ms=100,
        auto_offset_reset="earliest",
        ack_policy=faststream.AckPolicy.ACK,
    )(handle)
    return broker


async def serve(args: argparse.Namespace) -> None:
    broker = build(args)
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()

    listen_for_stop(lambda: loop.call_soon_threadsafe(stopped.set))
    await broker.start()
    emit(event="started", threads={threading.get_native_id(): "loop"})
    await stopped.wait()
    await broker.stop()


def main() -> None:
    args = arguments().parse_args()
    asyncio.run(serve(args))
    emit(event="stopped")


if __name__ == "__main__":
    main()
