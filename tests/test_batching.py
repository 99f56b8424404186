"""Concurrent query embeddings are coalesced, and each caller gets its own rows."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from qa.batching import BatchingEmbedder


class SlowEmbedder:
    """Records batch sizes; a call takes 20 ms whatever its size, like a small model."""

    name, dim, max_tokens, fingerprint = "slow", 4, 512, "slow-1"

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        if "boom" in texts:
            raise RuntimeError("model failed")
        with self.lock:
            self.batches.append(len(texts))
        time.sleep(0.02)
        return np.array([[len(t), 0, 0, 1] for t in texts], dtype=np.float32)

    def embed_passages(self, texts, show_progress=False):  # type: ignore[no-untyped-def]
        return self.embed_queries(texts)

    def count_tokens(self, text: str) -> int:
        return len(text)


def test_concurrent_calls_share_batches_and_get_their_own_rows() -> None:
    inner = SlowEmbedder()
    emb = BatchingEmbedder(inner)
    texts = ["x" * i for i in range(1, 33)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda t: emb.embed_queries([t]), texts))
    for t, r in zip(texts, results, strict=True):
        assert r.shape == (1, 4) and r[0, 0] == len(t)
    assert sum(inner.batches) == 32
    assert len(inner.batches) < 32  # some calls were coalesced
    assert max(inner.batches) > 1


def test_a_single_call_is_not_delayed_and_errors_reach_the_caller() -> None:
    emb = BatchingEmbedder(SlowEmbedder())
    assert emb.embed_queries(["abc", "de"])[:, 0].tolist() == [3, 2]
    with pytest.raises(RuntimeError, match="model failed"):
        emb.embed_queries(["boom"])
    assert emb.embed_queries(["after"])[0, 0] == 5  # the worker survived
