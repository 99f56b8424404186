"""``qa index`` over real documents with a bad file of each format: each bad one is skipped
or flagged with its name and reason, the rest is indexed, and the exit status says so.

Needs LibreOffice (``soffice``) to make the PDFs; scripts/setup.sh installs it.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from qa.config import Settings
from qa.index import load_index
from tests.support.documents import HEADER, PAGE_PHRASES, report_docx
from tests.support.fake import FakeEmbedder
from tests.support.office import office_documents
from tests.support.procs import no_traceback, run_qa
from tests.unit.test_formats import INTRANET_PAGE

pytestmark = pytest.mark.skipif(
    not shutil.which("soffice"), reason="needs LibreOffice (soffice); scripts/setup.sh"
)


def _not_a_docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("bilde.png", b"\x89PNG not a document")
    return out.getvalue()


def test_bad_files_of_each_format_are_named_and_the_rest_indexed(tmp_path: Path) -> None:
    office = office_documents(tmp_path / "office")
    src = tmp_path / "kilder"
    src.mkdir()
    shutil.copy(office["report.pdf"], src / "rapport.pdf")
    shutil.copy(office["report.odt"], src / "rapport.odt")
    shutil.copy(office["mixed.pdf"], src / "delvis-skannet.pdf")
    report_docx(src / "rapport.docx")
    (src / "intranett.html").write_bytes(INTRANET_PAGE.encode("cp1252"))
    (src / "notat.txt").write_text("Kommunen brøyter vegene om natta.", encoding="utf-8")
    whole = office["report.pdf"].read_bytes()
    (src / "avkuttet.pdf").write_bytes(whole[: len(whole) // 2])
    shutil.copy(office["locked.pdf"], src / "laast.pdf")
    shutil.copy(office["scan.pdf"], src / "skannet.pdf")
    (src / "zip.docx").write_bytes(_not_a_docx())
    (src / "tom.html").write_text("<html><head></head><body></body></html>", encoding="utf-8")

    index = tmp_path / "index"
    args = ["index", "--sources", str(src), "--index", str(index), "--quiet"]
    result = run_qa(args, tmp_path, fake=True, timeout=300)
    assert result.returncode == 3, result.stderr
    no_traceback(result.stderr)
    lines = result.stderr.splitlines()

    def line_of(name: str) -> str:
        return next(x for x in lines if x.startswith(f"warning: skipped {name}: "))

    assert "truncated PDF" in line_of("avkuttet.pdf")
    assert "encrypted PDF" in line_of("laast.pdf")
    assert "no text layer" in line_of("skannet.pdf")
    assert "not a Word document" in line_of("zip.docx")
    assert "empty HTML page" in line_of("tom.html")
    scanned = "warning: delvis-skannet.pdf: page 2 has no text layer (scanned?): not searchable"
    assert scanned in lines
    assert "indexed: 2 pdf, 1 docx, 1 html, 1 odt, 1 txt" in result.stderr
    assert "6 sources" in result.stderr and "5 skipped" in result.stderr

    manifest = json.loads((index / "current" / "manifest.json").read_text("utf-8"))
    assert manifest["sources"]["delvis-skannet.pdf"]["scanned_pages"] == [2]
    assert manifest["sources"]["rapport.pdf"]["pages"] == len(PAGE_PHRASES)
    settings = Settings(sources_dir=src, index_dir=index, _env_file=None)
    loaded = load_index(index, settings, FakeEmbedder())
    pdf = [p for p in loaded.passages if p.source == "rapport.pdf"]
    for p in loaded.passages:
        assert loaded.texts[p.source][p.start : p.end] == p.text
        assert HEADER not in p.text  # running header: in no passage of any format
    for p in pdf:
        assert not re.search(r"^\s*Side \d+\s*$", p.text, re.MULTILINE)  # nor the footer
        assert p.page_start is not None and p.page_end is not None
        for number, phrase in enumerate(PAGE_PHRASES, start=1):
            if phrase in p.text:
                assert p.page_start <= number <= p.page_end
