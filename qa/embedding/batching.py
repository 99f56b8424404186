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
share of what is waiting, not all of it, so the other worker is not left idle.

Importing this module makes the OpenMP runtime that torch loads later wait passively
(``OMP_WAIT_POLICY=PASSIVE``, unless set): spinning OpenMP threads take the cores that the
HTTP threads and the other model thread need, and on a busy 2-core machine one query
embedding took 300-450 ms instead of 40-50 ms.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from concurrent.futures import Future

import numpy as np

from qa.types import Embedder

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch loads OpenMP


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class BatchingEmbedder:
    """An Embedder whose ``embed_queries`` batches calls from concurrent threads."""

    def __init__(self, inner: Embedder, max_batch: int = 64, workers: int | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.max_tokens = inner.max_tokens
        self.fingerprint = inner.fingerprint
        self.max_batch = max_batch
        parallel = bool(getattr(inner, "concurrent_queries", False))
        self.workers = (workers or default_workers()) if parallel else 1
        self._queue: queue.Queue[tuple[list[str], Future]] = queue.Queue()
        self._idle = self.workers  # workers waiting for a job
        self._idle_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, name=f"query-batcher-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        future: Future = Future()
        self._queue.put((list(texts), future))
        return future.result()

    def embed_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self.inner.embed_passages(texts, show_progress=show_progress)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def _take(self) -> list[tuple[list[str], Future]]:
        """The next job, and as many waiting ones as make this worker's fair share."""
        jobs = [self._queue.get()]
        with self._idle_lock:
            self._idle -= 1
            idle = self._idle
        share = math.ceil((1 + self._queue.qsize()) / (1 + idle))
        size = len(jobs[0][0])
        while len(jobs) < share and size < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            jobs.append(job)
            size += len(job[0])
        return jobs

    def _run(self) -> None:
        while True:
            jobs = self._take()
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
