"""Set ``answer_start``/``answer_end`` on a search's hits: the retriever's last step."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

import numpy as np

from qa.answer.sentences import in_context, title_of
from qa.answer.span import Span, choose, trimmed
from qa.types import Embedder, Hit


class Sentences(Protocol):
    """What is read of the stored sentences (``qa.index.sentences.SentenceTable``)."""

    vectors: np.ndarray

    def within(self, path: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray]: ...


def locate(
    hits: list[Hit],
    method: str,
    vector: np.ndarray,
    table: Sentences,
    texts: Mapping[str, str],
    terms: Mapping[str, float],
    tokenize: Callable[[str], list[str]],
    embedder: Embedder | None = None,
    question: str = "",
) -> None:
    """Give every hit its answer span (the whole passage when it has no sentence).

    ``vectors`` compares the query ``vector`` with the stored sentence vectors; ``query``
    embeds the results' sentences now, in one call (``embedder``), to measure against it.
    ``question`` (the query's text) lends the lexical evidence beyond ``terms``."""
    found: list[tuple[Hit, str, list[Span], np.ndarray]] = []
    for hit in hits:
        p = hit.passage
        text = texts.get(p.source, "")
        rows, clipped = table.within(p.source, p.start, p.end)
        pairs = [(int(r), (int(s), int(e))) for r, (s, e) in zip(rows, clipped, strict=True)]
        kept = [(r, sp) for r, sp in pairs if trimmed(text, [sp])]
        spans = [trimmed(text, [sp])[0] for _, sp in kept]
        found.append((hit, text, spans, np.array([r for r, _ in kept], dtype=np.int64)))
    sims: list[np.ndarray | None] = [None] * len(found)
    query = np.asarray(vector, dtype=np.float32)
    if method == "vectors":
        sims = [np.asarray(table.vectors[rows], dtype=np.float32) @ query for *_, rows in found]
    elif method == "query" and embedder is not None:
        sentences = [
            in_context(title_of(text), text[s:e]) for _, text, spans, _ in found for s, e in spans
        ]
        matrix = embedder.embed_passages(sentences) if sentences else np.zeros((0, len(query)))
        cuts = np.cumsum([0, *(len(spans) for _, _, spans, _ in found)])
        sims = [matrix[cuts[i] : cuts[i + 1]] @ query for i in range(len(found))]
    for (hit, text, spans, _), sim in zip(found, sims, strict=True):
        span = choose(method, text, spans, terms, tokenize, sim, question)
        p = hit.passage
        hit.answer_start, hit.answer_end = span or (p.start, p.end)
