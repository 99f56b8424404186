"""End to end over one document of each format: a real ``qa serve`` (the CLI as a
subprocess, the real model) indexes PDF, Word, OpenDocument, HTML, Markdown and text, and
every answer is an exact citation with the page (checked with poppler's ``pdftotext``, an
independent reader) or the heading path the format gives; the originals come back intact.

Needs LibreOffice (``soffice``) and ``pdftotext`` (``scripts/setup.sh``); about a minute.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.documents import HEADER, pdftotext_page
from tests.support.formats import CASES, DOCX_SECTION, PDF, Case, write_format_corpus
from tests.support.server import Server, qa_env, qa_serve

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("soffice") and shutil.which("pdftotext")),
        reason="needs LibreOffice (soffice) and poppler (pdftotext)",
    ),
]


def squeeze(text: str) -> str:
    """White space folded: a PDF's line breaks are not part of the words."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("formats-e2e")
    return write_format_corpus(work / "sources", work)


@pytest.fixture(scope="module")
def server(sources: Path) -> Iterator[Server]:
    work = sources.parent
    env = qa_env(QA_RELOAD_INTERVAL_S="60")
    with qa_serve(work / "index", sources, env=env, cwd=work, timeout_s=900) as running:
        yield running


def get(server: Server, path: str, **params: object) -> httpx.Response:
    r = httpx.get(f"{server.url}{path}", params=params, timeout=120)  # type: ignore[arg-type]
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return r


def answer(server: Server, case: Case) -> dict:
    """The first result from the case's file that holds its answer, every result checked
    to be an exact span of the text ``GET /sources/{path}`` serves."""
    results = get(server, "/search", q=case.question, k=5).json()["results"]
    texts: dict[str, str] = {}
    for r in results:
        if r["source"] not in texts:
            texts[r["source"]] = get(server, f"/sources/{r['source']}").text
        assert r["text"] == texts[r["source"]][r["start"] : r["end"]], r
    found = [r for r in results if r["source"] == case.path and case.phrase in squeeze(r["text"])]
    assert found, (case, [(r["source"], r["text"][:80]) for r in results])
    return found[0]


def test_every_format_is_indexed(server: Server) -> None:
    listed = {s["path"]: s for s in get(server, "/sources").json()["sources"]}
    assert {c.path: c.format for c in CASES} == {p: s["format"] for p, s in listed.items()}
    assert listed[PDF]["pages"] == 4
    assert all(s["pages"] == 0 for p, s in listed.items() if p != PDF)


@pytest.mark.parametrize("case", CASES, ids=[c.format for c in CASES])
def test_answers_are_exact_citations(server: Server, case: Case) -> None:
    hit = answer(server, case)
    if case.format == "pdf":
        assert hit["page_start"] is not None and hit["page_start"] <= hit["page_end"]
    else:
        assert hit["page_start"] is None and hit["page_end"] is None


def test_pdf_pages_hold_the_answer(server: Server, sources: Path) -> None:
    """The cited pages are where pdftotext, not our reader, finds the answer."""
    case = next(c for c in CASES if c.format == "pdf")
    hit = answer(server, case)
    pages = range(hit["page_start"], hit["page_end"] + 1)
    assert any(case.phrase in squeeze(pdftotext_page(sources / PDF, n)) for n in pages), hit
    assert HEADER not in hit["text"]  # the running header is not indexed


def test_docx_answer_has_its_section(server: Server) -> None:
    hit = answer(server, next(c for c in CASES if c.format == "docx"))
    assert hit["section"] == DOCX_SECTION


@pytest.mark.parametrize("case", CASES, ids=[c.format for c in CASES])
def test_original_is_the_indexed_file(server: Server, sources: Path, case: Case) -> None:
    r = get(server, f"/sources/{case.path}/original")
    assert r.content == (sources / case.path).read_bytes()
    assert r.headers["x-content-type-options"] == "nosniff"
    disposition = r.headers["content-disposition"]
    if case.format == "pdf":
        assert r.headers["content-type"] == "application/pdf"
        assert disposition.startswith("inline;")
        assert "script-src 'none'" in r.headers["content-security-policy"]
    else:
        assert disposition.startswith("attachment;")
        assert r.headers["content-security-policy"].startswith("sandbox")
