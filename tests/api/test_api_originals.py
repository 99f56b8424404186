"""``GET /sources/{path}/original``: the original bytes of indexed files only, only while
unchanged, never through a link, and never as something that runs on the service's origin."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa.api.originals import ATTACHMENT_CSP, PDF_CSP, original_response
from qa.config import Settings
from qa.index import build_index
from tests.api.helpers import assert_error
from tests.support.client import api

HOSTILE_HTML = (
    "<!doctype html><html><head><title>Intranett</title></head><body><h1>Ferie</h1>"
    "<p>Søknad om ferie sendes til lederen.</p><script>window.__pwned = 1</script>"
    '<svg onload="window.__pwned = 1"></svg></body></html>'
)
NOTE = "Notat om ferie\n\nFerie søkes innen 1. mars. Lederen godkjenner søknaden.\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An HTML page with a script, a note with æøå and spaces in its name, a file named
    'original' in a folder, and a hidden file the scanner never indexes."""
    root = tmp_path / "originals"
    (root / "mappe").mkdir(parents=True)
    (root / "side.html").write_text(HOSTILE_HTML, encoding="utf-8")
    (root / "mappe" / "notat æøå.txt").write_text(NOTE, encoding="utf-8")
    (root / "mappe" / "original").write_text("Originalen heter bare original.\n", "utf-8")
    (root / ".hemmelig.txt").write_text("Hemmelig passord\n", encoding="utf-8")
    return root


@pytest.fixture
def osettings(folder: Path, settings: Settings, fake_embedder: Any) -> Settings:
    s = Settings(**{**settings.model_dump(), "sources_dir": folder}, _env_file=None)
    build_index(s, fake_embedder, progress=False)
    return s


@pytest.fixture
def client(osettings: Settings, fake_embedder: Any) -> Iterator[TestClient]:
    with api(osettings, fake_embedder) as c:
        yield c


def test_html_original_is_an_inert_attachment(client: TestClient, folder: Path) -> None:
    r = client.get("/sources/side.html/original")
    assert r.status_code == 200
    assert r.content == (folder / "side.html").read_bytes()
    assert r.headers["content-disposition"].startswith("attachment;")
    csp = r.headers["content-security-policy"]
    assert csp == ATTACHMENT_CSP and csp.startswith("sandbox")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    listed = {s["path"]: s for s in client.get("/sources").json()["sources"]}
    assert listed["side.html"]["format"] == "html"
    assert r.headers["content-type"] == "text/html; charset=utf-8"  # the format's, not sniffed
    assert r.headers["x-index-version"] == client.get("/health").json()["index_version"]


def test_name_with_spaces_and_non_ascii(client: TestClient, folder: Path) -> None:
    r = client.get("/sources/mappe/notat æøå.txt/original")
    assert r.status_code == 200 and r.content == NOTE.encode("utf-8")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    disposition = r.headers["content-disposition"]
    assert 'filename="notat ___.txt"' in disposition
    assert "filename*=UTF-8''notat%20%C3%A6%C3%B8%C3%A5.txt" in disposition


def test_a_source_named_original_keeps_its_text_route(client: TestClient) -> None:
    r = client.get("/sources/mappe/original")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert r.text == "Originalen heter bare original.\n"
    body = client.get("/sources/mappe/original", params={"format": "json"}).json()
    assert body["path"] == "mappe/original"
    again = client.get("/sources/mappe/original/original")
    assert again.headers["content-disposition"].startswith("attachment;")
    assert_error(client.get("/sources/mappe/original?format=xml"), 422)


def test_only_indexed_files(client: TestClient, folder: Path) -> None:
    assert_error(client.get("/sources/.hemmelig.txt/original"), 404, "not_found")
    (folder / "ny.txt").write_text("Lagt til etter indekseringen.\n", encoding="utf-8")
    assert_error(client.get("/sources/ny.txt/original"), 404, "not_found")
    assert_error(client.get("/sources/mappe/original/original/original"), 404, "not_found")


