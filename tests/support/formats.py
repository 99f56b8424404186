"""A small folder with one document of each format, each answering one question, for the
end-to-end tests of the formats (a real ``qa serve``, the real model, a real browser).

The PDF is ``documents.report_docx`` through LibreOffice: four pages, a running header and
footer, one known phrase per page. The others are written here so that each holds its own
facts (no two files share a passage).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import docx

from tests.support.documents import PAGE_PHRASES, convert, report_docx

PDF = "rapporter/kulturmelding.pdf"


@dataclass(frozen=True)
class Case:
    """A question whose answer (``phrase``) is in the file ``path`` of format ``format``."""

    format: str
    path: str
    question: str
    phrase: str


CASES = [
    Case("pdf", PDF, "Hvor mange utlån hadde biblioteket i fjor?", PAGE_PHRASES[1]),
    Case("docx", "byggesak.docx", "Hvor lang tid tar behandlingen av en byggesøknad?",
         "Byggesøknader behandles innen tolv uker"),
    Case("odt", "renovasjon.odt", "Hvor ofte hentes restavfallet?",
         "Restavfall hentes hver fjortende dag"),
    Case("html", "intranett/parkering.html", "Koster det å parkere elbil ved rådhuset?",
         "Elbiler parkerer gratis ved rådhuset"),
    Case("md", "vannverk.md", "Hvor ofte kontrolleres drikkevannet?",
         "Drikkevannet kontrolleres hver uke av laboratoriet"),
    Case("txt", "broyting.txt", "Når brøyter kommunen vegene?",
         "Kommunen brøyter kommunale veger når det har kommet 8 cm snø"),
]  # fmt: skip
#: The heading path of the docx answer.
DOCX_SECTION = "Byggesak › Saksbehandlingstid"

_HTML = """<!doctype html>
<html lang="nb"><head><meta charset="utf-8"><title>Parkering ved rådhuset</title></head>
<body>
<nav><a href="/">Forsiden</a> <a href="/ansatte">Ansattsider</a> <a href="/kart">Kart</a></nav>
<div class="cookie-banner">Vi bruker informasjonskapsler. Godta alle informasjonskapsler.</div>
<main><article>
<h1>Parkering ved rådhuset</h1>
<p>Rådhuset har 40 parkeringsplasser for besøkende og ansatte.</p>
<p>Elbiler parkerer gratis ved rådhuset. Andre biler betaler 20 kroner timen på hverdager.</p>
<p>Parkeringsplassen brøytes før klokken sju når det har snødd.</p>
</article></main>
<footer>Kommunen · Rådhusgata 1 · Sentralbord 12 34 56 78</footer>
</body></html>
"""
#: Filler that puts the docx answer into a passage of its own, under its own heading.
_FORM = (
    "Søknaden skal ha med situasjonskart, tegninger av fasader og snitt, og nabovarsel med "
    "kvittering. Mangler søknaden noe, får søkeren beskjed innen tre uker. "
)
_MARKDOWN = """# Vannverket

Kommunen har to vannverk som forsyner 18 000 innbyggere.

## Kvalitet

Drikkevannet kontrolleres hver uke av laboratoriet. Prøvene tas ved inntaket og på nettet.
"""
_TEXT = """Brøyting av kommunale veger

Kommunen brøyter kommunale veger når det har kommet 8 cm snø. Gang- og sykkelveger
brøytes først. Private veger brøytes ikke.
"""


def _word(path: Path, title: str, sections: list[tuple[str, str]]) -> Path:
    """A Word file: a level-1 title, then (level-2 heading, paragraph) pairs."""
    document = docx.Document()
    document.add_heading(title, 1)
    for heading, text in sections:
        document.add_heading(heading, 2)
        document.add_paragraph(text)
    document.save(str(path))
    return path


def write_format_corpus(folder: Path, work: Path) -> Path:
    """``folder`` with the files of ``CASES`` (two LibreOffice runs: PDF, ODT)."""
    (folder / "intranett").mkdir(parents=True, exist_ok=True)
    (folder / "rapporter").mkdir(exist_ok=True)
    _word(folder / "byggesak.docx", "Byggesak", [
        ("Søknad", "Søknad om byggetillatelse sendes elektronisk gjennom kommunens portal. "
         + _FORM * 4),
        ("Saksbehandlingstid", "Byggesøknader behandles innen tolv uker. Enkle tiltak går "
         "raskere, og kommunen svarer på tre uker."),
    ])  # fmt: skip
    odt_source = _word(work / "renovasjon.docx", "Renovasjon", [
        ("Henting", "Restavfall hentes hver fjortende dag. Papir hentes hver fjerde uke."),
        ("Gebyr", "Renovasjonsgebyret er 3 900 kroner i året for en vanlig husholdning."),
    ])  # fmt: skip
    report = report_docx(work / "kulturmelding.docx")
    profile = work / "lo-profile"
    (pdf,) = convert([report], "pdf", work / "pdf", profile)
    (odt,) = convert([odt_source], "odt", work / "odt", profile)
    (folder / PDF).write_bytes(pdf.read_bytes())
    (folder / "renovasjon.odt").write_bytes(odt.read_bytes())
    (folder / "intranett" / "parkering.html").write_text(_HTML, encoding="utf-8")
    (folder / "vannverk.md").write_text(_MARKDOWN, encoding="utf-8")
    (folder / "broyting.txt").write_text(_TEXT, encoding="utf-8")
    return folder


def report_pdf(dest: Path, work: Path) -> Path:
    """Just the four-page PDF report at ``dest`` (one LibreOffice run)."""
    work.mkdir(parents=True, exist_ok=True)
    (pdf,) = convert([report_docx(work / "kulturmelding.docx")], "pdf", work, work / "lo")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(pdf.read_bytes())
    return dest
