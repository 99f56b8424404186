"""Format readers without LibreOffice: the document model, .docx, .odt, HTML, Markdown."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import docx
import pytest
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn

from qa.sources import docx as docx_reader
from qa.sources import html, markdown, odt, pdf
from qa.sources.document import (
    Extracted,
    Heading,
    TextBuilder,
    UnreadableFile,
    page_span,
    section_at,
)
from qa.sources.registry import read_document
from tests.support.documents import HEADER, PAGE_PHRASES, TABLE, TITLE, report_docx


def assert_headings_exact(doc: Extracted) -> None:
    for heading in doc.headings:
        assert doc.text[heading.start : heading.start + len(heading.text)] == heading.text


def test_page_span() -> None:
    assert page_span([], 0, 5) == (None, None)
    pages = [0, 10, 20]
    assert page_span(pages, 0, 5) == (1, 1)
    assert page_span(pages, 5, 10) == (1, 1)
    assert page_span(pages, 8, 12) == (1, 2)
    assert page_span(pages, 20, 25) == (3, 3)
    assert page_span(pages, 12, 30) == (2, 3)


def test_section_at_follows_heading_levels() -> None:
    headings = [
        Heading(5, 1, "Kulturmeldingen"),
        Heading(10, 2, "Kulturskolen"),
        Heading(20, 2, "Biblioteket"),
        Heading(30, 1, "Idrett"),
        Heading(35, 3, "Haller"),
    ]
    assert section_at(headings, 2) == ""
    assert section_at(headings, 7) == "Kulturmeldingen"
    assert section_at(headings, 15) == "Kulturmeldingen › Kulturskolen"
    assert section_at(headings, 25) == "Kulturmeldingen › Biblioteket"
    assert section_at(headings, 36) == "Idrett › Haller"
    assert section_at([], 3) == ""


def test_text_builder_offsets_are_exact() -> None:
    out = TextBuilder()
    out.paragraph("  Første   avsnitt \n fortsetter ")
    out.heading("Kultur  skolen", 2)
    out.table([["a", " b "], ["", ""], ["c", "d"]])
    out.paragraph("   ")
    assert out.text == "Første avsnitt fortsetter\n\nKultur skolen\n\na | b\nc | d"
    assert out.headings == [Heading(27, 2, "Kultur skolen")]


def test_docx_headings_tables_and_order(tmp_path: Path) -> None:
    doc = docx_reader.read(report_docx(tmp_path / "r.docx").read_bytes(), "r.docx")
    assert doc.format == "docx" and doc.title == TITLE
    assert [(h.level, h.text) for h in doc.headings] == [
        (1, "Kulturmeldingen"),
        (2, "Kulturskolen"),
        (2, "Biblioteket"),
    ]
    assert_headings_exact(doc)
    rows = [" | ".join(row) for row in TABLE]
    assert all(f"\n{row}\n" in doc.text for row in rows)
    positions = [doc.text.index(p) for p in PAGE_PHRASES]
    assert positions == sorted(positions)
    assert doc.text.index("Kulturskolen\n") < doc.text.index(rows[0]) < positions[1]
    assert HEADER not in doc.text and "Side" not in doc.text  # page header and footer
    assert section_at(doc.headings, positions[2]) == "Kulturmeldingen › Biblioteket"


def test_docx_norwegian_styles_outline_levels_and_merged_cells() -> None:
    document = docx.Document()
    document.styles.add_style("Overskrift 2", WD_STYLE_TYPE.PARAGRAPH)
    document.add_paragraph("Tilskudd", style="Overskrift 2")
    outlined = document.add_paragraph("Søknadsfrist")
    level = OxmlElement("w:outlineLvl")
    level.set(qn("w:val"), "2")
    outlined._p.get_or_add_pPr().append(level)
    table = document.add_table(rows=2, cols=3)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "Sammenslått"
    table.cell(0, 2).text = "Høyre"
    for c, value in enumerate(["a", "b", "c"]):
        table.cell(1, c).text = value
    out = io.BytesIO()
    document.save(out)
    doc = docx_reader.read(out.getvalue(), "n.docx")
    assert [(h.level, h.text) for h in doc.headings] == [(2, "Tilskudd"), (3, "Søknadsfrist")]
    assert doc.text.endswith("Sammenslått | Høyre\na | b | c")
    assert doc.title == "Tilskudd"


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize("reader", [docx_reader.read, odt.read])
def test_zip_that_is_no_document_is_unreadable(reader: Callable[[bytes, str], Extracted]) -> None:
    read = reader
    with pytest.raises(UnreadableFile, match="not a zip file"):
        read(b"PK\x03\x04 not really", "x")
    with pytest.raises(UnreadableFile, match="not a"):
        read(_zip({"hello.txt": b"hei"}), "x")


ODT_CONTENT = """<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"><office:body><office:text>
<text:sequence-decls><text:sequence-decl text:name="Table"/></text:sequence-decls>
<text:h text:outline-level="1">Kulturmeldingen</text:h>
<text:p>Innledning<text:s text:c="3"/>med<text:tab/>mellomrom<text:note><text:note-body>
<text:p>Fotnote</text:p></text:note-body></text:note>.</text:p>
<text:section><text:h text:outline-level="2">Kulturskolen</text:h>
<text:list><text:list-item><text:p>Punkt en</text:p></text:list-item></text:list></text:section>
<table:table><table:table-header-rows><table:table-row><table:table-cell><text:p>Fag</text:p>
</table:table-cell><table:table-cell><text:p>Pris</text:p></table:table-cell></table:table-row>
</table:table-header-rows><table:table-row><table:table-cell><text:p>Piano</text:p>
</table:table-cell><table:table-cell><text:p>3 000 kr</text:p></table:table-cell>
<table:covered-table-cell/></table:table-row></table:table>
<text:p>Slutt</text:p></office:text></office:body></office:document-content>"""
ODT_META = """<?xml version="1.0" encoding="UTF-8"?><office:document-meta
 xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:dc="http://purl.org/dc/elements/1.1/"><office:meta><dc:title>Kulturmelding
 2024</dc:title></office:meta></office:document-meta>"""


def test_odt_structure_from_content_xml() -> None:
    data = _zip(
        {
            "mimetype": b"application/vnd.oasis.opendocument.text",
            "content.xml": ODT_CONTENT.encode(),
            "meta.xml": ODT_META.encode(),
        }
    )
    doc = odt.read(data, "k.odt")
    assert doc.text == (
        "Kulturmeldingen\n\nInnledning med mellomrom.\n\nKulturskolen\n\nPunkt en\n\n"
        "Fag | Pris\nPiano | 3 000 kr\n\nSlutt"
    )
    assert [(h.level, h.text) for h in doc.headings] == [
        (1, "Kulturmeldingen"),
        (2, "Kulturskolen"),
    ]
    assert_headings_exact(doc)
    assert doc.title == "Kulturmelding 2024"


INTRANET_PAGE = """<!doctype html><html><head><meta charset="windows-1252">
<title>Kulturskolen – Intranett</title><script>var navText = "skriptet";</script></head>
<body class="has-cookie-banner"><form id="aspnetForm"><div class="layout has-sidebar">
<header><a href="/">Kommunens intranett</a><nav><a href="/a">Ansattsider</a></nav></header>
<div id="cookie-banner" class="cookie-consent">Vi bruker informasjonskapsler. Godta alle</div>
<div class="breadcrumbs">Forside › Kultur</div>
<div class="content"><h1>Kulturmeldingen</h1><p>Kommunen vil styrke <b>kulturlivet</b><br>
i alle bydeler.</p><h2>Kulturskolen</h2><p>Kulturskolen gir undervisning til 412 elever.</p>
<table><tr><th>Fag</th><th>Pris</th></tr><tr><td>Piano</td><td>3 000 kr</td></tr></table>
<ul><li>Dans</li><li>Teater</li></ul><!-- skjult kommentar --></div>
<aside>Relaterte saker</aside><div style="display: none">Skjult tekst</div></div></form>
<footer>Kontakt postmottak@kommune.no</footer></body></html>"""
BOILERPLATE = [
    "Kommunens intranett",
    "Ansattsider",
    "informasjonskapsler",
    "Forside",
    "Relaterte",
    "Skjult",
    "postmottak",
    "skriptet",
    "kommentar",
]


def test_html_main_content_without_boilerplate() -> None:
    doc = html.read(INTRANET_PAGE.encode("cp1252"), "k.html")
    assert doc.title == "Kulturskolen – Intranett"
    for text in BOILERPLATE:
        assert text not in doc.text
    assert doc.text == (
        "Kulturmeldingen\n\nKommunen vil styrke kulturlivet i alle bydeler.\n\nKulturskolen\n\n"
        "Kulturskolen gir undervisning til 412 elever.\n\nFag | Pris\nPiano | 3 000 kr\n\n"
        "Dans\n\nTeater"
    )
    assert [(h.level, h.text) for h in doc.headings] == [
        (1, "Kulturmeldingen"),
        (2, "Kulturskolen"),
    ]
    assert_headings_exact(doc)


def test_html_prefers_main_and_falls_back_to_h1_title() -> None:
    page = "<body><div>Meny</div><main><h1>Søknad</h1><p>Tekst æøå</p></main></body>"
    doc = html.read(page.encode(), "s.htm")
    assert (doc.text, doc.title) == ("Søknad\n\nTekst æøå", "Søknad")


@pytest.mark.parametrize(
    "page", [b"", b"  \n ", b"<html><body><nav>Hjem</nav><footer>x</footer></body></html>"]
)
def test_empty_html_is_unreadable(page: bytes) -> None:
    with pytest.raises(UnreadableFile, match="empty HTML"):
        html.read(page, "tom.html")


MARKDOWN = """---
title: "Retningslinjer for tilskudd"
---
Innledning før første overskrift.

