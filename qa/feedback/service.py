"""What a running server keeps: the store, and searches counted in memory between flushes.

``qa feedback stats`` needs the number of searches to say how many got no click. Writing to
SQLite on every search would put a disk write (and a lock shared with other replicas) on
the search path, so ``searched()`` only adds one to a per-day counter under a lock; a
background thread adds the counts to the file every few seconds, also deletes expired
entries once an hour, and ``close()`` writes what is left. A crash loses at most the last
few seconds of counts, never a vote: votes are written before ``POST /feedback`` answers.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from qa.feedback.store import Entry, FeedbackError, FeedbackStore

log = logging.getLogger("qa.feedback")

FLUSH_EVERY_S = 5.0


class Feedback:
    """The store of one app plus its search counter and maintenance thread."""

    def __init__(self, store: FeedbackStore, flush_every_s: float = FLUSH_EVERY_S) -> None:
        self.store = store
        self.flush_every_s = flush_every_s
        self._pending: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the file (retention applied) and start the maintenance thread. A file that
        cannot be opened is logged, not raised: search keeps working, votes answer 503."""
        try:
            self.store.open()
        except FeedbackError as exc:
            log.error("feedback is not stored until this is fixed: %s", exc)
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="qa-feedback", daemon=True)
            self._thread.start()

    def record(self, entry: Entry) -> None:
        """Store one vote now (FeedbackError when the file cannot be written)."""
        self.store.add(entry)

    def searched(self) -> None:
        """Count one answered search (cheap: no I/O)."""
        day = self.store.clock().strftime("%Y-%m-%d")
        with self._lock:
            self._pending[day] += 1

    def flush(self) -> None:
        """Add the counted searches to the file; on failure they wait for the next flush."""
        with self._lock:
            counts, self._pending = dict(self._pending), Counter()
        if not counts:
            return
        try:
            self.store.add_searches(counts)
        except FeedbackError as exc:
            log.warning("search counts not written yet: %s", exc)
            with self._lock:
                self._pending.update(counts)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_every_s):
            self.flush()
            try:
                self.store.purge_if_due()
            except FeedbackError as exc:
                log.warning("expired feedback not deleted yet: %s", exc)

    def close(self) -> None:
        """Stop the thread and write the last counts."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()
