"""Documents of every format through the index: manifest, passages, reuse by reader version.

No LibreOffice needed: the Word file is written with python-docx, the others are text.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from qa.config import Settings
from qa.index import build_index, load_index, up_to_date
from qa.sources import registry
from qa.sources import scan as scan_mod
from tests.support.documents import report_docx
from tests.support.fake import FakeEmbedder
from tests.unit.test_formats import BOILERPLATE, INTRANET_PAGE

NOTE = (
    "---\ntitle: Notatet\n---\n# Innledning\n\n"
    + "Kommunen planlegger nye tiltak for kulturlivet. " * 4
    + "\n\n## Tiltak\n\n"
    + "Tiltakene gjelder alle bydeler og alle aldre. " * 4
)


@pytest.fixture
def mixed(tmp_path: Path) -> Settings:
    """A folder with one file of each format, and settings to index it."""
    src = tmp_path / "kilder"
    src.mkdir()
    report_docx(src / "rapport.docx")
    (src / "intranett.html").write_bytes(INTRANET_PAGE.encode("cp1252"))
    (src / "notat.md").write_text(NOTE, encoding="utf-8")
    (src / "plain.txt").write_text("Vegvesenet brøyter vegene.\n\nOgså om natta.", "utf-8")
    return Settings(sources_dir=src, index_dir=tmp_path / "index", chunk_size=200, _env_file=None)


def _manifest(settings: Settings) -> dict:  # type: ignore[type-arg]
    path = Path(settings.index_dir) / "current" / "manifest.json"
    return json.loads(path.read_text("utf-8"))  # type: ignore[no-any-return]


def test_every_format_is_indexed_with_its_structure(mixed: Settings) -> None:
    report = build_index(mixed, FakeEmbedder(), progress=False)
    assert report.formats == {"docx": 1, "html": 1, "md": 1, "txt": 1} and not report.skipped
    sources = _manifest(mixed)["sources"]
    assert {p: (s["format"], s["reader_version"]) for p, s in sources.items()} == {
        "rapport.docx": ("docx", registry.reader_for("a.docx").version),
        "intranett.html": ("html", 1),
        "notat.md": ("md", 1),
        "plain.txt": ("txt", 1),
    }
    assert sources["rapport.docx"]["encoding"] == "docx"
    assert sources["intranett.html"]["encoding"] == "windows-1252"
    assert all(s["pages"] == 0 and s["scanned_pages"] == [] for s in sources.values())
    assert sources["notat.md"]["title"] == "Notatet"
    assert sources["intranett.html"]["title"] == "Kulturskolen – Intranett"
    assert sources["plain.txt"]["title"] == "Vegvesenet brøyter vegene."

    loaded = load_index(mixed.index_dir, mixed, FakeEmbedder())
    for p in loaded.passages:  # citations stay exact against the indexed text
        assert loaded.texts[p.source][p.start : p.end] == p.text
    sections = {s: {p.section for p in loaded.passages if p.source == s} for s in sources}
    assert "Kulturmeldingen › Kulturskolen" in sections["rapport.docx"]
    assert "Innledning › Tiltak" in sections["notat.md"]
    assert sections["intranett.html"] == {"Kulturmeldingen"}  # one short passage
    assert sections["plain.txt"] == {""}
    html_text = " ".join(p.text for p in loaded.passages if p.source == "intranett.html")
    for boilerplate in BOILERPLATE:  # navigation, cookie banner, aside, footer: nowhere
        assert boilerplate not in html_text
    assert all(p.page_start is None for p in loaded.passages)


def test_a_reader_version_bump_rereads_only_that_format(
    mixed: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = build_index(mixed, FakeEmbedder(), progress=False)
    docx_passages = _manifest(mixed)["sources"]["rapport.docx"]["passages"]
    monkeypatch.setattr(registry, "READERS", dict(registry.READERS))
    bumped = registry.reader_for("a.docx")
    assert isinstance(bumped, registry.FormatReader)
    registry.register(dataclasses.replace(bumped, version=bumped.version + 1))
    embedder = FakeEmbedder()
    assert up_to_date(mixed, embedder.fingerprint) is None  # no longer up to date
    report = build_index(mixed, embedder, progress=False)
    assert report.changed and report.embedded == docx_passages
    assert embedder.embedded == report.embedded + report.sentences  # the docx's sentences too
    assert report.reused == first.passages - docx_passages
    assert _manifest(mixed)["sources"]["rapport.docx"]["reader_version"] == bumped.version + 1


def test_unchanged_documents_are_not_read_again(
    mixed: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``qa index`` on an unchanged folder parses no document: readings come from the index."""
    build_index(mixed, FakeEmbedder(), progress=False)

    def no_workers(*args: object, **kwargs: object) -> None:
        raise AssertionError("a document was read again")

    monkeypatch.setattr(scan_mod, "extract_many", no_workers)
    report = up_to_date(mixed, FakeEmbedder().fingerprint)
    assert report is not None and report.formats["docx"] == 1
    (Path(mixed.sources_dir) / "plain.txt").write_text("Vegene brøytes om natta.", "utf-8")
    embedder = FakeEmbedder()
    report = build_index(mixed, embedder, progress=False)
    assert report.changed and report.embedded == 1  # the edited text file only
    assert embedder.embedded == 1 + report.sentences == 2  # its passage and one sentence
    loaded = load_index(mixed.index_dir, mixed, embedder)
    docx_sections = {p.section for p in loaded.passages if p.source == "rapport.docx"}
    assert "Kulturmeldingen › Kulturskolen" in docx_sections  # reused passages keep theirs


def test_a_reader_failure_is_remembered_not_retried(
    mixed: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    (Path(mixed.sources_dir) / "tom.html").write_text("<html><body></body></html>", "utf-8")
    report = build_index(mixed, FakeEmbedder(), progress=False)
    assert [(s.path, s.reason) for s in report.skipped] == [
        ("tom.html", "empty HTML page (no text in its main content)")
    ]
    monkeypatch.setattr(scan_mod, "extract_many", None)  # any read would fail
    again = up_to_date(mixed, FakeEmbedder().fingerprint)
    assert again is not None and again.skipped == report.skipped


def test_an_index_from_before_formats_loads_and_is_reused(
    tiny_index: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    """Rows without the new fields read with defaults; no rebuild, no FORMAT bump."""
    build = tiny_index / "current"
    rows = [json.loads(x) for x in (build / "passages.jsonl").read_text("utf-8").splitlines()]
    new_fields = ("page_start", "page_end", "section")
    (build / "passages.jsonl").write_text(
        "".join(
            json.dumps({k: v for k, v in r.items() if k not in new_fields}) + "\n" for r in rows
        )
    )
    manifest = json.loads((build / "manifest.json").read_text("utf-8"))
    for entry in manifest["sources"].values():
        for key in ("format", "reader_version", "pages", "scanned_pages", "warnings"):
            del entry[key]
    (build / "manifest.json").write_text(json.dumps(manifest))
    loaded = load_index(tiny_index, settings, fake_embedder)
    assert all(p.page_start is None and p.section == "" for p in loaded.passages)
    fake_embedder.embedded = 0
    report = build_index(settings, fake_embedder, progress=False)
    assert not report.changed and fake_embedder.embedded == 0
