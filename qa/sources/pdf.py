"""PDF with pypdfium2 (Apache/BSD licensed; PyMuPDF is AGPL): text per page, pages kept.

Pages are joined with a blank line ("\\n\\n"), the same separator as paragraphs elsewhere, so
the chunker needs nothing special; ``Extracted.pages`` holds where each page starts. Within a
page, pdfium's line order is kept (its reading order).

Cleaning, all of it before offsets exist:
- running headers and footers: a line among the first or last two lines of a page that
  recurs there on at least half the pages (two at least), digits ignored so that "Side 3
  av 12" matches "Side 4 av 12", is dropped;
- ligatures (ﬁ ﬂ ...) become their letters; soft hyphens are removed, and a word that pdfium
  marks as hyphenated at a line end (soft hyphen) is joined. A hard "-" at a line end is kept:
  in Norwegian it is as often a real hyphen ("kultur- og idrettsliv") as a break;
- a page with images but no text is counted in ``scanned_pages`` with a warning.
"""

from __future__ import annotations

import re
from collections import Counter

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from qa.sources.document import BLOCK_SEP, Extracted, Heading, UnreadableFile, clean_inline

#: How many non-empty lines at the top and at the bottom of a page may be a header/footer.
EDGE = 2
_LIGATURES = str.maketrans(
    {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
)
#: pdfium writes U+0002 where a word was hyphenated with a soft hyphen at a line end; a hard
#: hyphen at a line end comes back as U+FFFE and is kept as "-" ("kultur-\nog idrettsliv").
_SOFT = "\u00ad\u0002"
_HARD_AT_END = "\ufffe"
_SOFT_BREAK = re.compile(f"[{_SOFT}] *\n(?=\\w)")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f" + _SOFT + "]")
_DIGITS = re.compile(r"\d+")
_LOAD_ERRORS = {
    pdfium_c.FPDF_ERR_PASSWORD: "encrypted PDF",
    pdfium_c.FPDF_ERR_SECURITY: "encrypted PDF (unsupported security handler)",
    pdfium_c.FPDF_ERR_FORMAT: "damaged PDF (not a valid PDF file)",
    pdfium_c.FPDF_ERR_FILE: "damaged PDF (cannot be opened)",
}


def _open(data: bytes) -> pdfium.PdfDocument:
    if b"%PDF-" not in data[:1024]:
        raise UnreadableFile("not a PDF file")
    if b"%%EOF" not in data.rstrip(b"\x00\t\n\r\x0c ")[-1024:]:
        raise UnreadableFile("truncated PDF (no end-of-file marker)")
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        reason = _LOAD_ERRORS.get(exc.err_code or -1, f"unreadable PDF ({exc})")
        raise UnreadableFile(reason) from exc


def _normalise(raw: str) -> list[str]:
    """A page's lines: ligatures spelt out, soft hyphenation joined, control marks dropped."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n").translate(_LIGATURES)
    text = text.replace(_HARD_AT_END, "-")
    text = _CONTROL.sub("", _SOFT_BREAK.sub("", text))
    return [line.rstrip() for line in text.split("\n")]


def _key(line: str) -> str:
    return _DIGITS.sub("#", clean_inline(line).lower())


def _edges(lines: list[str]) -> list[int]:
    """Indexes of the first and last EDGE non-empty lines; fewer on a short page, so that
    its middle line is never taken for a header or footer."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    k = min(EDGE, max(1, len(filled) // 2))
    return sorted(set(filled[:k] + filled[-k:]))


def _drop_running(pages: list[list[str]]) -> list[list[str]]:
    """The pages without the header and footer lines that recur on most of them."""
    counts = Counter(k for lines in pages for k in {_key(lines[i]) for i in _edges(lines)})
    needed = max(2, (len(pages) + 1) // 2)
    running = {k for k, n in counts.items() if n >= needed}
    if not running:
        return pages
    # pdfium sometimes glues a footer to the page's last line with no space ("... EØSSide 1"):
    # cut it off there (after a space it may be the text's own "se side 3")
    glued = [re.compile(r"(?<=\S)" + _pattern(k) + r"\s*$", re.IGNORECASE) for k in running]
    kept = []
    for lines in pages:
        edges = _edges(lines)
        drop = {i for i in edges if _key(lines[i]) in running}
        page = []
        for i, line in enumerate(lines):
            if i in drop:
                continue
            if i in edges:
                for pattern in glued:
                    line = pattern.sub("", line)
            page.append(line)
        kept.append(page)
    return kept


def _pattern(key: str) -> str:
    """A regular expression for the lines whose ``_key`` is ``key``."""
    words = [re.escape(w).replace("\\#", "#").replace("#", r"\d+") for w in key.split()]
    return r"\s+".join(words)


def _page_text(lines: list[str]) -> str:
    """A page's lines as text: no blank lines at its ends, none doubled inside."""
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def _has_images(page: pdfium.PdfPage) -> bool:
    return any(True for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3))


def _read_pages(pdf: pdfium.PdfDocument) -> tuple[list[list[str]], list[bool]]:
    """Every page's lines, and whether it has images; pdfium's objects closed as we go."""
    pages, images = [], []
    for index in range(len(pdf)):
        page = pdf[index]
        try:
            textpage = page.get_textpage()
            try:
                pages.append(_normalise(textpage.get_text_range()))
            finally:
                textpage.close()
            images.append(_has_images(page))
        finally:
            page.close()
    return pages, images


def _headings(pdf: pdfium.PdfDocument, text: str, starts: list[int]) -> list[Heading]:
    """The bookmarks (outline), each placed where its title first appears on its page."""
    found: list[Heading] = []
    for mark in pdf.get_toc(max_depth=6):
        title, dest = clean_inline(mark.get_title() or ""), mark.get_dest()
        index = dest.get_index() if dest is not None else None
        if not title or index is None or not 0 <= index < len(starts):
            continue
        end = starts[index + 1] if index + 1 < len(starts) else len(text)
        at = text.find(title, starts[index], end)
        if at >= 0:
            found.append(Heading(at, mark.level + 1, title))
    return sorted(found, key=lambda h: h.start)


def read(data: bytes, name: str) -> Extracted:
    """The text of a PDF, page by page, cleaned as the module docstring says."""
    pdf = _open(data)
    try:
        lines, images = _read_pages(pdf)
        texts = [_page_text(page) for page in _drop_running(lines)]
        starts, offset = [], 0
        for page_text in texts:
            starts.append(offset)
            offset += len(page_text) + len(BLOCK_SEP)
        text = BLOCK_SEP.join(texts)
        scanned = [i + 1 for i, t in enumerate(texts) if not t.strip() and images[i]]
        if not text.strip():
            what = "scanned PDF?" if scanned else "no text in it"
            raise UnreadableFile(f"no text layer on any of its {len(texts)} pages ({what})")
        title = clean_inline(pdf.get_metadata_dict().get("Title", "")) or None
        headings = _headings(pdf, text, starts)
    finally:
        pdf.close()
    pages = ", ".join(map(str, scanned))
    have = f"pages {pages} have" if len(scanned) > 1 else f"page {pages} has"
    warnings = [f"{have} no text layer (scanned?): not searchable"] if scanned else []
    return Extracted(text, "pdf", title, starts, headings, warnings, scanned)
