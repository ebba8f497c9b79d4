"""The local store: entity states materialized from Kafka topics, in SQLite.

One table holds the latest state of every entity of every materialized topic
(the service's own topic, and the projections of other services' topics it
needs), another the next offset to read per partition. Both are written in one
SQLite transaction per batch, so the store always equals a replay of the topics
up to its offsets, and dropping it and replaying rebuilds it exactly.

The schema has a version (``PRAGMA user_version``): a store written by another
version is dropped at start and rebuilt from the topics, which is always safe
because the topics are the source of truth.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    topic TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    partition INTEGER NOT NULL,
    version INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (topic, entity_id)
) WITHOUT ROWID;
-- Which command produced which version: commands are applied once per id, for
-- as long as the id is kept (applied_at: the event's time, Unix milliseconds).
CREATE TABLE IF NOT EXISTS applied_commands (
    topic TEXT NOT NULL,
    command_id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    applied_at INTEGER NOT NULL,
    PRIMARY KEY (topic, command_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS applied_commands_by_time ON applied_commands (applied_at);
-- rank: the look-up's order among the entities with the same value (0 if it has
-- none), so the first of them is read without reading them all.
CREATE TABLE IF NOT EXISTS lookups (
    topic TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    rank INTEGER NOT NULL,
    entity_id TEXT NOT NULL,
    PRIMARY KEY (topic, name, value, rank, entity_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lookups_by_entity ON lookups (topic, entity_id);
CREATE TABLE IF NOT EXISTS lookup_names (
    topic TEXT NOT NULL PRIMARY KEY,
    names TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS offsets (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
) WITHOUT ROWID;
"""
# Holds (Store.hold): per connection, so per thread, and not part of the store's file.
HELD = """
CREATE TEMP TABLE IF NOT EXISTS held (
    topic TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (topic, entity_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS temp.held_until ON held (until);
"""


@dataclass(frozen=True, slots=True)
class StoredEntity:
    entity_id: str
    version: int
    event_type: str
    state: bytes


SCHEMA_VERSION = 3
TABLES = ("entities", "applied_commands", "lookups", "lookup_names", "offsets")

# (topic, command id, entity id, version it produced, its event's time in Unix ms)
AppliedCommand = tuple[str, str, str, int, int]
# A secondary key to find an entity by: (name, value, rank), e.g. ("phone", "+7916...", 0).
LookupKey = tuple[str, str, int]
# Rows per query of Store.walk_entities: a choice usually takes one of the first
# few, a longer walk gets longer pages.
_FIRST_WALK_PAGE, _LAST_WALK_PAGE = 4, 64
_INSERT_LOOKUP = "INSERT OR IGNORE INTO lookups (topic, name, value, rank, entity_id) VALUES (?, ?, ?, ?, ?)"


@dataclass(frozen=True, slots=True)
class EntityChange:
    """One event applied to the store; older versions than the stored one are ignored."""

    topic: str
    entity_id: str
    version: int
    event_type: str
    state: bytes
    partition: int = 0
    # The command that caused the change, if any.
    command_id: str = ""
    # Secondary keys to find the entity by.
    lookups: tuple[LookupKey, ...] | None = None
    # When the command was applied (its event's time, Unix ms).
    applied_at: int = 0


def _found_by(
    topic: str, name: str, value: str, unless: tuple[str, str] | None = None, held_at: float | None = None
) -> tuple[str, tuple[Any, ...]]:
    """The query (without its order) of the entities with a look-up value, and its
    parameters; without those named by ``unless`` and, if ``held_at`` is given,
    those held at that moment."""
    query = (
        "SELECT e.entity_id, e.version, e.event_type, e.state, e.partition, l.rank FROM lookups l"
        " JOIN entities e ON e.topic = l.topic AND e.entity_id = l.entity_id"
        " WHERE l.topic = ? AND l.name = ? AND l.value = ?"
    )
    parameters: tuple[Any, ...] = (topic, name, value)
    if unless is not None:
        query += " AND NOT EXISTS (SELECT 1 FROM lookups u WHERE u.topic = ? AND u.name = ? AND u.value = l.entity_id)"
        parameters += unless
    if held_at is not None:
        query += (
            " AND NOT EXISTS (SELECT 1 FROM temp.held h WHERE h.topic = l.topic AND h.entity_id = l.entity_id"
            " AND h.version = e.version AND h.until > ?)"
        )
        parameters += (held_at,)
    return query, parameters