# Tilskudd til *kultur*

```sh
# ikke en overskrift
```

Søknadsfrist
------------

Tekst.
"""


def test_markdown_headings_and_unchanged_text() -> None:
    doc = markdown.read(MARKDOWN.encode(), "t.md")
    assert doc.text == MARKDOWN and doc.format == "md"
    assert [(h.level, h.text) for h in doc.headings] == [
        (1, "Tilskudd til kultur"),
        (2, "Søknadsfrist"),
    ]
    assert doc.headings[0].start == MARKDOWN.index("Tilskudd til *kultur*")
    assert doc.headings[1].start == MARKDOWN.index("Søknadsfrist")
    assert doc.title == "Retningslinjer for tilskudd"
    assert markdown.read(b"# Tittel\n\ntekst", "x.md").title == "Tittel"


def test_read_document_picks_the_reader_by_suffix() -> None:
    assert read_document("æøå".encode("cp1252"), "A.TXT").format == "txt"
    assert read_document(b"# H\n", "a.Markdown").format == "md"
    assert read_document(b"<p>hei</p>", "a.HTM").format == "html"
    with pytest.raises(UnreadableFile, match="not a PDF"):
        read_document(b"hei", "a.pdf")


def test_pdf_line_cleaning() -> None:
    raw = "Oﬃsiell ﬁnansiering\r\nkultur\x02\r\nskolen og kultur\u00adliv\nidretts-\nlag"
    assert pdf._normalise(raw) == [
        "Offisiell finansiering",
        "kulturskolen og kulturliv",
        "idretts-",
        "lag",
    ]


def test_pdf_running_headers_and_page_numbers_dropped() -> None:
    pages = [["Forside", "", "Innhold"]] + [
        [f"Kulturmeldingen {2024}", "", f"Tekst på side {n}", "", f"Side {n} av 4"]
        for n in range(2, 5)
    ]
    kept = pdf._drop_running(pages)
    assert kept[0] == ["Forside", "", "Innhold"]
    assert [[line for line in page if line] for page in kept[1:]] == [
        [f"Tekst på side {n}"] for n in range(2, 5)
    ]


def test_pdf_footer_glued_to_the_last_line_is_cut_but_a_reference_is_kept() -> None:
    from qa.sources.pdf import _drop_running

    header = "KS — Testkorpus"
    pages = [
        [header, "tekst a, se side 3", "Side 1"],
        [header, "tekst b om EØSSide 2"],  # pdfium gave no line break before the footer
        [header, "tekst c", "Side 3"],
    ]
    assert _drop_running(pages) == [["tekst a, se side 3"], ["tekst b om EØS"], ["tekst c"]]


def test_pdf_hard_hyphen_at_a_line_end_is_kept() -> None:
    from qa.sources.pdf import _normalise

    # pdfium: U+FFFE for a hard hyphen at a line end, U+0002 for a soft one
    assert _normalise("Sverige\ufffe\r\nferie og kultur\u0002\r\nliv") == [
        "Sverige-",
        "ferie og kulturliv",
    ]
