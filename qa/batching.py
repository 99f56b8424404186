"""Coalesce concurrent query embeddings into one model call.

Under load, requests arrive on many threads at once. Embedding each alone makes them fight
for the same cores; one batched forward pass costs little more than a single one. So
``BatchingEmbedder`` queues query texts, and one worker thread embeds whatever is waiting
in a single call and hands each caller its rows. A lone request waits for nothing: the
worker takes it at once.

Importing this module makes the OpenMP runtime that torch loads later wait passively
(``OMP_WAIT_POLICY=PASSIVE``, unless set): spinning OpenMP threads take the cores that the
HTTP threads and the other model thread need, and on a busy 2-core machine one query
embedding took 300-450 ms instead of 40-50 ms (bench/README.md).
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import Future

import numpy as np

from qa.types import Embedder

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch loads OpenMP


class BatchingEmbedder:
    """An Embedder whose ``embed_queries`` batches calls from concurrent threads."""

    def __init__(self, inner: Embedder, max_batch: int = 64) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.max_tokens = inner.max_tokens
        self.fingerprint = inner.fingerprint
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[list[str], Future]] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="query-batcher", daemon=True)
        self._worker.start()

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        future: Future = Future()
        self._queue.put((list(texts), future))
        return future.result()

    def embed_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self.inner.embed_passages(texts, show_progress=show_progress)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def _run(self) -> None:
        while True:
            jobs = [self._queue.get()]
            size = len(jobs[0][0])
            while size < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                jobs.append(job)
                size += len(job[0])
            texts = [t for batch, _ in jobs for t in batch]
            try:
                vectors = self.inner.embed_queries(texts) if texts else np.zeros((0, self.dim))
            except Exception as exc:  # every waiting caller gets the error, the worker lives
                for _, future in jobs:
                    future.set_exception(exc)
                continue
            row = 0
            for batch, future in jobs:
                future.set_result(vectors[row : row + len(batch)])
                row += len(batch)