def _entities(rows: list[Any], partitions: set[int] | frozenset[int] | None) -> list[StoredEntity]:
    return [
        StoredEntity(entity_id, version, event_type, state)
        for entity_id, version, event_type, state, partition, _rank in rows
        if partitions is None or partition in partitions
    ]


class Store:
    """SQLite store; one writer (the replica thread), readers on any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        db = self._connection()
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if tables and version != SCHEMA_VERSION:
            log.warning(
                "store written by another schema version: rebuilding it from the topics",
                extra={"path": str(path), "found": version, "expected": SCHEMA_VERSION},
            )
            for table in TABLES:
                db.execute(f"DROP TABLE IF EXISTS {table}")
        db.executescript(SCHEMA)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # WAL lets readers run beside the writer; NORMAL sync is safe in WAL
            # because the store can always be rebuilt from Kafka.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(HELD)
            self._local.db = db
        return db

    def apply(
        self,
        changes: Iterable[EntityChange],
        offsets: dict[tuple[str, int], int],
        applied: Iterable[AppliedCommand] = (),
    ) -> None:
        """Applies a batch of events, the commands they applied and the offsets
        after them, atomically. Two writers may apply the same events (the
        processor writes what it committed, the replica what it reads), so a
        change not newer than the stored version is skipped, look-ups included,
        and an offset never moves back."""
        db = self._connection()
        # The write lock up front: a read that later wants to write can fail
        # at once when the other writer got there first; a waiting BEGIN cannot.
        db.execute("BEGIN IMMEDIATE")
        try:
            latest = self._newer_than_stored(changes)
            db.executemany(
                "INSERT INTO entities (topic, entity_id, partition, version, event_type, state)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (topic, entity_id) DO UPDATE SET"
                " version = excluded.version, event_type = excluded.event_type,"
                " state = excluded.state WHERE excluded.version > entities.version",
                ((c.topic, c.entity_id, c.partition, c.version, c.event_type, c.state) for c in latest),
            )
            db.executemany(
                "INSERT OR IGNORE INTO applied_commands (topic, command_id, entity_id, version, applied_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    *((c.topic, c.command_id, c.entity_id, c.version, c.applied_at) for c in latest if c.command_id),
                    *applied,
                ],
            )
            indexed = [c for c in latest if c.lookups is not None]
            if indexed:
                db.executemany(
                    "DELETE FROM lookups WHERE topic = ? AND entity_id = ?", [(c.topic, c.entity_id) for c in indexed]
                )
                db.executemany(
                    _INSERT_LOOKUP,
                    [(c.topic, *key, c.entity_id) for c in indexed for key in c.lookups or ()],
                )
            db.executemany(
                "INSERT INTO offsets (topic, partition, next_offset) VALUES (?, ?, ?)"
                " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset"
                " WHERE excluded.next_offset > offsets.next_offset",
                ((topic, partition, offset) for (topic, partition), offset in offsets.items()),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _newer_than_stored(self, changes: Iterable[EntityChange]) -> list[EntityChange]:
        """The latest change of each entity, if it is newer than the stored version."""
        latest: dict[tuple[str, str], EntityChange] = {}
        for change in changes:
            known = latest.get((change.topic, change.entity_id))
            if known is None or change.version > known.version:
                latest[(change.topic, change.entity_id)] = change
        stored: dict[tuple[str, str], int] = {}
        for topic in {topic for topic, _ in latest}:
            ids = [entity_id for t, entity_id in latest if t == topic]
            stored.update({(topic, entity_id): version for entity_id, version in self.versions(topic, ids).items()})
        return [c for key, c in latest.items() if c.version > stored.get(key, 0)]

    def get(self, topic: str, entity_id: str) -> StoredEntity | None:
        row = (
            self._connection()
            .execute(
                "SELECT version, event_type, state FROM entities WHERE topic = ? AND entity_id = ?",
                (topic, entity_id),
            )
            .fetchone()
        )
        return StoredEntity(entity_id, row[0], row[1], row[2]) if row else None

    def find(self, topic: str, name: str, value: str) -> list[str]:
        """Ids of the entities with the lookup key ``name`` = ``value``, in the look-up's order."""
        rows = self._connection().execute(
            "SELECT entity_id FROM lookups WHERE topic = ? AND name = ? AND value = ? ORDER BY rank, entity_id",
            (topic, name, value),
        )
        return [row[0] for row in rows]

    def find_entities(
        self, topic: str, name: str, value: str, partitions: set[int] | frozenset[int] | None = None
    ) -> list[StoredEntity]:
        """The entities with the look-up key ``name`` = ``value`` (in ``partitions``
        if given), in the look-up's order, in one query."""
        query, parameters = _found_by(topic, name, value)
        rows = self._connection().execute(query + " ORDER BY l.rank, l.entity_id", parameters).fetchall()
        return _entities(rows, partitions)

    def walk_entities(
        self,
        topic: str,
        name: str,
        value: str,
        partitions: set[int] | frozenset[int] | None = None,
        unless: tuple[str, str] | None = None,
    ) -> Iterator[StoredEntity]:
        """``find_entities`` read a page at a time as the caller goes on: the index
        is in the look-up's order, so taking the first few reads only those. Each
        page is a query of its own, so no read stays open while the caller works
        (an open read would hold this thread's view of the store where it was).
        ``unless`` (topic, look-up name) leaves out the entities whose id is a value
        of that look-up, e.g. operators who have an offer; this thread's holds
        (``hold``) are left out too."""
        query, parameters = _found_by(topic, name, value, unless, held_at=time.monotonic())
        db = self._connection()
        after: tuple[int, str] | None = None
        size = _FIRST_WALK_PAGE
        while True:
            page_query = query + (" AND (l.rank, l.entity_id) > (?, ?)" if after else "")
            page = db.execute(
                page_query + " ORDER BY l.rank, l.entity_id LIMIT ?", (*parameters, *(after or ()), size)
            ).fetchall()
            yield from _entities(page, partitions)
            if len(page) < size:
                return
            after = (page[-1][5], page[-1][0])
            size = min(2 * size, _LAST_WALK_PAGE)

    def hold(self, topic: str, entity_id: str, version: int, seconds: float) -> None:
        """Leaves the entity out of this thread's walks while the store shows it at
        ``version``, for at most ``seconds``: for a choice the store cannot show yet
        (routing's offer in the open transaction), so that the next choice, made
        before it does, takes someone else. Left out inside the query, a long list
        of holds costs the walk little."""
        now = time.monotonic()
        db = self._connection()
        db.execute("DELETE FROM temp.held WHERE until <= ?", (now,))
        db.execute(
            "INSERT OR REPLACE INTO temp.held (topic, entity_id, version, until) VALUES (?, ?, ?, ?)",
            (topic, entity_id, version, now + seconds),
        )

    def index_lookups(self, topic: str, names: list[str], keys: Callable[[bytes], tuple[LookupKey, ...]]) -> bool:
        """Recomputes the look-ups of every stored entity of ``topic`` if the declared
        names differ from those the store was built with (a new version of the
        service declared a new look-up); returns whether it did."""
        db = self._connection()
        wanted = ",".join(sorted(names))
        row = db.execute("SELECT names FROM lookup_names WHERE topic = ?", (topic,)).fetchone()
        if row is not None and row[0] == wanted:
            return False
        db.execute("BEGIN")
        try:
            db.execute("DELETE FROM lookups WHERE topic = ?", (topic,))
            states = db.execute("SELECT entity_id, state FROM entities WHERE topic = ?", (topic,)).fetchall()
            db.executemany(
                _INSERT_LOOKUP,
                [(topic, *key, entity_id) for entity_id, state in states for key in keys(state)],
            )
            db.execute(
                "INSERT INTO lookup_names (topic, names) VALUES (?, ?)"
                " ON CONFLICT (topic) DO UPDATE SET names = excluded.names",
                (topic, wanted),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return True

    def versions(self, topic: str, entity_ids: list[str]) -> dict[str, int]:
        rows = self._rows_in(
            "SELECT entity_id, version FROM entities WHERE topic = ? AND entity_id IN", topic, entity_ids
        )
        return dict(rows)

    def scan(self, topic: str, partitions: set[int] | None = None) -> Iterator[StoredEntity]:
        """Every entity of the topic (or of some of its partitions), by id."""
        query = "SELECT entity_id, version, event_type, state FROM entities WHERE topic = ?"
        if partitions is not None:
            query += f" AND partition IN ({','.join(str(int(p)) for p in sorted(partitions))})"
        rows = self._connection().execute(f"{query} ORDER BY entity_id", (topic,))
        for entity_id, version, event_type, state in rows:
            yield StoredEntity(entity_id, version, event_type, state)

    def applied_among(self, topic: str, command_ids: list[str]) -> set[str]:
        """Which of these commands were applied already."""
        query = "SELECT command_id FROM applied_commands WHERE topic = ? AND command_id IN"
        return {row[0] for row in self._rows_in(query, topic, command_ids)}

    def _rows_in(self, query: str, topic: str, keys: list[str]) -> list[Any]:
        """``query (?, ?, ...)`` over ``keys``, in slices: SQLite limits bound parameters."""
        db = self._connection()
        rows: list[Any] = []
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows += db.execute(f"{query} ({','.join('?' * len(chunk))})", (topic, *chunk)).fetchall()
        return rows

    def applied(self, topic: str, command_id: str) -> int | None:
        """The version a command produced, if it was applied."""
        row = (
            self._connection()
            .execute(
                "SELECT version FROM applied_commands WHERE topic = ? AND command_id = ?",
                (topic, command_id),
            )
            .fetchone()
        )
        return int(row[0]) if row else None

    def forget_commands_applied_before(self, unix_ms: int) -> int:
        """Drops the ids of commands applied before ``unix_ms``; how many."""
        cursor = self._connection().execute("DELETE FROM applied_commands WHERE applied_at < ?", (unix_ms,))
        return int(cursor.rowcount)

    def offsets(self) -> dict[tuple[str, int], int]:
        rows = self._connection().execute("SELECT topic, partition, next_offset FROM offsets")
        return {(topic, partition): offset for topic, partition, offset in rows}

    def snapshot(self, target: Path) -> None:
        """A compact copy whose bytes depend only on the content (``VACUUM INTO``)."""
        target.unlink(missing_ok=True)
        self._connection().execute("VACUUM INTO ?", (str(target),))

    def dump(self) -> Iterator[str]:
        """Every row in a canonical text form, for comparing stores."""
        db = self._connection()
        for row in db.execute(
            "SELECT topic, entity_id, partition, version, event_type, hex(state) FROM entities"
            " ORDER BY topic, entity_id"
        ):
            yield "entity\t" + "\t".join(str(v) for v in row)
        for row in db.execute("SELECT * FROM applied_commands ORDER BY topic, command_id"):
            yield "applied\t" + "\t".join(str(v) for v in row)
        for row in db.execute("SELECT * FROM lookups ORDER BY topic, name, value, entity_id"):
            yield "lookup\t" + "\t".join(str(v) for v in row)
        for row in db.execute("SELECT * FROM lookup_names ORDER BY topic"):
            yield "lookup names\t" + "\t".join(str(v) for v in row)
        for row in db.execute("SELECT * FROM offsets ORDER BY topic, partition"):
            yield "offset\t" + "\t".join(str(v) for v in row)

    def close(self) -> None:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
