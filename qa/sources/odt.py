"""OpenDocument ``.odt`` from the zip's ``content.xml`` (standard library + defusedxml).

The same structure as a .docx: ``text:h`` headings with their outline level, ``text:p``
paragraphs, lists, sections and ``table:table`` rows (one line each, cells joined by " | "),
in document order. Footnote bodies, tracked deletions and annotations are left out; the
title comes from ``meta.xml`` (dc:title), else the first heading. defusedxml refuses entity
tricks (a "billion laughs" content.xml).
"""

from __future__ import annotations

import io
import zipfile
from xml.etree.ElementTree import Element

from defusedxml import ElementTree

from qa.sources.document import Extracted, TextBuilder, UnreadableFile, clean_inline

_NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
}
_MIMETYPES = (b"application/vnd.oasis.opendocument.text",)


def _tag(prefix: str, local: str) -> str:
    return f"{{{_NS[prefix]}}}{local}"


_SKIP = {
    _tag("text", "note-body"),
    _tag("text", "tracked-changes"),
    _tag("office", "annotation"),
    _tag("text", "sequence-decls"),
    _tag("text", "variable-decls"),
}
_CONTAINERS = {
    _tag("text", "list"),
    _tag("text", "list-item"),
    _tag("text", "list-header"),
    _tag("text", "section"),
}


def inline_text(element: Element) -> str:
    """The text of a paragraph or heading: spaces (``text:s``), tabs and breaks as spaces."""
    parts = [element.text or ""]
    for child in element:
        if child.tag == _tag("text", "s"):
            parts.append(" " * int(child.get(_tag("text", "c"), "1") or "1"))
        elif child.tag in (_tag("text", "tab"), _tag("text", "line-break")):
            parts.append(" ")
        elif child.tag not in _SKIP:
            parts.append(inline_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


_PARAGRAPHS = {_tag("text", "p"), _tag("text", "h")}
_ROW_GROUPS = {_tag("table", g) for g in ("table-header-rows", "table-rows", "table-row-group")}


def _cell_text(cell: Element) -> str:
    """A cell's paragraphs (those of tables nested in it too) on one line."""
    return " ".join(inline_text(p) for p in cell.iter() if p.tag in _PARAGRAPHS)


def _table_rows(table: Element) -> list[list[str]]:
    """Each row's cell texts (covered cells of a merge left out); nested tables stay in
    their cell."""
    rows = []
    for child in table:
        if child.tag in _ROW_GROUPS:
            rows.extend(_table_rows(child))
        elif child.tag == _tag("table", "table-row"):
            cells = [c for c in child if c.tag == _tag("table", "table-cell")]
            rows.append([_cell_text(c) for c in cells])
    return rows


def _walk(element: Element, out: TextBuilder) -> None:
    """Add the blocks under ``element`` to ``out`` in document order."""
    for child in element:
        if child.tag == _tag("text", "h"):
            level = child.get(_tag("text", "outline-level"), "1")
            out.heading(inline_text(child), int(level) if level.isdigit() else 1)
        elif child.tag == _tag("text", "p"):
            out.paragraph(inline_text(child))
        elif child.tag == _tag("table", "table"):
            out.table(_table_rows(child))
        elif child.tag in _CONTAINERS:
            _walk(child, out)


def _parse(archive: zipfile.ZipFile, member: str) -> Element:
    try:
        root: Element = ElementTree.fromstring(archive.read(member))
    except Exception as exc:  # a broken part: bad XML, bad compression, entity tricks
        raise UnreadableFile(f"damaged OpenDocument file ({member}: {exc})") from exc
    return root


def _title(archive: zipfile.ZipFile) -> str | None:
    if "meta.xml" not in archive.namelist():
        return None
    found = _parse(archive, "meta.xml").find(".//dc:title", _NS)
    title = clean_inline(found.text or "") if found is not None else ""
    return title or None


def read(data: bytes, name: str) -> Extracted:
    """The text of an .odt: headings, paragraphs, lists and table rows in document order."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise UnreadableFile("not an OpenDocument text (not a zip file)") from exc
    with archive:
        names = archive.namelist()
        mimetype = archive.read("mimetype").strip() if "mimetype" in names else b""
        if mimetype not in _MIMETYPES or "content.xml" not in names:
            raise UnreadableFile("not an OpenDocument text (no text content in the zip)")
        body = _parse(archive, "content.xml").find("office:body/office:text", _NS)
        title = _title(archive)
    if body is None:
        raise UnreadableFile("not an OpenDocument text (no office:text body)")
    out = TextBuilder()
    _walk(body, out)
    if not out.text.strip():
        raise UnreadableFile("no text in the document")
    return Extracted(out.text, "odt", title or out.first_heading(), headings=out.headings)
