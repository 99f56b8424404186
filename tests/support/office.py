"""The set of real office documents the format tests use, made with LibreOffice in one go."""

from __future__ import annotations

from pathlib import Path

from tests.support.documents import convert, encrypted_pdf_filter, report_docx, scanned_docx


def office_documents(root: Path) -> dict[str, Path]:
    """report.pdf/.odt (four pages, running header and footer), scan.pdf (a picture only),
    mixed.pdf (text, then a scanned page), locked.pdf (needs a password)."""
    root.mkdir(parents=True, exist_ok=True)
    profile = root / "profile"
    report = report_docx(root / "report.docx")
    scan, mixed = scanned_docx(root / "scan.docx", False), scanned_docx(root / "mixed.docx", True)
    report_pdf, scan_pdf, mixed_pdf = convert([report, scan, mixed], "pdf", root / "pdf", profile)
    (report_odt,) = convert([report], "odt", root / "odt", profile)
    (locked,) = convert([mixed], encrypted_pdf_filter("hemmelig"), root / "locked", profile)
    return {
        "report.pdf": report_pdf,
        "report.odt": report_odt,
        "scan.pdf": scan_pdf,
        "mixed.pdf": mixed_pdf,
        "locked.pdf": locked,
    }
