"""What a format reader gives back: the indexed text with its pages, headings and warnings.

Every reader (``text``, ``pdf``, ``docx``, ``odt``, ``html``, ``markdown``; which one reads a
file is ``qa.sources.registry``'s choice) exposes ``read(data: bytes, name: str) -> Extracted``
and raises :class:`UnreadableFile` with a short reason when the file cannot be read.
``Extracted.text`` is final: citations are offsets into exactly this string, and
``pages``/``headings`` are offsets into it too.

``TextBuilder`` is how the structured readers assemble that text: blocks separated by a blank
line, table rows one per line with cells joined by `` | ``, headings recorded where their text
starts.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

#: Between two blocks (paragraphs, headings, tables) and between two PDF pages.
BLOCK_SEP = "\n\n"
#: Between the cells of one table row: cells stay apart, a row stays one line.
CELL_SEP = " | "
SECTION_SEP = " › "


class UnreadableFile(Exception):
    """The file cannot be read; the message is the reason, shown next to the file's name."""


@dataclass(frozen=True)
class Heading:
    start: int  # offset in Extracted.text where the heading's text starts
    level: int  # 1 = top
    text: str


@dataclass
class Extracted:
    text: str  # the indexed text: citations are offsets into exactly this
    format: str  # "pdf" | "docx" | "odt" | "html" | "md" | "txt"
    title: str | None = None  # <title>/<h1>, core title or first heading; None if none
    pages: list[int] = field(default_factory=list)  # start of each page; [] = no pages
    headings: list[Heading] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    scanned_pages: list[int] = field(default_factory=list)  # 1-based pages with no text layer
    encoding: str = ""  # "utf-8", "cp1252"... for text formats; the format name for the others

    def __post_init__(self) -> None:
        self.encoding = self.encoding or self.format


def page_span(pages: Sequence[int], start: int, end: int) -> tuple[int | None, int | None]:
    """The 1-based first and last page of the passage ``text[start:end]``; (None, None) when
    the format has no pages."""
    if not pages:
        return None, None
    first = bisect.bisect_right(pages, start)
    last = bisect.bisect_right(pages, max(start, end - 1))
    return max(first, 1), max(last, 1)


def section_at(headings: Sequence[Heading], offset: int) -> str:
    """The heading path above ``offset`` ("Kulturmeldingen › Kulturskolen"), "" if none."""
    path: list[Heading] = []
    for heading in headings:
        if heading.start > offset:
            break
        while path and path[-1].level >= heading.level:
            path.pop()
        path.append(heading)
    return SECTION_SEP.join(h.text for h in path)


def clean_inline(text: str) -> str:
    """One line of text: runs of whitespace (line breaks included) made one space."""
    return " ".join(text.split())


class TextBuilder:
    """Assembles a document's text block by block, keeping heading offsets exact."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.headings: list[Heading] = []

    def _append(self, block: str) -> int:
        if self._parts:
            self._parts.append(BLOCK_SEP)
            self._length += len(BLOCK_SEP)
        start = self._length
        self._parts.append(block)
        self._length += len(block)
        return start

    def paragraph(self, text: str) -> None:
        """A paragraph (whitespace collapsed); empty ones are left out."""
        text = clean_inline(text)
        if text:
            self._append(text)

    def lines(self, lines: list[str]) -> None:
        """A block of several lines kept as lines (a list, preformatted text)."""
        kept = [line.rstrip() for line in lines if line.strip()]
        if kept:
            self._append("\n".join(kept))

    def heading(self, text: str, level: int) -> None:
        """A heading: a block of its own, recorded in ``headings``."""
        text = clean_inline(text)
        if text:
            self.headings.append(Heading(self._append(text), max(1, level), text))

    def table(self, rows: list[list[str]]) -> None:
        """A table: one line per row, cells kept apart by `` | ``; empty rows left out."""
        self.lines(
            [
                CELL_SEP.join(clean_inline(c) for c in row)
                for row in rows
                if any(map(str.strip, row))
            ]
        )

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def first_heading(self) -> str | None:
        return self.headings[0].text if self.headings else None
