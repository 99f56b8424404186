"""The sentences of every source and their vectors, stored beside the passages.

``sentences.npy`` holds ``(start, end)`` offsets into each source's text (int64, rows grouped
by source in manifest order); ``sentence_vectors.npy`` one float16 vector a row (half the
bytes; the cosine of a sentence against the query changes in the fourth decimal), read
memory-mapped, so a large index costs disk, not memory. The manifest names each source's rows
(``sources[path]["sentences"] = [first, count]``). FAISS never sees them: a hit's sentences
are found by offset, their vectors compared with the query's in the answer span step.

A sentence is embedded with its source's title before it (``qa.answer.sentences.in_context``):
on NorQuAD's training split this raised the share of answering spans by about three points,
six with the weights re-tuned (docs/retrieval.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.answer.sentences import CONTEXT, SPLITTER, in_context, split, title_of

SPANS_FILE = "sentences.npy"
VECTORS_FILE = "sentence_vectors.npy"
#: Sentences handed to the embedder at once (a query served meanwhile waits for one call).
EMBED_BATCH = 512


@dataclass
class SentenceTable:
    """Sentence offsets of every source and their vectors (row-aligned)."""

    spans: np.ndarray  # (m, 2) int64
    vectors: np.ndarray  # (m, dim) float16, possibly memory-mapped
    rows: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (first, count)

    def of(self, path: str) -> tuple[np.ndarray, np.ndarray]:
        """(spans, vectors) of one source ((0, 2) and (0, dim) if it has none)."""
        first, count = self.rows.get(path, (0, 0))
        return self.spans[first : first + count], self.vectors[first : first + count]

    def within(self, path: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """Row ids (into this table) and spans of the source's sentences that overlap
        ``[start, end)``, the spans clipped to it."""
        first, count = self.rows.get(path, (0, 0))
        spans = self.spans[first : first + count]
        lo = int(np.searchsorted(spans[:, 1], start, side="right"))
        hi = int(np.searchsorted(spans[:, 0], end, side="left"))
        picked = spans[lo:hi]
        clipped = np.stack([np.maximum(picked[:, 0], start), np.minimum(picked[:, 1], end)], 1)
        return np.arange(first + lo, first + hi), clipped.reshape(-1, 2)


def manifest_entry(table_rows: int) -> dict[str, Any]:
    """The manifest's ``sentences`` block: how they were cut, how many, how stored."""
    return {"splitter": SPLITTER, "context": CONTEXT, "count": table_rows, "vectors": "float16"}


@dataclass
class SentencePlan:
    """The sentences of a new build: per source, its spans and (reused) vectors or None."""

    paths: list[str] = field(default_factory=list)
    spans: list[np.ndarray] = field(default_factory=list)
    vectors: list[np.ndarray | None] = field(default_factory=list)  # None: to embed
    seconds: float = 0.0  # spent cutting and embedding sentences

    def add(self, path: str, spans: np.ndarray, vectors: np.ndarray | None) -> None:
        self.paths.append(path)
        self.spans.append(np.asarray(spans, dtype=np.int64).reshape(-1, 2))
        self.vectors.append(vectors)

    def add_new(self, path: str, text: str, lang: str) -> None:
        t0 = time.perf_counter()
        self.add(path, np.array(split(text, lang), dtype=np.int64), None)
        self.seconds += time.perf_counter() - t0

    @property
    def to_embed(self) -> int:
        return sum(len(s) for s, v in zip(self.spans, self.vectors, strict=True) if v is None)


def embed_sentences(
    plan: SentencePlan, texts: dict[str, str], embedder: Any, progress: bool
) -> SentenceTable:
    """One table of the plan: reused vectors copied, the others embedded as passages."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    counts = [len(s) for s in plan.spans]
    firsts = np.cumsum([0, *counts])
    spans = np.concatenate(plan.spans) if plan.spans else np.zeros((0, 2), np.int64)
    matrix = np.zeros((len(spans), embedder.dim), dtype=np.float16)
    todo: list[tuple[int, str]] = []
    for i, (path, vectors) in enumerate(zip(plan.paths, plan.vectors, strict=True)):
        rows = range(int(firsts[i]), int(firsts[i + 1]))
        if vectors is not None and len(vectors) == len(rows):
            matrix[rows.start : rows.stop] = vectors
            continue
        text = texts[path]
        title = title_of(text)
        todo.extend((r, in_context(title, text[spans[r, 0] : spans[r, 1]])) for r in rows)
    with tqdm(total=len(todo), desc="sentences", unit="sentence", disable=not progress) as bar:
        for lo in range(0, len(todo), EMBED_BATCH):
            batch = todo[lo : lo + EMBED_BATCH]
            matrix[[r for r, _ in batch]] = embedder.embed_passages([t for _, t in batch])
            bar.update(len(batch))
    rows_of = {p: (int(firsts[i]), counts[i]) for i, p in enumerate(plan.paths)}
    plan.seconds += time.perf_counter() - t0
    return SentenceTable(spans, matrix, rows_of)


def save_sentences(table: SentenceTable, folder: Path) -> None:
    """Both arrays, on disk (fsync) when this returns."""
    for name, array in ((SPANS_FILE, table.spans), (VECTORS_FILE, table.vectors)):
        with open(folder / name, "wb") as fh:
            np.save(fh, array)
            fh.flush()
            os.fsync(fh.fileno())


def load_sentences(
    folder: Path, manifest: dict[str, Any], dim: int, paths: Sequence[str]
) -> SentenceTable:
    """The table of a build; ValueError when it does not match its manifest."""
    info = manifest.get("sentences")
    if not isinstance(info, dict) or info.get("splitter") != SPLITTER:
        raise ValueError("the sentences were cut by other rules than this version's")
    if info.get("context") != CONTEXT:
        raise ValueError("the sentences were embedded with other context than this version's")
    spans = np.load(folder / SPANS_FILE)
    vectors = np.load(folder / VECTORS_FILE, mmap_mode="r")
    if spans.shape != (info.get("count"), 2) or vectors.shape != (len(spans), dim):
        raise ValueError(f"{SPANS_FILE} or {VECTORS_FILE} does not match the manifest")
    rows: dict[str, tuple[int, int]] = {}
    for path in paths:
        first, count = manifest["sources"][path].get("sentences", (0, 0))
        if first < 0 or count < 0 or first + count > len(spans):
            raise ValueError(f"sentence rows of {path!r} are out of range")
        rows[path] = (int(first), int(count))
    return SentenceTable(spans, vectors, rows)
