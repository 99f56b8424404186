"""The feedback database: one SQLite file, safe for many threads and processes at once.

Why SQLite in WAL mode: readers never block the writer, and two ``qa serve`` replicas (or
``qa feedback purge`` next to a server) can share the file; ``busy_timeout`` makes a writer
wait for the lock instead of failing. Every call opens its own short connection, so no
connection is ever shared between threads or carried across a fork.

The file lies outside the index folder's builds (see ``feedback_path``): a new build, a
rebuild or a restart never touches it. Entries older than ``days`` are deleted when the
store is opened and then at most once an hour (``purge_if_due``): queries can be personal
data. The schema carries ``PRAGMA user_version`` so a later release can migrate it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from qa.config import Settings

Vote = Literal["up", "down", "opened", "none"]
VOTES: tuple[Vote, ...] = ("up", "down", "opened", "none")
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
PURGE_EVERY_S = 3600.0
_TIME = "%Y-%m-%dT%H:%M:%SZ"  # fixed width: text order is time order

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    query TEXT NOT NULL,
    vote TEXT NOT NULL CHECK (vote IN ('up', 'down', 'opened', 'none')),
    source TEXT,
    span_start INTEGER,
    span_end INTEGER,
    span_text TEXT,
    user_name TEXT,
    index_version TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_at ON feedback (at);
CREATE TABLE IF NOT EXISTS searches (
    day TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
"""


class FeedbackError(Exception):
    """The database cannot be opened, read or written; the message names the file."""


def feedback_path(settings: Settings) -> Path:
    """``QA_FEEDBACK_DB``, else ``feedback.sqlite3`` in the index folder's parent: beside
    the index, never inside the builds that are swapped and deleted."""
    if settings.feedback_db is not None:
        return Path(settings.feedback_db)
    return Path(settings.index_dir).parent / "feedback.sqlite3"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Entry:
    """One vote, exactly what is stored: no address, agent or groups. ``source``, the span
    and its text are None for a "none" vote; ``user`` is None unless signed in."""

    query: str
    vote: Vote
    index_version: str
    source: str | None = None
    start: int | None = None
    end: int | None = None
    text: str | None = None
    user: str | None = None
    at: str = ""  # UTC, "YYYY-MM-DDTHH:MM:SSZ"; set by the store when empty


class FeedbackStore:
    """The feedback file at ``path``, keeping ``days`` days of entries."""

    def __init__(self, path: Path, days: int, clock: Callable[[], datetime] = utc_now) -> None:
        self.path = Path(path)
        self.days = days
        self.clock = clock
        self._opened = False
        self._last_purge = float("-inf")
        self.deleted = 0  # votes deleted by this object's purges, for `qa feedback purge`
        self._lock = threading.Lock()

    # --- connections ---------------------------------------------------------------------

    def _fail(self, exc: BaseException, doing: str) -> FeedbackError:
        return FeedbackError(f"cannot {doing} the feedback database {self.path}: {exc}")

    @contextmanager
    def _connect(self, doing: str, write: bool) -> Iterator[sqlite3.Connection]:
        """A connection for one call; with ``write`` inside ``BEGIN IMMEDIATE`` (the write
        lock taken up front: no deadlock upgrading a read lock), committed on success."""
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if write:
                conn.execute("BEGIN IMMEDIATE")
            yield conn
            if write:
                conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            if conn is not None and conn.in_transaction:
                conn.rollback()
            raise self._fail(exc, doing) from exc
        finally:
            if conn is not None:
                conn.close()

    def open(self) -> None:
        """Create the file and schema if needed (WAL mode), then delete expired entries.
        Cheap after the first success; retried on the next call after a failure."""
        if self._opened:
            return
        with self._lock:
            if self._opened:
                return
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._fail(exc, "create the folder of") from exc
            with self._connect("open", write=False) as conn:
                mode = _wal(conn)
                if mode != "wal":
                    raise FeedbackError(f"{self.path}: WAL mode unavailable ({mode})")
            with self._connect("create the schema of", write=True) as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise FeedbackError(
                        f"{self.path} has schema {version}, newer than this qa ({SCHEMA_VERSION})"
                    )
                if version < 1:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._opened = True
        self.purge()

    # --- writing -------------------------------------------------------------------------

    def add(self, entry: Entry) -> None:
        """Store one vote (one transaction)."""
        self.open()
        at = entry.at or self.clock().strftime(_TIME)
        with self._connect("write to", write=True) as conn:
            conn.execute(
                "INSERT INTO feedback (at, query, vote, source, span_start, span_end, "
                "span_text, user_name, index_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (at, entry.query, entry.vote, entry.source, entry.start, entry.end,
                 entry.text, entry.user, entry.index_version),
            )  # fmt: skip

    def add_searches(self, counts: dict[str, int]) -> None:
        """Add search counts per UTC day (``YYYY-MM-DD``): counts only, never a query."""
        if not counts:
            return
        self.open()
        with self._connect("write to", write=True) as conn:
            conn.executemany(
                "INSERT INTO searches (day, count) VALUES (?, ?) "
                "ON CONFLICT (day) DO UPDATE SET count = count + excluded.count",
                sorted(counts.items()),
            )

    # --- retention -----------------------------------------------------------------------

    def purge(self, older_than_days: int | None = None, everything: bool = False) -> int:
        """Delete entries older than ``older_than_days`` (default: the retention), or all;
        search counts of those days too. Returns how many votes were deleted."""
        self.open()
        days = self.days if older_than_days is None else older_than_days
        cutoff = self.clock() - timedelta(days=days)
        with self._connect("purge", write=True) as conn:
            if everything:
                deleted = conn.execute("DELETE FROM feedback").rowcount
                conn.execute("DELETE FROM searches")
            else:
                deleted = conn.execute(
                    "DELETE FROM feedback WHERE at < ?", (cutoff.strftime(_TIME),)
                ).rowcount
                conn.execute("DELETE FROM searches WHERE day < ?", (cutoff.strftime("%Y-%m-%d"),))
        self._last_purge = time.monotonic()
        self.deleted += deleted
        return int(deleted)

    def purge_if_due(self) -> int:
        """``purge()`` when the last one is an hour old or more (a long-running server)."""
        if time.monotonic() - self._last_purge < PURGE_EVERY_S:
            return 0
        return self.purge()

    # --- reading -------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Every stored vote, oldest first."""
        self.open()
        with self._connect("read", write=False) as conn:
            rows = conn.execute(
                "SELECT query, vote, index_version, source, span_start, span_end, span_text, "
                "user_name, at FROM feedback ORDER BY at, id"
            ).fetchall()
        return [Entry(*row) for row in rows]

    def searches(self) -> dict[str, int]:
        """Search counts per UTC day."""
        self.open()
        with self._connect("read", write=False) as conn:
            return dict(conn.execute("SELECT day, count FROM searches ORDER BY day").fetchall())

    def journal_mode(self) -> str:
        with self._connect("read", write=False) as conn:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


def _wal(conn: sqlite3.Connection) -> str:
    """Switch the file to WAL (kept in the file: later opens only read it). The switch needs
    the file to itself and SQLite does not wait for that (no busy handler), so a replica
    opening a new file at the same moment as another retries for up to the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            if mode == "wal":
                return mode
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
