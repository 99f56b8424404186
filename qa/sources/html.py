"""Web pages (an intranet's HTML) with lxml: the main content, no navigation or banners.

Rule-based, not statistical (trafilatura's boilerplate scoring drops short pages and headings
and changes between versions): elements that are never content are removed (scripts,
``nav``, ``aside``, ``footer``, a page-level ``header``, forms, ARIA navigation/banner/
contentinfo/complementary roles, hidden elements, and elements whose id or class names a
cookie/consent banner, breadcrumbs, a menu, a sidebar, sharing buttons), then the text is
taken from ``<main>`` (or ``role=main``, or the only ``<article>``, else ``<body>``).
Headings h1-h6 become ``Heading``s; table rows are lines with cells joined by " | ".
The title is ``<title>``, else the first ``<h1>``. Nothing is ever fetched.
"""

from __future__ import annotations

import re
from typing import Any

import lxml.html
from lxml import etree

from qa.sources.document import Extracted, TextBuilder, UnreadableFile, clean_inline
from qa.sources.text import bom_encoding, decode

_DROP_TAGS = {
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "aside",
    "footer",
    "button",
    "select",
    "textarea",
    "svg",
    "iframe",
    "object",
    "embed",
    "dialog",
    "menu",
}
_DROP_ROLES = {
    "navigation",
    "banner",
    "contentinfo",
    "complementary",
    "search",
    "dialog",
    "alertdialog",
    "menu",
    "menubar",
}
_BOILERPLATE = re.compile(
    r"(?:^|[\s_-])(?:cookies?\w*|consent\w*|gdpr|cmp|breadcrumbs?|skip-?links?|sidebar|navbar|"
    r"nav|navigation|menu|share|sharing|social|newsletter|site-?header|site-?footer|footer)"
    r"(?:$|[\s_-])",
    re.IGNORECASE,
)
_CONTENT = {"html", "body", "main", "article"}
_BLOCKS = set(
    [
        "p",
        "div",
        "section",
        "article",
        "main",
        "header",
        "li",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "blockquote",
        "figure",
        "figcaption",
        "address",
        "details",
        "summary",
        "hr",
        "center",
    ]
)
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")


def _decode(data: bytes) -> tuple[str, str]:
    """The page as text, and its encoding: its BOM's, else its <meta charset>, else UTF-8,
    else detected."""
    declared = bom_encoding(data)
    match = _META_CHARSET.search(data[:4096])
    for encoding in (declared, match.group(1).decode("ascii") if match else None):
        if encoding:
            try:
                return data.decode(encoding), encoding
            except (LookupError, UnicodeDecodeError):
                pass
    try:
        return decode(data)
    except ValueError as exc:
        raise UnreadableFile(f"HTML page in no known encoding ({exc})") from exc


def _is_boilerplate(element: Any, total: int) -> bool:
    """Whether an element is never content. One named like boilerplate that holds half the
    page's ``total`` text is a wrapper ("has-sidebar") and is kept."""
    if element.tag in _CONTENT:
        return False
    if element.tag in _DROP_TAGS or element.get("hidden") is not None:
        return True
    if element.tag == "header" and not _in_content(element):
        return True
    if element.get("aria-hidden") == "true" or element.get("role") in _DROP_ROLES:
        return True
    style = (element.get("style") or "").replace(" ", "").lower()
    if "display:none" in style or "visibility:hidden" in style:
        return True
    names = f"{element.get('id') or ''} {element.get('class') or ''}"
    return bool(_BOILERPLATE.search(names)) and len(element.text_content()) < total / 2


def _in_content(element: Any) -> bool:
    return any(
        a.tag in ("main", "article") or a.get("role") == "main" for a in element.iterancestors()
    )


def _strip(container: Any) -> None:
    """Remove every element under ``container`` that is never page content (the module
    docstring lists them)."""
    total = max(1, len(container.text_content()))
    doomed = []
    for element in container.iterdescendants():
        if not isinstance(element.tag, str):
            doomed.append(element)  # comments and processing instructions
        elif _is_boilerplate(element, total):
            doomed.append(element)
    for element in doomed:
        if element.getparent() is not None:
            element.drop_tree()  # keeps the tail text, which belongs to the parent


def _main(root: Any) -> Any:
    for path in ("//main", "//*[@role='main']"):
        found = root.xpath(path)
        if found:
            return found[0]
    articles = root.xpath("//article")
    if len(articles) == 1:
        return articles[0]
    body = root.find("body")
    return body if body is not None else root


class _Walker:
    """Turns an element tree into blocks: inline text gathered until a block ends."""

    def __init__(self) -> None:
        self.out = TextBuilder()
        self._inline: list[str] = []

    def flush(self) -> None:
        self.out.paragraph("".join(self._inline))
        self._inline = []

    def walk(self, element: Any) -> None:
        tag = element.tag
        if tag in _HEADINGS:
            self.flush()
            self.out.heading(element.text_content(), _HEADINGS[tag])
        elif tag == "table":
            self.flush()
            rows = [tr for tr in element.iter("tr") if next(tr.iterancestors("table")) is element]
            self.out.table([[_cell_text(c) for c in row.xpath("th|td")] for row in rows])
        elif tag == "pre":
            self.flush()
            self.out.lines(element.text_content().splitlines())
        elif tag == "br":
            self._inline.append(" ")
        else:
            block = tag in _BLOCKS
            if block:
                self.flush()
            self._inline.append(element.text or "")
            for child in element:
                self.walk(child)
                self._inline.append(child.tail or "")
            if block:
                self.flush()


def _cell_text(cell: Any) -> str:
    """A table cell's text on one line, blocks (and nested tables) in it kept apart."""
    walker = _Walker()
    walker.walk(cell)
    walker.flush()
    return clean_inline(walker.out.text)


def read(data: bytes, name: str) -> Extracted:
    """The main text of a web page, with its headings and title."""
    page, encoding = _decode(data)
    text = _XML_DECL.sub("", page)
    if not text.strip():
        raise UnreadableFile("empty HTML page")
    try:
        root = lxml.html.document_fromstring(text)
        main = _main(root)
        _strip(main)
        walker = _Walker()
        walker.walk(main)
        walker.flush()
    except (etree.ParserError, ValueError, RecursionError) as exc:
        raise UnreadableFile(f"unreadable HTML page ({exc})") from exc
    out = walker.out
    if not out.text.strip():
        raise UnreadableFile("empty HTML page (no text in its main content)")
    titles = root.xpath("//title")
    title = clean_inline(titles[0].text_content()) if titles else ""
    h1 = next((h.text for h in out.headings if h.level == 1), None)
    return Extracted(out.text, "html", title or h1, headings=out.headings, encoding=encoding)
