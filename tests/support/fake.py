"""A fake embedder for fast tests: deterministic, no model, roughly topical."""

from __future__ import annotations

import hashlib
import re

import numpy as np


class FakeEmbedder:
    """Bag of hashed words and character trigrams: deterministic, fast, and roughly topical."""

    name = "fake-embedder"
    fingerprint = "fake-embedder-v1"
    concurrent_queries = False
    dim = 64
    max_tokens = 512

    def __init__(self) -> None:
        self.calls = 0
        self.embedded = 0

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        words = re.findall(r"\w+", text.lower())
        grams = [w[i : i + 3] for w in words for i in range(max(1, len(w) - 2))]
        for g in words + grams:
            h = int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little")
            v[h % self.dim] += 1.0 if h & 1 << 31 else -1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim))

    def embed_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        self.calls += 1
        self.embedded += len(texts)
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim))

    def count_tokens(self, text: str) -> int:
        return len(text.split()) * 2 + 2


class FakeFactory:
    """An ``EmbedderFactory`` that hands out one shared FakeEmbedder (no model is loaded)."""

    def __init__(self, embedder: FakeEmbedder | None = None) -> None:
        self.embedder = embedder or FakeEmbedder()

    def load(self, settings: object) -> FakeEmbedder:
        return self.embedder

    def expected_fingerprint(self, settings: object) -> str | None:
        return FakeEmbedder.fingerprint
