"""Word ``.docx`` with python-docx: headings, paragraphs and tables, in document order.

The body's children are walked in order (python-docx's ``paragraphs`` and ``tables`` lists
would lose how they interleave). A heading is a paragraph whose style is "Heading N" /
"Overskrift N", or that has an outline level (on itself or its style). A table row is one
line, cells joined by " | "; a merged cell counts once. Page headers and footers, comments
and footnotes are not part of the text.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import docx
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from qa.sources.document import Extracted, TextBuilder, UnreadableFile, clean_inline

_HEADING_STYLE = re.compile(r"^(?:heading|overskrift)\s*(\d)\b", re.IGNORECASE)
_TITLE_STYLES = {"title", "tittel"}
#: ``w:outlineLvl`` 0..8 are heading levels 1..9; 9 means body text.
_BODY_LEVEL = 9


def _level_in(ppr: Any) -> int | None:
    """The ``w:outlineLvl`` of one paragraph-properties element, if it sets one."""
    found = ppr.find(qn("w:outlineLvl")) if ppr is not None else None
    if found is None:
        return None
    value = found.get(qn("w:val"), "")
    return int(value) if value.isdigit() else _BODY_LEVEL


class _Styles:
    """Each paragraph style's name and outline level, looked up once per document: python-docx
    resolves ``paragraph.style`` anew on every call, which was most of the reading time."""

    def __init__(self) -> None:
        self._cache: dict[str | None, tuple[str, int | None]] = {}

    def of(self, paragraph: Paragraph) -> tuple[str, int | None]:
        """(style name, outline level inherited from the style chain)."""
        key = paragraph._p.style
        if key not in self._cache:
            style: Any = paragraph.style
            name, level = (style.name or "") if style is not None else "", None
            for _ in range(10):  # a style chain is short; a cycle in a hostile file is not endless
                if style is None or level is not None:
                    break
                level = _level_in(style.element.pPr)
                style = style.base_style
            self._cache[key] = (name, level)
        return self._cache[key]


def heading_level(paragraph: Paragraph, styles: _Styles | None = None) -> int | None:
    """1 for a top heading, ...; None for a paragraph that is no heading."""
    name, style_level = (styles or _Styles()).of(paragraph)
    match = _HEADING_STYLE.match(name)
    if match:
        return max(1, int(match.group(1)))
    level = _level_in(paragraph._p.pPr)
    level = style_level if level is None else level
    return level + 1 if level is not None and level < _BODY_LEVEL else None


def _cell_text(cell: Any) -> str:
    """A cell's paragraphs (those of tables nested in it too) on one line."""
    return " ".join(Paragraph(p, cell).text for p in cell._tc.iter(qn("w:p")))


def table_rows(table: Table) -> list[list[str]]:
    """Each row's cell texts, a cell merged across columns taken once."""
    rows = []
    for row in table.rows:
        cells, seen = [], None
        for cell in row.cells:
            if cell._tc is not seen:
                cells.append(_cell_text(cell))
            seen = cell._tc
        rows.append(cells)
    return rows


def _blocks(element: Any, parent: Any) -> Iterator[Paragraph | Table]:
    """Paragraphs and tables under ``element`` in document order (content controls opened)."""
    for child in element.iterchildren():
        if child.tag == qn("w:p"):
            yield Paragraph(child, parent)
        elif child.tag == qn("w:tbl"):
            yield Table(child, parent)
        elif child.tag in (qn("w:sdt"), qn("w:sdtContent"), qn("w:customXml")):
            yield from _blocks(child, parent)


def _open(data: bytes) -> Any:
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise UnreadableFile("not a Word document (not a zip file)")
    try:
        return docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises many kinds on a zip that is no docx
        raise UnreadableFile(f"not a Word document ({type(exc).__name__}: {exc})") from exc


def read(data: bytes, name: str) -> Extracted:
    """The text of a .docx: headings, paragraphs and table rows in document order."""
    document = _open(data)
    out, styled_title, styles = TextBuilder(), None, _Styles()
    for block in _blocks(document.element.body, document._body):
        if isinstance(block, Table):
            out.table(table_rows(block))
            continue
        if styles.of(block)[0].lower() in _TITLE_STYLES and styled_title is None:
            styled_title = clean_inline(block.text) or None
        level = heading_level(block, styles)
        if level is not None:
            out.heading(block.text, level)
        else:
            out.paragraph(block.text)
    if not out.text.strip():
        raise UnreadableFile("no text in the document")
    core = clean_inline(document.core_properties.title or "")
    title = core or styled_title or out.first_heading()
    return Extracted(out.text, "docx", title, headings=out.headings)
