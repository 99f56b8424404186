"""Split a decoded source into passages with exact character offsets.

langchain-text-splitters does the splitting; this module pins every chunk to its place in
the text (so ``text[start:end] == passage.text``), adds line numbers, and re-splits any
chunk the model would truncate.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from langchain_text_splitters import RecursiveCharacterTextSplitter

from qa.sources import SourceDoc
from qa.types import Passage

#: The splitter's defaults: paragraphs, then lines, then words. Splitting at sentence ends
#: (". ") as well was tried and retrieved no better on NorQuAD (docs/retrieval.md).
SEPARATORS = ["\n\n", "\n", " ", ""]


def _splitter(size: int, overlap: int) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=min(overlap, size // 2),
        separators=SEPARATORS,
        strip_whitespace=True,
    )


def _spans(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) of each chunk; chunks are substrings of text, in order.

    The splitter gives chunk texts, not places. Consecutive chunks overlap by at most
    ``overlap`` characters and leave no gap but whitespace, so a chunk starts between
    ``prev_end - overlap`` and the first non-space after ``prev_end``; in repeated text the
    last copy in that window is taken, which keeps every character covered.
    """
    spans: list[tuple[int, int]] = []
    prev_start, prev_end = -1, 0
    for chunk in _splitter(size, overlap).split_text(text):
        hi = prev_end
        while hi < len(text) and text[hi].isspace():
            hi += 1
        lo = max(prev_start + 1, prev_end - overlap - 2)
        start = text.rfind(chunk, lo, hi + len(chunk)) if spans else text.find(chunk)
        if start < 0:
            start = text.find(chunk, prev_start + 1)
        if start < 0:  # cannot happen for substrings, but never emit a wrong offset
            continue
        spans.append((start, start + len(chunk)))
        prev_start, prev_end = start, start + len(chunk)
    return spans


def _fit(
    text: str, start: int, end: int, overlap: int, fits: Callable[[str], bool]
) -> list[tuple[int, int]]:
    """Re-split a span that is too long for the model into smaller spans that fit."""
    if fits(text[start:end]) or end - start < 40:
        return [(start, end)]
    size = max(20, (end - start) // 2)
    out: list[tuple[int, int]] = []
    for s, e in _spans(text[start:end], size, min(overlap, size // 4)):
        out.extend(_fit(text, start + s, start + e, overlap, fits))
    return out


def chunk_document(
    doc: SourceDoc,
    chunk_size: int = 800,
    chunk_overlap: int = 120,
    fits: Callable[[str], bool] | None = None,
) -> list[Passage]:
    """Passages of ``doc``, in order; ``fits`` says whether a text is within the model limit."""
    text = doc.text
    newlines = [i for i, ch in enumerate(text) if ch == "\n"]
    spans = _spans(text, chunk_size, chunk_overlap)
    if fits is not None:
        spans = [piece for s, e in spans for piece in _fit(text, s, e, chunk_overlap, fits)]
    passages = []
    for start, end in spans:
        passages.append(
            Passage(
                source=doc.path,
                start=start,
                end=end,
                text=text[start:end],
                line_start=bisect.bisect_right(newlines, start - 1) + 1,
                line_end=bisect.bisect_right(newlines, end - 2) + 1 if end > start else 1,
                title=doc.title,
            )
        )
    return passages
