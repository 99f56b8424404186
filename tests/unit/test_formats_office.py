"""PDF and ODT readers on real files that LibreOffice makes from Word documents.

Needs ``soffice`` and ``pdftotext`` (CI installs libreoffice-writer-nogui and poppler-utils
with scripts/setup.sh). The documents are made once per test session, with one soffice call
per target format.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from qa.sources import odt, pdf
from qa.sources.document import UnreadableFile, page_span, section_at
from tests.support.documents import (
    HEADER,
    LIGATURE_TEXT,
    PAGE_PHRASES,
    SOFT_HYPHEN_WORD,
    TABLE,
    TITLE,
    pdftotext_page,
)
from tests.support.office import office_documents

pytestmark = pytest.mark.skipif(
    not (shutil.which("soffice") and shutil.which("pdftotext")),
    reason="needs LibreOffice (soffice) and poppler (pdftotext); scripts/setup.sh installs them",
)


@pytest.fixture(scope="session")
def office(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return office_documents(tmp_path_factory.mktemp("office"))


def test_pdf_pages_match_pdftotext(office: dict[str, Path]) -> None:
    doc = pdf.read(office["report.pdf"].read_bytes(), "report.pdf")
    assert doc.format == "pdf" and doc.title == TITLE
    assert len(doc.pages) == len(PAGE_PHRASES) and doc.pages[0] == 0
    bounds = [*doc.pages, len(doc.text)]
    for number, phrase in enumerate(PAGE_PHRASES, start=1):
        assert phrase in " ".join(pdftotext_page(office["report.pdf"], number).split())
        page_text = doc.text[bounds[number - 1] : bounds[number]]
        assert phrase in " ".join(page_text.split())
        at = doc.text.index(phrase.split()[0], bounds[number - 1])
        assert page_span(doc.pages, at, at + 10) == (number, number)
    positions = [doc.text.index(p.split()[0]) for p in PAGE_PHRASES]
    assert positions == sorted(positions)  # reading order


def test_pdf_running_header_and_footer_appear_nowhere(office: dict[str, Path]) -> None:
    assert HEADER in pdftotext_page(office["report.pdf"], 3)  # it is on the pages
    doc = pdf.read(office["report.pdf"].read_bytes(), "report.pdf")
    assert HEADER not in doc.text and "Kommunen –" not in doc.text
    assert not re.search(r"^\s*Side \d+\s*$", doc.text, re.MULTILINE)


def test_pdf_ligatures_soft_hyphens_and_sections(office: dict[str, Path]) -> None:
    doc = pdf.read(office["report.pdf"].read_bytes(), "report.pdf")
    assert "Den offisielle finansieringen flyttes" in doc.text
    assert SOFT_HYPHEN_WORD.replace("\u00ad", "") in doc.text
    assert not set("ﬀﬁﬂﬃﬄ\u00ad\x02\ufffe") & set(doc.text)
    assert LIGATURE_TEXT not in doc.text
    at = doc.text.index(PAGE_PHRASES[2].split()[0])
    assert section_at(doc.headings, at) == "Kulturmeldingen › Biblioteket"
    for heading in doc.headings:
        assert doc.text[heading.start :].startswith(heading.text)
    assert " ".join(TABLE[1]) in " ".join(doc.text.split())


def test_pdf_scanned_pages_are_flagged(office: dict[str, Path]) -> None:
    mixed = pdf.read(office["mixed.pdf"].read_bytes(), "mixed.pdf")
    assert mixed.scanned_pages == [2] and len(mixed.pages) == 2
    assert mixed.warnings == ["page 2 has no text layer (scanned?): not searchable"]
    assert "kommunestyret" in mixed.text
    with pytest.raises(UnreadableFile, match=r"no text layer .*scanned PDF"):
        pdf.read(office["scan.pdf"].read_bytes(), "scan.pdf")


def test_bad_pdfs_are_unreadable_with_a_reason(office: dict[str, Path]) -> None:
    with pytest.raises(UnreadableFile, match=r"^encrypted PDF$"):
        pdf.read(office["locked.pdf"].read_bytes(), "locked.pdf")
    data = office["report.pdf"].read_bytes()
    with pytest.raises(UnreadableFile, match="truncated PDF"):
        pdf.read(data[: len(data) * 2 // 3], "cut.pdf")
    with pytest.raises(UnreadableFile, match="damaged PDF"):
        pdf.read(data[:200] + b"\x00" * 500 + b"%%EOF\n", "broken.pdf")
    with pytest.raises(UnreadableFile, match="not a PDF"):
        pdf.read(b"<html>not a pdf</html>", "fake.pdf")


def test_odt_from_libreoffice_keeps_structure(office: dict[str, Path]) -> None:
    doc = odt.read(office["report.odt"].read_bytes(), "report.odt")
    assert doc.format == "odt" and doc.title == TITLE
    assert [(h.level, h.text) for h in doc.headings] == [
        (1, "Kulturmeldingen"),
        (2, "Kulturskolen"),
        (2, "Biblioteket"),
    ]
    for row in TABLE:
        assert f"\n{' | '.join(row)}\n" in doc.text
    positions = [doc.text.index(p) for p in PAGE_PHRASES]
    assert positions == sorted(positions)
    assert HEADER not in doc.text
    assert section_at(doc.headings, positions[1]) == "Kulturmeldingen › Kulturskolen"
