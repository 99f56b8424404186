"""The feedback file: WAL, schema version, retention, and many writers at once (threads and
processes) losing nothing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from qa.config import Settings
from qa.feedback import Entry, Feedback, FeedbackError, FeedbackStore, feedback_path
from qa.feedback import store as store_module
from tests.support.corpus import ROOT

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def vote(query: str = "Når er fristen?", **kw: object) -> Entry:
    span = {"source": "veg.txt", "start": 0, "end": 14, "text": "Vegvedlikehold"}
    return Entry(query=query, vote="up", index_version="v1", **{**span, **kw})  # type: ignore[arg-type]


def test_wal_schema_version_and_reopen(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "feedback.sqlite3"
    store = FeedbackStore(db, days=180, clock=lambda: NOW)
    store.add(vote(user="kari"))
    store.add(Entry(query="Hvem?", vote="none", index_version="v1"))
    assert store.journal_mode() == "wal"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store_module.SCHEMA_VERSION
    again = FeedbackStore(db, days=180, clock=lambda: NOW).entries()  # a restart
    assert [(e.vote, e.user, e.text, e.at) for e in again] == [
        ("up", "kari", "Vegvedlikehold", at(0)),
        ("none", None, None, at(0)),
    ]


def test_only_what_is_promised_is_stored(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite3", days=180)
    store.add(vote())
    with sqlite3.connect(store.path) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(feedback)")]
    assert columns == [
        "id", "at", "query", "vote", "source", "span_start", "span_end", "span_text",
        "user_name", "index_version",
    ]  # fmt: skip


def test_a_newer_schema_is_refused_by_name(tmp_path: Path) -> None:
    db = tmp_path / "f.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(FeedbackError, match=r"f\.sqlite3 has schema 99"):
        FeedbackStore(db, days=180).entries()


def test_retention_on_open_and_on_demand(tmp_path: Path) -> None:
    db = tmp_path / "f.sqlite3"
    writer = FeedbackStore(db, days=1000, clock=lambda: NOW)
    for days_ago in (0, 10, 179, 181, 400):
        writer.add(vote(f"spørsmål {days_ago}", at=at(days_ago)))
    writer.add_searches({at(0)[:10]: 5, at(200)[:10]: 7})

    store = FeedbackStore(db, days=180, clock=lambda: NOW)
    assert [e.query for e in store.entries()] == ["spørsmål 179", "spørsmål 10", "spørsmål 0"]
    assert store.deleted == 2 and store.searches() == {at(0)[:10]: 5}
    assert store.purge(older_than_days=5) == 2  # `qa feedback purge --older-than-days 5`
    assert store.purge_if_due() == 0  # a server purges at most once an hour
    store.add(vote("gammel", at=at(200)))  # e.g. written by an older replica
    assert store.purge_if_due() == 0 and len(store.entries()) == 2
    store._last_purge -= store_module.PURGE_EVERY_S
    assert store.purge_if_due() == 1
    assert store.purge(everything=True) == 1 and store.entries() == [] and store.searches() == {}


def test_search_counts_add_up(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite3", days=180, clock=lambda: NOW)
    store.add_searches({"2025-06-01": 3})
    store.add_searches({"2025-06-01": 4, "2025-05-31": 1})
    assert store.searches() == {"2025-05-31": 1, "2025-06-01": 7}


def test_counter_flushes_in_the_background_and_on_close(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite3", days=180, clock=lambda: NOW)
    feedback = Feedback(store, flush_every_s=0.05)
    feedback.start()
    for _ in range(3):
        feedback.searched()
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while store.searches() != {"2025-06-01": 3}:
        assert datetime.now(UTC) < deadline, store.searches()
        threading.Event().wait(0.05)
    feedback.searched()
    feedback.close()
    assert store.searches() == {"2025-06-01": 4}


def test_counts_wait_while_the_file_cannot_be_written(tmp_path: Path) -> None:
    bad = tmp_path / "a-folder.sqlite3"
    bad.mkdir()  # a folder where the file should be: SQLite cannot open it
    feedback = Feedback(FeedbackStore(bad, days=180, clock=lambda: NOW))
    feedback.start()  # logged, not raised: search keeps working
    feedback.searched()
    feedback.close()
    with pytest.raises(FeedbackError, match=r"a-folder\.sqlite3"):
        feedback.record(vote())
    bad.rmdir()
    feedback.flush()  # the file is fine now: the count kept in memory is written
    assert feedback.store.searches() == {"2025-06-01": 1}


def test_default_path_is_beside_the_index_folder(tmp_path: Path) -> None:
    s = Settings(index_dir=tmp_path / "data" / "index", _env_file=None)
    assert feedback_path(s) == tmp_path / "data" / "feedback.sqlite3"
    s = Settings(index_dir=tmp_path / "index", feedback_db=Path("fb.db"), _env_file=None)
    assert feedback_path(s) == Path("fb.db")
    with pytest.raises(ValueError, match="feedback_days"):
        Settings(feedback_days=0, _env_file=None)


def test_threads_write_at_once_and_nothing_is_lost(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite3", days=180, clock=lambda: NOW)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(40):
                store.add(vote(f"tråd {n} nr {i}"))
                store.add_searches({"2025-06-01": 1})
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({e.query for e in store.entries()}) == 320
    assert store.searches() == {"2025-06-01": 320}


_WRITER = """
import sys
sys.path.insert(0, {root!r})
from qa.feedback import Entry, FeedbackStore
store = FeedbackStore(sys.argv[1], days=100_000)
sys.stdout.write("ready\\n"); sys.stdout.flush(); sys.stdin.readline()  # start together
for i in range(150):
    store.add(Entry(query=f"{{sys.argv[2]}} {{i}}", vote="down", index_version="v1"))
    store.add_searches({{"2025-06-01": 1}})
"""


def test_two_processes_write_at_once_and_nothing_is_lost(tmp_path: Path) -> None:
    """Two `qa serve` replicas sharing one file: the locks are SQLite's, across processes."""
    db = tmp_path / "shared.sqlite3"
    code = _WRITER.format(root=str(ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(db), name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for p in procs:
        assert p.stdout is not None
        assert p.stdout.readline() == "ready\n", p.communicate(timeout=60)[1]
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    store = FeedbackStore(db, days=180, clock=lambda: NOW)
    queries = {e.query for e in store.entries()}
    assert queries == {f"{name} {i}" for name in "ab" for i in range(150)}
    assert store.searches() == {"2025-06-01": 300}
