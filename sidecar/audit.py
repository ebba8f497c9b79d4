"""The business audit: records, their hash chain, the on-disk spool, and verification.

Every sidecar instance numbers its records 1, 2, 3, ... and links each to the one
before by its hash (``contracts.audit.v1.AuditRecord``). ``verify_records`` finds
a record that is missing, altered, duplicated or out of order. Where records are
written (Kafka, or the spool while Kafka is away) is ``sidecar.audit_kafka``.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from contracts.audit.v1.audit_pb2 import AuditEntry, AuditRecord

GENESIS_HASH = bytes(32)
_DOMAIN = b"troupe-audit-v1\x00"


class AuditUnavailableError(Exception):
    """The record could not be made durable: the change must not be forwarded (503)."""


class AuditLog(Protocol):
    """Where the proxy writes records: ``write`` seals the entry into the chain and
    returns the record once it is durable, or raises AuditUnavailableError."""

    async def write(self, entry: AuditEntry) -> AuditRecord: ...


def chain_hash(instance_id: str, sequence: int, previous_hash: bytes, entry: bytes) -> bytes:
    return hashlib.sha256(
        _DOMAIN + instance_id.encode() + b"\x00" + sequence.to_bytes(8, "big")
        + previous_hash + entry
    ).digest()


@dataclass(frozen=True)
class ChainHead:
    sequence: int = 0
    hash: bytes = GENESIS_HASH

    @classmethod
    def of(cls, record: AuditRecord) -> ChainHead:
        return cls(record.sequence, record.hash)


class Chain:
    """The hash chain of one sidecar instance: seals entries into numbered records."""

    def __init__(self, instance_id: str, head: ChainHead | None = None) -> None:
        if not instance_id or "\x00" in instance_id:
            raise ValueError("an instance id is a non-empty string without NUL")
        self.instance_id = instance_id
        self.head = head or ChainHead()

    def seal(self, entry: bytes) -> AuditRecord:
        sequence = self.head.sequence + 1
        digest = chain_hash(self.instance_id, sequence, self.head.hash, entry)
        record = AuditRecord(
            instance_id=self.instance_id, sequence=sequence, previous_hash=self.head.hash,
            hash=digest, entry=entry,
        )
        self.head = ChainHead(sequence, digest)
        return record


@dataclass(frozen=True)
class Problem:
    instance_id: str
    sequence: int
    kind: str  # missing | altered | duplicate | reordered
    detail: str

    def __str__(self) -> str:
        return f"{self.instance_id} #{self.sequence}: {self.kind}: {self.detail}"


@dataclass
class _InstanceState:
    head: ChainHead
    seen: dict[int, bytes] = field(default_factory=dict)


@dataclass
class VerifyReport:
    records: int = 0
    instances: dict[str, ChainHead] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_records(records: Iterable[AuditRecord], from_start: bool = True) -> VerifyReport:
    """Checks the chains of records in the order they were read (one instance's records
    are in one partition, so read order is write order). ``from_start=False`` accepts
    chains whose first records were removed by retention."""
    report = VerifyReport()
    states: dict[str, _InstanceState] = {}
    gaps: list[tuple[str, int, int]] = []
    for record in records:
        report.records += 1
        instance, sequence = record.instance_id, record.sequence
        expected = chain_hash(instance, sequence, record.previous_hash, record.entry)
        if record.hash != expected:
            report.problems.append(Problem(instance, sequence, "altered",
                                           "the record's hash does not match its content"))
        state = states.get(instance)
        if state is None:
            state = states[instance] = _InstanceState(ChainHead())
            if not from_start:
                state.head = ChainHead(sequence - 1, record.previous_hash)
        if sequence in state.seen:
            kind = "duplicate" if state.seen[sequence] == record.hash else "altered"
            report.problems.append(Problem(instance, sequence, kind,
                                           "the sequence number appears more than once"))
            continue
        state.seen[sequence] = record.hash
        if sequence <= state.head.sequence:
            report.problems.append(Problem(instance, sequence, "reordered",
                                           f"comes after #{state.head.sequence}"))
            continue
        if sequence > state.head.sequence + 1:
            gaps.append((instance, state.head.sequence + 1, sequence - 1))
        elif record.previous_hash != state.head.hash:
            report.problems.append(Problem(instance, sequence, "altered",
                                           f"does not link to the hash of #{sequence - 1}"))
        state.head = ChainHead.of(record)
    # Sequence numbers skipped over that turned up later were reordered, not lost.
    for instance, first, last in gaps:
        seen = states[instance].seen
        for sequence in range(first, last + 1):
            if sequence not in seen:
                report.problems.append(Problem(instance, sequence, "missing", "not found"))
    report.instances = {instance: state.head for instance, state in states.items()}
    return report


def entry_of(record: AuditRecord) -> AuditEntry:
    entry = AuditEntry()
    entry.ParseFromString(record.entry)
    return entry


class Spool:
    """Records not yet in Kafka, in an append-only file that is fsync'd before a write
    returns. Frames: 4-byte length, 4-byte CRC-32, the serialized record. A frame torn
    by a crash (never acknowledged) is cut off when the spool is opened."""

    _FRAME = struct.Struct(">II")

    def __init__(self, directory: Path, instance_id: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{instance_id}.spool"
        self._directory = directory
        self.records: list[AuditRecord] = self._load()

    def _load(self) -> list[AuditRecord]:
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        records: list[AuditRecord] = []
        offset = 0
        while offset + self._FRAME.size <= len(data):
            length, crc = self._FRAME.unpack_from(data, offset)
            body = data[offset + self._FRAME.size : offset + self._FRAME.size + length]
            if len(body) != length or zlib.crc32(body) != crc:
                break
            record = AuditRecord()
            record.ParseFromString(body)
            records.append(record)
            offset += self._FRAME.size + length
        if offset != len(data):
            with self.path.open("r+b") as file:
                file.truncate(offset)
                os.fsync(file.fileno())
        return records

    def append(self, records: list[AuditRecord]) -> None:
        frames = bytearray()
        for record in records:
            body = record.SerializeToString()
            frames += self._FRAME.pack(len(body), zlib.crc32(body)) + body
        created = not self.path.exists()
        with self.path.open("ab") as file:
            file.write(frames)
            file.flush()
            os.fsync(file.fileno())
        if created:
            self._sync_directory()
        self.records.extend(records)

    def clear(self) -> None:
        with self.path.open("r+b") as file:
            file.truncate(0)
            os.fsync(file.fileno())
        self.records = []

    def _sync_directory(self) -> None:
        fd = os.open(self._directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
