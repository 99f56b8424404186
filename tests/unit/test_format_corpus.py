"""The format corpus generator (eval/formats) on six NorQuAD texts, one of each format.

Needs ``soffice`` and ``pdftotext`` (scripts/setup.sh installs them) and the NorQuAD folder;
skipped without them. One LibreOffice run for the module (about 15 s).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eval.formats import check, make
from qa.sources.registry import read_document

pytestmark = pytest.mark.skipif(
    not (shutil.which("soffice") and shutil.which("pdftotext") and make.NORQUAD.is_dir()),
    reason="needs LibreOffice (soffice), poppler (pdftotext) and ../shared/norquad-validation",
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A NorQuAD folder cut to its first six texts (with their questions), and its corpus."""
    root = tmp_path_factory.mktemp("formats")
    made = make.build(make.cut(make.NORQUAD, 6, root / "src"), root / "out")
    return root, made


def _gold(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "gold.jsonl").read_text(encoding="utf-8").splitlines()]


def test_one_file_of_each_format_whose_questions_point_at_it(corpus: tuple[Path, dict]) -> None:
    root, made = corpus
    out = root / "out"
    assert sorted(made["files"].values()) == sorted(make.FORMATS)
    assert sorted(p.name for p in (out / "sources").iterdir()) == sorted(made["files"])
    gold = _gold(out)
    assert gold and all((out / "sources" / q["source"]).is_file() for q in gold)
    assert all(("answer_start" in q) == q["source"].endswith(".txt") for q in gold)


def test_every_file_reads_and_holds_its_answers(corpus: tuple[Path, dict]) -> None:
    out = corpus[0] / "out"
    texts = {}
    for path in (out / "sources").iterdir():
        doc = read_document(path.read_bytes(), path.name)
        assert doc.text.strip(), path.name
        assert make.HEADER not in doc.text, path.name
        assert not any(b in doc.text for b in make.BOILERPLATE), path.name
        texts[path.name] = check.norm(doc.text)
    for q in _gold(out):
        if q["source"].endswith(".pdf"):
            continue  # a line-end hyphen may differ in the PDF reader's text; pages checked below
        assert check.norm(q["answer"]) in texts[q["source"]], q["id"]


def test_pdf_runs_over_pages_with_header_and_footer(corpus: tuple[Path, dict]) -> None:
    out = corpus[0] / "out"
    (pdf,) = (out / "sources").glob("*.pdf")
    pages = [check.pdf_page(pdf, n) for n in range(1, 4)]
    assert all(pages), "a NorQuAD text spans at least three pages"
    assert all(make.HEADER in p and f"{make.FOOTER} {n}" in p for n, p in enumerate(pages, 1))


def test_page_check_accepts_the_right_page_only(corpus: tuple[Path, dict]) -> None:
    out = corpus[0] / "out"
    q = next(q for q in _gold(out) if q["source"].endswith(".pdf"))
    on = check._pages_holding(out / "sources" / q["source"], check.norm(q["answer"]))
    assert on, q["id"]
    wrong = 1 if on[0] != 1 else 3
    row = {"source": q["source"], "has_answer": True, "page_start": on[0], "page_end": on[0]}
    ask = q | {"results": [row]}
    assert check.check_pages([ask], out / "sources")["share"] == 1.0
    bad = ask | {"results": [row | {"page_start": wrong, "page_end": wrong}]}
    assert check.check_pages([bad], out / "sources")["share"] == 0.0
    none = ask | {"results": [row | {"page_start": None, "page_end": None}]}
    assert check.check_pages([none], out / "sources")["failures"][0]["why"] == "no page fields"


def test_a_second_build_with_the_same_inputs_does_nothing(corpus: tuple[Path, dict]) -> None:
    root, made = corpus
    before = {p.name: p.stat().st_mtime_ns for p in (root / "out" / "sources").iterdir()}
    assert make.build(root / "src", root / "out") == made
    after = {p.name: p.stat().st_mtime_ns for p in (root / "out" / "sources").iterdir()}
    assert after == before
    assert not make.is_complete(root / "out", made | {"inputs": "changed"})


def test_citation_check_finds_an_inexact_passage() -> None:
    rows = [{"source": "a.md", "start": 2, "end": 5, "text": "llo"}]
    assert check.check_citations([{"results": rows}], {"a.md": "hello"})["share"] == 1.0
    wrong = [rows[0] | {"text": "lo!"}]
    assert check.check_citations([{"results": wrong}], {"a.md": "hello"})["share"] == 0.0
