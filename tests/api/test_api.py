"""The HTTP API on the tiny index: shapes, citations, health, sources, static files, a live
uvicorn server, and index swaps while serving."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from qa.api import static
from qa.api.app import create_app
from qa.api.deps import get_retriever
from qa.api.routes import QUERY_PATTERN
from qa.config import Settings
from qa.index import build_index
from tests.api.helpers import live_server, raw_get
from tests.support.client import api
from tests.support.fake import FakeFactory
from tests.support.server import free_port, qa_env, start, wait_healthy


@pytest.fixture
def client(tiny_index: Path, settings: Settings, fake_embedder: Any) -> Iterator[TestClient]:
    with api(settings, fake_embedder) as c:
        yield c


def _source(client: Any, path: str) -> str:
    r = client.get(f"/sources/{path}")
    assert r.status_code == 200, r.text
    return r.text


def assert_citations(client: Any, body: dict) -> None:
    """Every result is an exact span of the source text the API serves."""
    assert body["results"]
    for r in body["results"]:
        text = _source(client, r["source"])
        assert r["text"] == text[r["start"] : r["end"]]
        assert text.count("\n", 0, r["start"]) + 1 == r["line_start"]


# --- search --------------------------------------------------------------------------


def test_search_post_shape_and_citations(client: TestClient) -> None:
    r = client.post("/search", json={"query": "Hvem har ansvar for fylkesvegene?", "k": 3})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"query", "language", "index_version", "results"}
    assert body["query"] == "Hvem har ansvar for fylkesvegene?"
    assert 1 <= len(body["results"]) <= 3
    assert [x["rank"] for x in body["results"]] == list(range(1, len(body["results"]) + 1))
    first = body["results"][0]
    assert set(first) == {
        "rank", "score", "text", "source", "start", "end", "line_start", "line_end", "title",
        "page_start", "page_end", "section", "answer_start", "answer_end",
    }  # fmt: skip
    assert first["source"] == "veg.txt"
    assert (first["page_start"], first["page_end"], first["section"]) == (None, None, "")
    assert_citations(client, body)


def test_search_get_matches_post(client: TestClient) -> None:
    got = client.get("/search", params={"q": "kulturskole", "k": 2}).json()
    posted = client.post("/search", json={"query": "kulturskole", "k": 2}).json()
    assert got == posted
    assert_citations(client, got)


def test_default_k(client: TestClient, settings: Settings) -> None:
    body = client.get("/search", params={"q": "kommunene"}).json()
    assert len(body["results"]) == min(settings.default_k, 9)


def test_non_ascii_paths_and_latin1_source(client: TestClient) -> None:
    body = client.post("/search", json={"query": "særavgift overskudd", "k": 1}).json()
    assert body["results"][0]["source"] == "okonomi.txt"
    assert_citations(client, body)


# --- health ----------------------------------------------------------------------------


def test_health_ok(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["passages"] > 0
    assert body["model"] == "fake-embedder"
    assert body["index_version"]


def test_health_503_until_an_index_appears(settings: Settings, fake_embedder: Any) -> None:
    with api(settings, fake_embedder) as client:  # no index built yet
        r = client.get("/health")
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "index_not_ready"
        assert str(settings.index_dir) not in r.text
        assert client.post("/search", json={"query": "veg"}).status_code == 503
        build_index(settings, fake_embedder, progress=False)
        deadline = time.monotonic() + 10
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline, "the new index was never picked up"
            time.sleep(0.05)
        assert client.post("/search", json={"query": "veg"}).status_code == 200


def test_index_swap_while_serving(
    tiny_index: Path, settings: Settings, fake_embedder: Any, tiny_sources: Path
) -> None:
    with api(settings, fake_embedder) as client:
        before = client.get("/health").json()["index_version"]
        (tiny_sources / "ny.txt").write_text("Bibliotek\n\nFolkebiblioteket er gratis.")
        build_index(settings, fake_embedder, progress=False)
        deadline = time.monotonic() + 10
        while client.get("/health").json()["index_version"] == before:
            assert time.monotonic() < deadline, "the rebuilt index was never swapped in"
            time.sleep(0.05)
        body = client.post("/search", json={"query": "folkebiblioteket", "k": 1}).json()
        assert body["results"][0]["source"] == "ny.txt"
        assert_citations(client, body)
        old = client.get("/sources/veg.txt", params={"version": before})
        assert old.status_code == 409
        assert old.json()["error"]["code"] == "index_changed"


def test_request_keeps_its_retriever(client: TestClient) -> None:
    """The dependency is resolved once per request: a swap mid-request cannot mix builds."""
    calls = []
    real = client.app.state.live  # type: ignore[attr-defined]

    def counting() -> Any:
        calls.append(1)
        return real.get()

    client.app.dependency_overrides[get_retriever] = counting  # type: ignore[attr-defined]
    assert client.post("/search", json={"query": "veg"}).status_code == 200
    assert calls == [1]


# --- sources ---------------------------------------------------------------------------


def test_sources_list(client: TestClient) -> None:
    body = client.get("/sources").json()
    paths = {s["path"]: s for s in body["sources"]}
    assert set(paths) == {"kultur.txt", "veg.txt", "sub/helse.txt", "okonomi.txt"}
    assert paths["okonomi.txt"]["encoding"] != "utf-8"
    assert all(s["passages"] >= 1 and s["chars"] > 0 and s["title"] for s in body["sources"])
    assert all((s["format"], s["pages"]) == ("txt", 0) for s in body["sources"])


def test_source_text_plain_and_json(client: TestClient) -> None:
    r = client.get("/sources/sub/helse.txt")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.text.startswith("Helse og omsorg")
    assert r.headers["x-index-version"]
    j = client.get("/sources/sub/helse.txt", params={"format": "json"}).json()
    assert j["text"] == r.text and j["chars"] == len(r.text) and j["title"] == "Helse og omsorg"
    assert j["format"] == "txt"
    latin = client.get("/sources/okonomi.txt")
    assert "særavgift" in latin.text


def test_source_not_found(client: TestClient) -> None:
    r = client.get("/sources/finnes/ikke.txt")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert client.get("/sources/veg.txt", params={"format": "xml"}).status_code == 422


# --- static files, docs ----------------------------------------------------------------


def test_static_files(client: TestClient) -> None:
    js = client.get("/widget.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    for page in ("/", "/view"):
        r = client.get(page)
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert "script-src 'self'" in r.headers["content-security-policy"]


def test_static_file_missing_is_json_404(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(static, "STATIC_DIR", tmp_path / "nothing")
    for page in ("/", "/view", "/widget.js"):
        r = client.get(page)
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"
        assert str(tmp_path) not in r.text


def test_limits_come_from_the_settings(
    tiny_index: Path, settings: Settings, fake_embedder: Any
) -> None:
    """The widget and other clients read the limits here instead of repeating them."""
    with api(settings, fake_embedder, max_k=7, max_query_chars=300, api_key="k") as client:
        r = client.get("/limits")  # open, like /health: no key
        assert r.status_code == 200
        assert r.json() == {"max_k": 7, "max_query_chars": 300, "default_k": 5}
        assert client.get("/search?q=veg&k=7", headers={"X-API-Key": "k"}).status_code == 200
        assert client.get("/search?q=veg&k=8", headers={"X-API-Key": "k"}).status_code == 422


def test_openapi_and_docs(client: TestClient, settings: Settings) -> None:
    spec = client.get("/openapi.json").json()
    req = spec["components"]["schemas"]["SearchRequest"]
    assert req["properties"]["query"]["maxLength"] == settings.max_query_chars
    assert req["properties"]["query"]["pattern"] == QUERY_PATTERN  # what "not blank" means
    language = spec["components"]["schemas"]["SearchResponse"]["properties"]["language"]
    assert set(language["enum"]) == {"nb", "nn", "en", "und"}
    assert "/limits" in spec["paths"]
    assert req["examples"] and spec["components"]["schemas"]["SearchResponse"]["examples"]
    assert {"/search", "/health", "/sources", "/sources/{path}"} <= set(spec["paths"])
    original = spec["paths"]["/sources/{path}/original"]["get"]
    assert {"application/pdf", "text/html"} <= set(original["responses"]["200"]["content"])
    assert {"401", "404", "409", "429"} <= set(original["responses"])
    assert [p["name"] for p in original["parameters"]] == ["path", "version"]
    item = spec["components"]["schemas"]["ResultItem"]["properties"]
    assert {"page_start", "page_end", "section"} <= set(item) and item["section"]["description"]
    assert "422" in spec["paths"]["/search"]["post"]["responses"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


# --- lifespan without a LiveRetriever, run_server ----------------------------------------


def test_lifespan_creates_the_live_retriever(
    tiny_index: Path, settings: Settings, fake_embedder: Any
) -> None:
    app = create_app(settings, embedder_factory=FakeFactory(fake_embedder))
    with TestClient(app) as client:
        assert client.get("/health").json()["model"] == "fake-embedder"
        live = app.state.live
        assert live.ready and live._thread.is_alive()
    assert not live._thread.is_alive()  # stopped on shutdown


# --- a real server ---------------------------------------------------------------------


@pytest.mark.slow
def test_end_to_end_real_server(tiny_index: Path, settings: Settings, fake_embedder: Any) -> None:
    with live_server(settings, fake_embedder) as base, httpx.Client(base_url=base) as http:
        assert http.get("/health").json()["status"] == "ok"
        queries = ["Hvem har ansvar for fylkesvegene?", "kulturskole", "fastlege", "overskudd"]
        for q in queries:
            for r in (http.post("/search", json={"query": q, "k": 4}), http.get(f"/search?q={q}")):
                assert r.status_code == 200
                assert r.headers["x-content-type-options"] == "nosniff"
                assert_citations(http, r.json())
        assert http.get("/widget.js").headers["content-type"].startswith("text/javascript")
        bad = http.post(
            "/search", content=b"\xff\xfe", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 400
        big = b'{"query": "' + b"a" * settings.max_body_bytes + b'"}'
        assert (
            http.post(
                "/search", content=big, headers={"content-type": "application/json"}
            ).status_code
            == 413
        )
        assert http.get("/health").status_code == 200  # the server is fine afterwards
        for target in (
            "/sources/../../etc/passwd",
            "/sources/%2e%2e/%2e%2e/etc/passwd",
            "/sources/..%2f..%2fetc%2fpasswd",
            "/sources//etc/passwd",
            "/sources/%2Fetc%2Fpasswd",
            "/sources/sub%5c..%5c..%5cetc%5cpasswd",
            "/sources/veg.txt%00.png",
            "/sources/sub/./helse.txt",
        ):
            status, body = raw_get(base, target)
            assert status in (400, 404), (target, status)
            assert "root:" not in body and '"error"' in body


_SERVE = """
import sys
sys.path.insert(0, {root!r})
from tests.support.fake import FakeFactory
from qa.api.app import run_server
from qa.config import Settings
run_server(Settings(_env_file=None), embedder_factory=FakeFactory())
"""


@pytest.mark.slow
def test_run_server_subprocess(tiny_index: Path, settings: Settings, tmp_path: Path) -> None:
    """``run_server`` as ``qa serve`` calls it: its own process, settings from QA_* variables
    (host and port included), uvicorn's options (no Server header), a clean exit."""
    port = free_port()
    env = qa_env(
        QA_INDEX_DIR=str(settings.index_dir),
        QA_SOURCES_DIR=str(settings.sources_dir),
        QA_CHUNK_SIZE=str(settings.chunk_size),
        QA_CHUNK_OVERLAP=str(settings.chunk_overlap),
        QA_HOST="127.0.0.1",
        QA_PORT=str(port),
    )
    code = _SERVE.format(root=str(Path(__file__).resolve().parents[2]))
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    server = start([sys.executable, "-c", code], url, log=log, env=env, cwd=tmp_path)
    try:
        wait_healthy(server, timeout_s=60)
        with httpx.Client(base_url=url, timeout=30) as http:
            r = http.post("/search", json={"query": "fastlegeordningen", "k": 2})
            assert r.status_code == 200 and "server" not in r.headers
            assert_citations(http, r.json())
        server.process.send_signal(signal.SIGINT)  # Ctrl-C: uvicorn stops and exits 0
        assert server.process.wait(timeout=20) == 0, server.output()
    finally:
        server.stop()


def test_merged_results_keep_pages_and_section(retriever: Any) -> None:
    """Overlapping passages merged into one result: the pages of all, the best's section."""
    rows = [i for i, p in enumerate(retriever.passages) if p.source == "veg.txt"][:2]
    for n, i in enumerate(rows):
        p = retriever.passages[i]
        retriever.passages[i] = replace(p, page_start=n + 2, page_end=n + 2, section=f"Del {n}")
    a, b = (retriever.passages[i] for i in rows)
    merged = retriever._span(list(reversed(rows)), a.start, b.end)
    assert merged.text == retriever.source_text("veg.txt")[a.start : b.end]
    assert (merged.page_start, merged.page_end, merged.section) == (2, 3, "Del 1")
    assert merged.title == a.title