def test_changed_file_is_409(client: TestClient, folder: Path) -> None:
    (folder / "side.html").write_text(HOSTILE_HTML + "<p>endret</p>", encoding="utf-8")
    err = assert_error(client.get("/sources/side.html/original"), 409, "original_changed")
    assert "re-index" in err["message"]
    (folder / "side.html").write_text(HOSTILE_HTML, encoding="utf-8")  # back as indexed
    assert client.get("/sources/side.html/original").status_code == 200


def test_removed_file_is_404(client: TestClient, folder: Path) -> None:
    (folder / "side.html").unlink()
    assert_error(client.get("/sources/side.html/original"), 404, "original_missing")


def test_links_are_never_followed(client: TestClient, folder: Path, tmp_path: Path) -> None:
    """Even a link to identical bytes is refused: a file or a folder swapped for a link."""
    copy = tmp_path / "elsewhere"
    (copy / "mappe").mkdir(parents=True)
    (copy / "side.html").write_text(HOSTILE_HTML, encoding="utf-8")
    (copy / "mappe" / "notat æøå.txt").write_text(NOTE, encoding="utf-8")
    (folder / "side.html").unlink()
    (folder / "side.html").symlink_to(copy / "side.html")
    assert_error(client.get("/sources/side.html/original"), 404, "original_missing")
    (folder / "mappe").rename(tmp_path / "moved")
    (folder / "mappe").symlink_to(copy / "mappe", target_is_directory=True)
    assert_error(client.get("/sources/mappe/notat æøå.txt/original"), 404, "original_missing")


def test_not_a_regular_file(client: TestClient, folder: Path) -> None:
    (folder / "side.html").unlink()
    os.mkfifo(folder / "side.html")  # would block a plain open()
    assert_error(client.get("/sources/side.html/original"), 404, "original_missing")


def test_file_grown_past_the_limit(osettings: Settings, fake_embedder: Any) -> None:
    with api(osettings, fake_embedder, max_file_bytes=100) as c:
        assert_error(c.get("/sources/side.html/original"), 409, "original_changed")


def test_index_version_check(client: TestClient) -> None:
    ok = client.get("/sources/side.html/original", params={"version": "nope"})
    assert_error(ok, 409, "index_changed")


def test_api_key_and_rate_limit(osettings: Settings, fake_embedder: Any) -> None:
    with api(osettings, fake_embedder, api_key="nøkkel", rate_limit="3/minute") as c:
        assert_error(c.get("/sources/side.html/original"), 401, "unauthorized")
        key = {"X-API-Key": "nøkkel".encode()}
        assert c.get("/sources/side.html/original", headers=key).status_code == 200  # type: ignore[arg-type]
        answers = [c.get("/sources/side.html/original", headers=key) for _ in range(5)]  # type: ignore[arg-type]
        assert_error(answers[-1], 429, "rate_limited")


def test_pdf_is_inline_with_no_script() -> None:
    r = original_response(b"%PDF-1.7\n", "rapporter/årsrapport.pdf", "pdf", "pdf", "v1")
    assert r.media_type == "application/pdf"
    assert r.headers["content-type"] == "application/pdf"  # no charset on binary formats
    assert r.headers["content-disposition"].startswith("inline;")
    assert r.headers["content-security-policy"] == PDF_CSP
    assert "script-src 'none'" in PDF_CSP and "sandbox" not in PDF_CSP
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [
        ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("odt", "application/vnd.oasis.opendocument.text"),
        ("svg", "application/octet-stream"),
    ],
)
def test_other_formats_are_attachments(fmt: str, media_type: str) -> None:
    r = original_response(b"PK\x03\x04", f"a.{fmt}", fmt, fmt, "v1")
    assert r.headers["content-type"] == media_type
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["content-security-policy"] == ATTACHMENT_CSP
