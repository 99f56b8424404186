"""Real test documents: Word files written with python-docx, turned into PDF and ODT by
LibreOffice (``soffice``, which CI installs with ``scripts/setup.sh``).

``report_docx`` is a several-page report: a running header and a page-number footer on every
page, headings, a table, one known phrase per page (``PAGE_PHRASES``), a ligature and a soft
hyphen. ``convert`` runs one soffice call for many files (starting it costs seconds).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import docx
from docx.enum.text import WD_BREAK
from docx.oxml import OxmlElement
from docx.oxml.ns import qn

HEADER = "Kommunen – Kulturmeldingen 2024 – Intern"
FOOTER = "Side"  # followed by the page number field
TITLE = "Kulturmeldingen 2024"
#: One sentence per page of the report, in order; page N holds PAGE_PHRASES[N-1].
PAGE_PHRASES = [
    "Kulturskolen har 412 elever i skoleåret",
    "Biblioteket hadde 38 000 utlån i fjor",
    "Frivilligsentralen samarbeider med 27 lag",
    "Kulturhuset fikk nytt lysanlegg i mars",
]
TABLE = [["Fag", "Elever", "Pris"], ["Piano", "41", "3 000 kr"], ["Dans", "87", "2 400 kr"]]
LIGATURE_TEXT = "Den oﬀisielle ﬁnansieringen ﬂyttes"  # U+FB00, U+FB01, U+FB02
SOFT_HYPHEN_WORD = "kultur\u00adskolelærerne"
FILLER = (
    "Kommunen arbeider for et levende kulturliv med tilbud til alle innbyggere, "
    "uansett alder og bakgrunn. "
)
SOFFICE = shutil.which("soffice")


def _page_field(paragraph: object) -> None:
    """A PAGE field (the page number) at the end of a paragraph."""
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), "PAGE")
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "1"
    run.append(text)
    field.append(run)
    paragraph._p.append(field)  # type: ignore[attr-defined]  # a python-docx Paragraph


def report_docx(path: Path) -> Path:
    """A four-page report with headings, a table, a running header and footer."""
    document = docx.Document()
    document.core_properties.title = TITLE
    section = document.sections[0]
    section.header.paragraphs[0].text = HEADER
    footer = section.footer.paragraphs[0]
    footer.text = f"{FOOTER} "
    _page_field(footer)
    document.add_heading("Kulturmeldingen", 1)
    for number, phrase in enumerate(PAGE_PHRASES, start=1):
        if number > 1:
            document.paragraphs[-1].add_run().add_break(WD_BREAK.PAGE)
        if number == 2:
            document.add_heading("Kulturskolen", 2)
            table = document.add_table(rows=len(TABLE), cols=len(TABLE[0]))
            for r, row in enumerate(TABLE):
                for c, value in enumerate(row):
                    table.cell(r, c).text = value
        if number == 3:
            document.add_heading("Biblioteket", 2)
            document.add_paragraph(f"{LIGATURE_TEXT} og {SOFT_HYPHEN_WORD} møtes.")
        document.add_paragraph(FILLER * 3)
        document.add_paragraph(f"{phrase}.")
        document.add_paragraph(FILLER * 2)
    document.save(str(path))
    return path


def png(width: int = 600, height: int = 800) -> bytes:
    """A picture with shapes and no text, like a scanned page."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for y in range(40, height - 40, 30):
        draw.rectangle((40, y, width - 40 - (y % 90), y + 12), fill="black")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def scanned_docx(path: Path, text_first: bool) -> Path:
    """A document whose (second) page holds only a picture: a scan with no text layer."""
    document = docx.Document()
    if text_first:
        document.add_paragraph("Vedtaket ble fattet i kommunestyret i juni.")
        document.paragraphs[-1].add_run().add_break(WD_BREAK.PAGE)
    document.add_picture(io.BytesIO(png()), width=docx.shared.Cm(12))
    document.save(str(path))
    return path


def convert(files: list[Path], target: str, outdir: Path, profile: Path) -> list[Path]:
    """Convert ``files`` with one soffice call; ``target`` is e.g. "pdf" or "odt" (with an
    export filter after a colon). Returns the converted files, in order."""
    assert SOFFICE, "soffice is not installed"
    outdir.mkdir(parents=True, exist_ok=True)
    command = [
        SOFFICE,
        f"-env:UserInstallation={profile.resolve().as_uri()}",
        "--headless",
        "--norestore",
        "--convert-to",
        target,
        "--outdir",
        str(outdir),
        *map(str, files),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=240)
    suffix = "." + target.split(":", 1)[0]
    converted = [outdir / (f.stem + suffix) for f in files]
    missing = [str(p) for p in converted if not p.exists()]
    assert not missing, f"soffice made no {missing}"
    return converted


def encrypted_pdf_filter(password: str) -> str:
    """The --convert-to target for a PDF that needs ``password`` to open."""
    options = (
        '{"EncryptFile":{"type":"boolean","value":"true"},'
        f'"DocumentOpenPassword":{{"type":"string","value":"{password}"}}}}'
    )
    return f"pdf:writer_pdf_Export:{options}"


def pdftotext_page(pdf: Path, page: int) -> str:
    """Page ``page`` (1-based) of ``pdf`` as poppler's pdftotext reads it: an independent check."""
    command = ["pdftotext", "-layout", "-f", str(page), "-l", str(page), str(pdf), "-"]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout
