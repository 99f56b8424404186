"""Split a decoded source into passages with exact character offsets.

langchain-text-splitters does the splitting; this module pins every chunk to its place in
the text (so ``text[start:end] == passage.text``), adds line numbers, pages and the section
(heading path), chunks each page of a paged document on its own, and re-splits any chunk
the model would truncate.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING

from qa.sources import SourceDoc
from qa.sources.document import page_span, section_at
from qa.types import Passage

if TYPE_CHECKING:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

#: The splitter's defaults: paragraphs, then lines, then words. Splitting at sentence ends
#: (". ") as well was tried and retrieved no better on NorQuAD (docs/retrieval.md).
SEPARATORS = ["\n\n", "\n", " ", ""]


def _splitter(size: int, overlap: int) -> RecursiveCharacterTextSplitter:
    from langchain_text_splitters import RecursiveCharacterTextSplitter  # 1 s of imports

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


def _page_spans(doc: SourceDoc, size: int, overlap: int) -> list[tuple[int, int]]:
    """Spans of the whole text, or of each page separately when the document has pages (so
    that no passage straddles a page break without need)."""
    if not doc.pages:
        return _spans(doc.text, size, overlap)
    bounds = [*doc.pages, len(doc.text)]
    spans: list[tuple[int, int]] = []
    for lo, hi in itertools.pairwise(bounds):
        spans.extend((lo + s, lo + e) for s, e in _spans(doc.text[lo:hi], size, overlap))
    return spans


def _section(doc: SourceDoc, start: int, end: int) -> str:
    """The heading path of a passage: where its first line ends, so that a passage opening
    with a heading ("## Tiltak", whose text starts after the marks) is in that section."""
    line_end = doc.text.find("\n", start, end)
    return section_at(doc.headings, line_end if line_end >= 0 else end - 1)


def chunk_document(
    doc: SourceDoc,
    chunk_size: int = 800,
    chunk_overlap: int = 120,
    fits: Callable[[str], bool] | None = None,
) -> list[Passage]:
    """Passages of ``doc``, in order; ``fits`` says whether a text is within the model limit."""
    text = doc.text
    newlines = [i for i, ch in enumerate(text) if ch == "\n"]
    spans = _page_spans(doc, chunk_size, chunk_overlap)
    if fits is not None:
        spans = [piece for s, e in spans for piece in _fit(text, s, e, chunk_overlap, fits)]
    passages = []
    for start, end in spans:
        page_start, page_end = page_span(doc.pages, start, end)
        passages.append(
            Passage(
                source=doc.path,
                start=start,
                end=end,
                text=text[start:end],
                line_start=bisect.bisect_right(newlines, start - 1) + 1,
                line_end=bisect.bisect_right(newlines, end - 2) + 1 if end > start else 1,
                title=doc.title,
                page_start=page_start,
                page_end=page_end,
                section=_section(doc, start, end),
            )
        )
    return passages
