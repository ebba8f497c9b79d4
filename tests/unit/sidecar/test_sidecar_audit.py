"""The audit chain, its verification, and the fsync'd spool."""

from __future__ import annotations

from pathlib import Path

from contracts.audit.v1.audit_pb2 import AuditEntry, AuditRecord
from sidecar.audit import GENESIS_HASH, Chain, ChainHead, Spool, entry_of, verify_records


def records(count: int, instance: str = "tickets-0", head: ChainHead | None = None) -> list[
    AuditRecord
]:
    chain = Chain(instance, head)
    return [chain.seal(AuditEntry(path=f"/tickets/{n}", entity_id=str(n)).SerializeToString())
            for n in range(count)]


def kinds(found: list[AuditRecord], from_start: bool = True) -> list[tuple[str, int]]:
    return [(p.kind, p.sequence) for p in verify_records(found, from_start).problems]


def test_a_sound_chain_verifies() -> None:
    chain = records(5)
    assert [r.sequence for r in chain] == [1, 2, 3, 4, 5]
    assert chain[0].previous_hash == GENESIS_HASH
    report = verify_records(chain + records(3, "other-0"))
    assert report.ok
    assert report.records == 8
    assert report.instances["tickets-0"].sequence == 5
    assert entry_of(chain[2]).entity_id == "2"


def test_a_missing_record_is_detected() -> None:
    chain = records(6)
    assert kinds(chain[:2] + chain[3:]) == [("missing", 3)]
    assert kinds(chain[1:]) == [("missing", 1)]
    assert kinds(chain[1:], from_start=False) == []


def test_an_altered_record_is_detected() -> None:
    chain = records(4)
    altered = AuditRecord()
    altered.CopyFrom(chain[1])
    altered.entry = AuditEntry(path="/tickets/999").SerializeToString()
    assert kinds([chain[0], altered, *chain[2:]]) == [("altered", 2)]
    # Re-hashing the altered record breaks the link from the next one.
    rechained = Chain("tickets-0", ChainHead.of(chain[0])).seal(altered.entry)
    assert kinds([chain[0], rechained, *chain[2:]]) == [("altered", 3)]


def test_reordered_and_duplicated_records_are_detected() -> None:
    chain = records(5)
    assert kinds([chain[0], chain[2], chain[1], chain[3], chain[4]]) == [("reordered", 2)]
    assert kinds([*chain[:3], chain[2], *chain[3:]]) == [("duplicate", 3)]


def test_a_chain_continues_from_its_head() -> None:
    first = records(3)
    rest = records(2, head=ChainHead.of(first[-1]))
    assert [r.sequence for r in rest] == [4, 5]
    assert verify_records(first + rest).ok


def test_the_spool_survives_reopening_and_cuts_a_torn_tail(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "tickets-0")
    chain = records(5)
    spool.append(chain[:2])
    spool.append(chain[2:4])
    with spool.path.open("ab") as file:
        file.write(b"\x00\x00\x01\x00torn")  # a frame whose write never finished
    reopened = Spool(tmp_path, "tickets-0")
    assert [r.sequence for r in reopened.records] == [1, 2, 3, 4]
    reopened.append([chain[4]])
    assert [r.sequence for r in Spool(tmp_path, "tickets-0").records] == [1, 2, 3, 4, 5]
    reopened.clear()
    assert Spool(tmp_path, "tickets-0").records == []
