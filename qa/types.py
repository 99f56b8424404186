"""What flows between the steps: passages out of the chunker, hits out of the retriever."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True, slots=True)
class Passage:
    """A span of one source file. ``text == source_text[start:end]`` always holds."""

    source: str  # path relative to the sources folder, POSIX separators
    start: int  # character offsets into the file's decoded text
    end: int
    text: str
    line_start: int  # 1-based, inclusive
    line_end: int
    title: str = ""  # the document's title (its reader's, else its first line)
    page_start: int | None = None  # 1-based; None where the format has no pages
    page_end: int | None = None
    section: str = ""  # heading path above the passage ("A › B"); "" when none


@dataclass(slots=True)
class Hit:
    """One ranked result: the passage and how each side of the retriever ranked it."""

    passage: Passage
    score: float
    rank: int = 0
    dense_rank: int | None = None
    lexical_rank: int | None = None
    #: The answer span: offsets into the source text, start <= answer_start < answer_end <= end
    #: (set by the retriever; None on a hit made elsewhere, read as the whole passage).
    answer_start: int | None = None
    answer_end: int | None = None


@dataclass(slots=True)
class SearchResult:
    """What the retriever answers for one query."""

    query: str
    language: str  # ISO 639-1: "nb", "nn", "en", ... or "und"
    hits: list[Hit] = field(default_factory=list)


@runtime_checkable
class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors; queries and passages get their prompts.

    ``fingerprint`` names the vectors (an index built with another one is refused);
    ``concurrent_queries`` says that query calls from several threads run in parallel, so
    a batcher may give it one worker per core.
    """

    name: str
    dim: int
    max_tokens: int
    fingerprint: str
    concurrent_queries: bool

    def embed_queries(self, texts: list[str]) -> np.ndarray: ...

    def embed_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for ``text`` as a passage, prompt and special tokens included."""
        ...
