"""The SQLite store: versions only move forward, lookups follow the latest state."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from troupe.state.store import EntityChange, LookupKey, Store


def change(
    entity_id: str, version: int, state: bytes, lookups: tuple[LookupKey, ...] | None = None
) -> EntityChange:
    return EntityChange(
        "customer.events",
        entity_id,
        version,
        "Changed",
        state,
        0,
        f"cmd-{entity_id}-{version}",
        lookups,
        applied_at=version * 1000,
    )


def test_an_older_version_never_overwrites_a_newer_one(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    store.apply([change("a", 2, b"two")], {("customer.events", 0): 5})
    store.apply([change("a", 1, b"one")], {("customer.events", 0): 6})
    stored = store.get("customer.events", "a")
    assert stored is not None
    assert (stored.version, stored.state) == (2, b"two")
    assert store.offsets() == {("customer.events", 0): 6}


def test_lookups_follow_the_latest_state(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    store.apply([change("a", 1, b"x", (("phone", "+1", 0),))], {})
    store.apply([change("a", 2, b"y", (("phone", "+2", 0),))], {})
    assert store.find("customer.events", "phone", "+1") == []
    assert store.find("customer.events", "phone", "+2") == ["a"]


def test_an_older_version_read_again_leaves_the_newer_lookups(tmp_path: Path) -> None:
    # Given the processor wrote version 2 and the replica reads version 1 afterwards
    store = Store(tmp_path / "s.sqlite")
    store.apply([change("a", 2, b"y", (("phone", "+2", 0),))], {("customer.events", 0): 8})
    # When
    store.apply([change("a", 1, b"x", (("phone", "+1", 0),))], {("customer.events", 0): 4})
    # Then version 2 stays whole: its state, its look-ups, its offset
    assert store.find("customer.events", "phone", "+2") == ["a"]
    assert store.find("customer.events", "phone", "+1") == []
    assert store.offsets() == {("customer.events", 0): 8}
    assert store.applied("customer.events", "cmd-a-2") == 2


def test_two_writers_interleaved_end_at_the_latest_of_each(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")

    def write(versions: range) -> None:
        for version in versions:
            store.apply([change("a", version, str(version).encode())], {("customer.events", 0): version + 1})

    writers = [threading.Thread(target=write, args=(range(start, 200, 2),)) for start in (1, 2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    stored = store.get("customer.events", "a")
    assert stored is not None
    assert (stored.version, stored.state) == (199, b"199")
    assert store.offsets() == {("customer.events", 0): 200}


def test_applied_commands_are_remembered(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    store.apply([change("a", 1, b"x")], {})
    assert store.applied("customer.events", "cmd-a-1") == 1
    assert store.applied("customer.events", "cmd-a-2") is None


def test_command_ids_are_forgotten_after_their_time(tmp_path: Path) -> None:
    # Given commands applied at 1 s, 2 s and 3 s
    store = Store(tmp_path / "s.sqlite")
    store.apply([change("a", 1, b"x"), change("b", 2, b"y"), change("c", 3, b"z")], {})
    # When the ids applied before 2.5 s are forgotten
    forgotten = store.forget_commands_applied_before(2_500)
    # Then only the last one is remembered, and the states are untouched
    assert forgotten == 2
    assert [store.applied("customer.events", f"cmd-{e}-{v}") for e, v in (("a", 1), ("b", 2), ("c", 3))] == [
        None,
        None,
        3,
    ]
    assert store.get("customer.events", "a") is not None


def test_a_store_of_another_schema_version_is_rebuilt_from_scratch(tmp_path: Path) -> None:
    # Given a store file written by an older schema (no applied_at column, version 0)
    path = tmp_path / "s.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE applied_commands (topic TEXT, command_id TEXT, entity_id TEXT, version INTEGER)")
    old.execute("CREATE TABLE offsets (topic TEXT, partition INTEGER, next_offset INTEGER)")
    old.execute("INSERT INTO offsets VALUES ('customer.events', 0, 42)")
    old.commit()
    old.close()
    # When it is opened
    store = Store(path)
    # Then it starts empty (so it is read again from the topics) and works
    assert store.offsets() == {}
    store.apply([change("a", 1, b"x")], {("customer.events", 0): 1})
    assert store.applied("customer.events", "cmd-a-1") == 1


def test_the_same_content_gives_the_same_snapshot_bytes(tmp_path: Path) -> None:
    one, two = Store(tmp_path / "1.sqlite"), Store(tmp_path / "2.sqlite")
    one.apply([change("a", 1, b"x"), change("b", 1, b"y")], {("customer.events", 0): 2})
    two.apply([change("b", 1, b"y")], {("customer.events", 0): 1})
    two.apply([change("a", 1, b"x")], {("customer.events", 0): 2})
    one.snapshot(tmp_path / "1.snap")
    two.snapshot(tmp_path / "2.snap")
    assert (tmp_path / "1.snap").read_bytes() == (tmp_path / "2.snap").read_bytes()


def test_scan_can_be_limited_to_partitions(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    store.apply(
        [
            EntityChange("customer.events", "a", 1, "T", b"a", 0),
            EntityChange("customer.events", "b", 1, "T", b"b", 1),
        ],
        {},
    )
    assert [e.entity_id for e in store.scan("customer.events", {1})] == ["b"]


def test_entities_found_by_lookup_come_with_their_state_and_can_be_limited_to_partitions(tmp_path: Path) -> None:
    # given two waiting calls in different partitions and one answered
    store = Store(tmp_path / "s.sqlite")
    waiting = (("state", "waiting", 0),)
    store.apply(
        [
            EntityChange("routing.events", "c1", 1, "CallWaiting", b"one", 0, "", waiting),
            EntityChange("routing.events", "c2", 3, "CallWaiting", b"two", 1, "", waiting),
            EntityChange("routing.events", "c3", 2, "RoutingCompleted", b"three", 1, "", ()),
        ],
        {},
    )
    # when the waiting ones are looked up, in all partitions and in partition 1 only
    everywhere = store.find_entities("routing.events", "state", "waiting")
    in_one = store.find_entities("routing.events", "state", "waiting", {1})
    # then each comes with its version and state
    assert [(e.entity_id, e.version, e.state) for e in everywhere] == [("c1", 1, b"one"), ("c2", 3, b"two")]
    assert [e.entity_id for e in in_one] == ["c2"]


def available(operator_id: str, idle_since: int, version: int = 1) -> EntityChange:
    """An operator available at msk, ranked by ``idle_since`` in the look-up ``available``."""
    keys = (("available", "msk", idle_since),)
    return EntityChange("operator.events", operator_id, version, "PresenceChanged", b"-", 0, "", keys)


def test_entities_found_by_an_ordered_lookup_come_in_its_order_and_can_be_read_one_at_a_time(tmp_path: Path) -> None:
    # given three operators available at one site, idle since different times
    store = Store(tmp_path / "s.sqlite")
    store.apply([available("olga", 30), available("ivan", 10), available("anna", 20)], {})
    # when they are found, and walked only as far as the first
    found = store.find_entities("operator.events", "available", "msk")
    first = next(store.walk_entities("operator.events", "available", "msk"))
    # then they come by rank, not by id, and the walk gives the same first one
    assert [e.entity_id for e in found] == ["ivan", "anna", "olga"]
    assert first.entity_id == "ivan"
    # and when ivan's rank changes, the order follows his latest state
    store.apply([available("ivan", idle_since=40, version=2)], {})
    assert store.find("operator.events", "available", "msk") == ["anna", "olga", "ivan"]


def test_a_walk_left_unfinished_does_not_hold_the_store_where_it_was(tmp_path: Path) -> None:
    # given a walk over ten available operators, taken only as far as the first
    store = Store(tmp_path / "s.sqlite")
    store.apply([available(f"op-{i}", i) for i in range(10)], {})
    walk = store.walk_entities("operator.events", "available", "msk")
    assert next(walk).entity_id == "op-0"
    # when another thread (the replica) writes a newer version of the last one
    writer = threading.Thread(target=store.apply, args=([available("op-9", 99, version=2)], {}))
    writer.start()
    writer.join()
    # then this thread reads it while the walk is still open
    stored = store.get("operator.events", "op-9")
    assert stored is not None
    assert stored.version == 2


def test_a_walk_leaves_out_the_entities_named_by_another_lookup(tmp_path: Path) -> None:
    # given two available operators, and a call offered to the one idle longest
    store = Store(tmp_path / "s.sqlite")
    offer = EntityChange("routing.events", "c1", 1, "OperatorOffered", b"c", 0, "", (("offered_to", "olga", 0),))
    store.apply([available("olga", 10), available("ivan", 20), offer], {})
    # when the available operators are walked, unless they have an offer
    free = store.walk_entities("operator.events", "available", "msk", unless=("routing.events", "offered_to"))
    # then olga is left out
    assert [e.entity_id for e in free] == ["ivan"]


def walked(store: Store) -> list[str]:
    return [e.entity_id for e in store.walk_entities("operator.events", "available", "msk")]


def test_a_held_entity_is_left_out_of_this_threads_walks_until_its_version_moves_on(tmp_path: Path) -> None:
    # given three available operators, and olga and ivan just chosen (held at version 1)
    store = Store(tmp_path / "s.sqlite")
    store.apply([available("olga", 10), available("ivan", 20), available("anna", 30)], {})
    store.hold("operator.events", "olga", 1, seconds=60)
    store.hold("operator.events", "ivan", 1, seconds=60)
    # when this thread walks them, and another thread does
    here = walked(store)
    elsewhere: list[list[str]] = []
    reader = threading.Thread(target=lambda: elsewhere.append(walked(store)))
    reader.start()
    reader.join()
    # then only this thread leaves them out
    assert here == ["anna"]
    assert elsewhere == [["olga", "ivan", "anna"]]
    # and once olga's version moves on (her answer arrived), she is walked again
    store.apply([available("olga", 10, version=2)], {})
    assert walked(store) == ["olga", "anna"]


def test_a_hold_lapses_after_its_time(tmp_path: Path) -> None:
    # given an operator held for no time at all (e.g. an offer whose transaction was aborted)
    store = Store(tmp_path / "s.sqlite")
    store.apply([available("olga", 10)], {})
    store.hold("operator.events", "olga", 1, seconds=0)
    # when the operators are walked, then she is there
    assert walked(store) == ["olga"]


def test_a_newly_declared_lookup_is_computed_for_the_entities_already_stored(tmp_path: Path) -> None:
    # given a store built before any look-up was declared for the topic
    store = Store(tmp_path / "s.sqlite")
    store.apply([change("a", 1, b"+1"), change("b", 1, b"+2")], {})

    def phones(state: bytes) -> tuple[LookupKey, ...]:
        return (("phone", state.decode(), 0),)

    # when the service starts with the look-up "phone" declared
    first = store.index_lookups("customer.events", ["phone"], phones)
    again = store.index_lookups("customer.events", ["phone"], phones)
    # then the stored entities are findable by it, and the work is done once
    assert (first, again) == (True, False)
    assert store.find("customer.events", "phone", "+2") == ["b"]
