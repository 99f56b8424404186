"""Coalesce concurrent query embeddings into few model calls, on every core.

Under load, requests arrive on many threads at once. Embedding each alone makes them fight
for the same cores; one batched forward pass costs little more than a single one. So
``BatchingEmbedder`` queues query texts, and worker threads each embed whatever is waiting
in one call and hand each caller its rows. A lone request waits for nothing: an idle
worker takes it at once.

There is one worker per core when the embedder's forward pass is re-entrant
(``concurrent_queries``), each running its batch on one thread: two single-threaded
batches side by side embed 1.9x as many questions per second as one batch on two threads
that also share the cores with the HTTP threads (bench/README.md). A worker takes a fair
share of what is waiting (``fair_share``), not all of it, so the other worker is not left
idle. ``close()`` stops the workers; the OpenMP wait policy the server wants is set by
``qa.embedding.base.configure_openmp``, not by importing this module.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING

import numpy as np

from qa.embedding.base import EmbedderClosedError

if TYPE_CHECKING:
    from qa.types import Embedder

#: A caller's texts and where its rows go; None tells one worker to stop.
Job = tuple[list[str], Future[np.ndarray]]
CLOSED = "the query batcher is closed (the service is stopping)"


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def fair_share(queued: int, idle: int) -> int:
    """Jobs a worker takes when ``queued`` wait (its first included) and ``idle`` other
    workers wait for work: an equal part each, rounded up, so no job waits for a round."""
    return math.ceil(queued / (1 + idle))


class BatchingEmbedder:
    """An Embedder whose ``embed_queries`` batches calls from concurrent threads."""

    #: Its own workers already run the inner model's batches side by side.
    concurrent_queries = False

    def __init__(self, inner: Embedder, max_batch: int = 64, workers: int | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.max_tokens = inner.max_tokens
        self.fingerprint = inner.fingerprint
        self.max_batch = max_batch
        self.workers = (workers or default_workers()) if inner.concurrent_queries else 1
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._idle = self.workers  # workers waiting for a job
        self._idle_lock = threading.Lock()
        self._closed = False
        self._closing = threading.Lock()  # no job queued after close() drained the queue
        self._threads = [
            threading.Thread(target=self._run, name=f"query-batcher-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def engines(self) -> dict[str, str] | None:
        """The inner embedder's engines (``/health``), if it reports them."""
        return getattr(self.inner, "engines", None)

    @property
    def waiting(self) -> int:
        """Calls queued and not yet taken by a worker (a load figure)."""
        return self._queue.qsize()

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        future: Future[np.ndarray] = Future()
        with self._closing:
            if self._closed:
                raise EmbedderClosedError(CLOSED)
            self._queue.put((list(texts), future))
        return future.result()

    def embed_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self.inner.embed_passages(texts, show_progress=show_progress)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def close(self) -> None:
        """Stop every worker: queued calls fail with ``EmbedderClosedError``, as do later
        ones; batches already running finish. Returns when the workers have ended."""
        with self._closing:
            first = not self._closed
            self._closed = True
            if first:
                while True:
                    try:
                        job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is not None:
                        job[1].set_exception(EmbedderClosedError(CLOSED))
                for _ in self._threads:
                    self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def _take(self) -> list[Job] | None:
        """The next job, and as many waiting ones as make this worker's fair share; None
        when the worker is to stop."""
        first = self._queue.get()
        if first is None:
            return None
        jobs = [first]
        with self._idle_lock:
            self._idle -= 1
            idle = self._idle
        share = fair_share(1 + self._queue.qsize(), idle)
        size = len(first[0])
        while len(jobs) < share and size < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:  # another worker's stop: leave it for a blocking get
                self._queue.put(None)
                break
            jobs.append(job)
            size += len(job[0])
        return jobs

    def _run(self) -> None:
        while (jobs := self._take()) is not None:
            texts = [t for batch, _ in jobs for t in batch]
            try:
                vectors = self.inner.embed_queries(texts) if texts else np.zeros((0, self.dim))
            except Exception as exc:  # every waiting caller gets the error, the worker lives
                for _, future in jobs:
                    future.set_exception(exc)
                continue
            finally:
                with self._idle_lock:
                    self._idle += 1
            row = 0
            for batch, future in jobs:
                future.set_result(vectors[row : row + len(batch)])
                row += len(batch)
