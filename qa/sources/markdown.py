"""Markdown: the source text as it is, its headings found by a real parser (markdown-it-py).

The indexed text is the Markdown source itself (it reads well, and offsets stay trivially
exact); only the headings are parsed, so that ``#`` inside fenced code or a setext heading
(a line underlined with === or ---) are told right. A YAML front matter block gives the
title (``title:``) and is not parsed as Markdown.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from qa.sources.document import Extracted, Heading, clean_inline
from qa.sources.text import read_text

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?\r?\n)?---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_TITLE_FIELD = re.compile(r"^title:\s*(.+?)\s*$", re.MULTILINE)


def _line_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in _LINE_BREAK.finditer(text)]


def _front_matter(text: str) -> tuple[str, str | None]:
    """The text to parse (front matter blanked, lines kept) and the front matter's title."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return text, None
    block = match.group(0)
    title = _TITLE_FIELD.search(match.group(1) or "")
    value = title.group(1).strip("'\"") if title else None
    blanked = _LINE_BREAK.sub("\n", block)
    blanked = "".join("\n" if ch == "\n" else " " for ch in blanked)
    return blanked + text[match.end() :], clean_inline(value or "") or None


def find_headings(text: str) -> list[Heading]:
    """ATX and setext headings, each placed where its text starts in ``text``."""
    parsed, _ = _front_matter(text)
    tokens = MarkdownIt("commonmark").parse(parsed)
    starts = _line_starts(text)
    headings = []
    for index, token in enumerate(tokens):
        if token.type != "heading_open" or token.map is None or index + 1 >= len(tokens):
            continue
        inline = tokens[index + 1]
        words = clean_inline(
            "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))
        )
        if not words:
            continue
        line = token.map[0]
        line_start = starts[line]
        line_end = starts[line + 1] if line + 1 < len(starts) else len(text)
        first = inline.content.split("\n", 1)[0].strip()
        at = text.find(first, line_start, line_end) if first else -1
        headings.append(Heading(at if at >= 0 else line_start, int(token.tag[1:]), words))
    return headings


def read(data: bytes, name: str) -> Extracted:
    """A Markdown file: its text unchanged, its headings and title."""
    doc = read_text(data, "md")
    doc.headings = find_headings(doc.text)
    _, title = _front_matter(doc.text)
    top = next((h.text for h in doc.headings if h.level == 1), None)
    first = doc.headings[0].text if doc.headings else None
    doc.title = title or top or first
    return doc
