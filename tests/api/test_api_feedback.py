"""``POST /feedback``: a vote is stored with the span text the index serves; every misuse is
a 4xx in the error envelope and stores nothing; a file that cannot be written is a 503
while search keeps working; answered searches are counted."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa.api import feedback as feedback_api
from qa.api.app import create_app
from qa.config import Settings
from qa.feedback import FeedbackStore, feedback_path
from qa.index import build_index
from qa.retriever import LiveRetriever
from tests.api.access_corpus import write_access_sources
from tests.api.helpers import JSON, assert_error
from tests.support.client import api


def stored(settings: Settings) -> list[Any]:
    return FeedbackStore(feedback_path(settings), settings.feedback_days).entries()


@pytest.fixture
def client(tiny_index: Path, settings: Settings, fake_embedder: Any) -> Iterator[TestClient]:
    with api(settings, fake_embedder, max_query_chars=100, rate_limit="off") as c:
        yield c


def first_hit(c: TestClient, query: str = "vedlikehold av vegene", **kw: Any) -> dict[str, Any]:
    answer = c.post("/search", json={"query": query}, **kw).json()
    return answer["results"][0] | {"index_version": answer["index_version"]}


def up_vote(hit: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {
        "query": "vedlikehold av vegene",
        "index_version": hit["index_version"],
        "source": hit["source"],
        "start": hit["start"],
        "end": hit["end"],
        "vote": "up",
    }
    return {k: v for k, v in (body | changes).items() if v is not None}


def test_votes_are_stored_with_the_served_span(client: TestClient, settings: Settings) -> None:
    hit = first_hit(client)
    text = client.get(f"/sources/{hit['source']}").text
    for kind in ("up", "down", "opened"):
        r = client.post(
            "/feedback", json=up_vote(hit, vote=kind, query="  vedlikehold av vegene?\u200b")
        )
        assert (r.status_code, r.json()) == (201, {"stored": True}), r.text
        assert r.headers["x-content-type-options"] == "nosniff"  # the security headers
    none = {"query": "Hvem eier månen?", "index_version": hit["index_version"], "vote": "none"}
    assert client.post("/feedback", json=none).status_code == 201
    entries = stored(settings)
    assert [e.vote for e in entries] == ["up", "down", "opened", "none"]
    first = entries[0]
    assert first.query == "vedlikehold av vegene?"  # stripped like a search query
    assert first.text == text[hit["start"] : hit["end"]] == hit["text"]
    assert (first.source, first.start, first.end, first.user) == (
        hit["source"], hit["start"], hit["end"], None
    )  # fmt: skip
    assert first.index_version == hit["index_version"]
    assert entries[3].source is None and entries[3].text is None


def test_a_signed_in_user_is_stored_by_name(
    tiny_index: Path, settings: Settings, fake_embedder: Any, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"kari: {hashlib.sha256(b'k1').hexdigest()}: *\n", encoding="utf-8")
    with api(settings, fake_embedder, auth="keys", keys_file=keys) as c:
        hit = first_hit(c, headers={"X-API-Key": "k1"})
        assert_error(c.post("/feedback", json=up_vote(hit)), 401, "unauthorized")
        r = c.post("/feedback", json=up_vote(hit), headers={"X-API-Key": "k1"})
        assert r.status_code == 201, r.text
    assert [e.user for e in stored(settings)] == ["kari"]


def test_a_hidden_source_is_a_404_like_a_missing_one(tmp_path: Path, fake_embedder: Any) -> None:
    s = Settings(
        sources_dir=write_access_sources(tmp_path / "kilder"),
        index_dir=tmp_path / "index",
        cache_dir=tmp_path / "cache",
        _env_file=None,
    )
    build_index(s, fake_embedder, progress=False)
    with api(s, fake_embedder) as c:
        version = c.get("/health").json()["index_version"]
        body = {"query": "lønn", "index_version": version, "start": 0, "end": 10, "vote": "up"}
        hidden = c.post("/feedback", json=body | {"source": "hr/lonn.txt"})
        missing = c.post("/feedback", json=body | {"source": "hr/finnes-ikke.txt"})
        assert_error(hidden, 404, "not_found")
        assert hidden.json() == missing.json() == c.get("/sources/hr/lonn.txt").json()
        # offsets past the end of a hidden file are a 404 too: its length is not revealed
        far = body | {"source": "hr/lonn.txt", "start": 10_000, "end": 10_001}
        assert_error(c.post("/feedback", json=far), 404, "not_found")
        assert c.post("/feedback", json=body | {"source": "public/ferie.txt"}).status_code == 201
    assert [e.source for e in stored(s)] == ["public/ferie.txt"]


def test_misuse_is_refused_and_nothing_is_stored(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    hit = first_hit(client)
    length = len(client.get(f"/sources/{hit['source']}").text)
    bad: list[tuple[dict[str, Any], int, str, str]] = [
        (up_vote(hit, source="finnes/ikke.txt"), 404, "not_found", ""),
        (up_vote(hit, source="../../etc/passwd"), 400, "invalid_path", ""),
        (up_vote(hit, source="/etc/passwd"), 400, "invalid_path", ""),
        (up_vote(hit, end=length + 1), 422, "validation_error", "end"),
        (up_vote(hit, start=5, end=5), 422, "validation_error", "end"),
        (up_vote(hit, start=9, end=3), 422, "validation_error", "end"),
        (up_vote(hit, start=-1), 422, "validation_error", "start"),
        (up_vote(hit, start="0"), 422, "validation_error", "start"),
        (up_vote(hit, end=2.5), 422, "validation_error", "end"),
        (up_vote(hit, vote="love"), 422, "validation_error", "vote"),
        (up_vote(hit, vote="UP"), 422, "validation_error", "vote"),
        (up_vote(hit, text="forfalsket svar"), 422, "validation_error", "text"),
        (up_vote(hit, user="admin"), 422, "validation_error", "user"),
        (up_vote(hit, query="x" * 101), 422, "validation_error", "query"),
        (up_vote(hit, query=""), 422, "validation_error", "query"),
        (up_vote(hit, query=" \u200b\n "), 422, "validation_error", "query"),
        (up_vote(hit, query=123), 422, "validation_error", "query"),
        (up_vote(hit, source=None), 422, "validation_error", "source"),
        (up_vote(hit, start=None), 422, "validation_error", "start"),
        (up_vote(hit, index_version=None), 422, "validation_error", "index_version"),
        (up_vote(hit, vote="none"), 422, "validation_error", "source"),
        (up_vote(hit, vote="none", source=None), 422, "validation_error", "start"),
        (up_vote(hit, index_version="20200101T000000-dead"), 409, "index_changed", ""),
    ]
    for body, status, code, field in bad:
        err = assert_error(client.post("/feedback", json=body), status, code, where=field)
        assert "forfalsket" not in str(err) and "passwd" not in str(err)
    for raw in (b"{not json", b'{"query": "veg", "vote": "up"', b"[]", b'"up"'):
        r = client.post("/feedback", content=raw, headers=JSON)
        assert r.status_code in (400, 422) and "error" in r.json()
    assert_error(client.post("/feedback", content=b"{not json", headers=JSON), 400, "invalid_json")
    surrogate = b'{"query": "veg\\ud800", "index_version": "v", "vote": "none"}'
    assert_error(client.post("/feedback", content=surrogate, headers=JSON), 422, where="query")
    huge = b'{"query": "' + b"x" * 70_000 + b'", "vote": "none"}'
    assert_error(client.post("/feedback", content=huge, headers=JSON), 413, "body_too_large")
    monkeypatch.setattr(feedback_api, "MAX_SPAN_CHARS", 10)
    long_span = up_vote(hit, start=0, end=11)
    assert_error(client.post("/feedback", json=long_span), 422, "validation_error", where="end")
    assert_error(client.get("/feedback"), 405)
    assert stored(settings) == []


def test_rate_limited_like_search(tiny_index: Path, settings: Settings, fake_embedder: Any) -> None:
    with api(settings, fake_embedder, rate_limit="3/minute") as c:
        version = c.get("/health").json()["index_version"]  # /health is never limited
        body = {"query": "veg", "index_version": version, "vote": "none"}
        answers = [c.post("/feedback", json=body) for _ in range(4)]
    assert [r.status_code for r in answers] == [201, 201, 201, 429]
    assert_error(answers[-1], 429, "rate_limited")
    assert answers[-1].headers["retry-after"]
    assert len(stored(settings)) == 3


def test_cors_as_configured(tiny_index: Path, settings: Settings, fake_embedder: Any) -> None:
    origin = "https://intranett.kommune.no"
    with api(settings, fake_embedder, cors_origins=[origin]) as c:
        version = c.get("/health").json()["index_version"]
        body = {"query": "veg", "index_version": version, "vote": "none"}
        r = c.post("/feedback", json=body, headers={"Origin": origin})
        assert r.status_code == 201 and r.headers["access-control-allow-origin"] == origin
        r = c.post("/feedback", json=body, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_an_unwritable_file_is_a_503_and_search_still_works(
    tiny_index: Path, settings: Settings, fake_embedder: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "not-a-file.sqlite3"
    folder.mkdir()  # SQLite cannot open a folder: the same path as a full or read-only disk
    with api(settings, fake_embedder, feedback_db=folder) as c:
        hit = first_hit(c)
        err = assert_error(c.post("/feedback", json=up_vote(hit)), 503, "feedback_unavailable")
        assert "not-a-file" not in err["message"]
        assert c.post("/search", json={"query": "veg"}).status_code == 200


def test_metrics_are_told_each_stored_vote(client: TestClient) -> None:
    class Metrics:
        def __init__(self) -> None:
            self.votes: list[str] = []

        def feedback(self, vote: str) -> None:
            self.votes.append(vote)

        def searched(self, language: str, results: int) -> None:
            pass

    client.app.state.metrics = metrics = Metrics()  # type: ignore[attr-defined]
    hit = first_hit(client)
    client.post("/feedback", json=up_vote(hit))
    client.post("/feedback", json=up_vote(hit, vote="love"))  # refused: not counted
    client.post("/feedback", json=up_vote(hit, vote="opened"))
    assert metrics.votes == ["up", "opened"]


def test_answered_searches_are_counted(
    tiny_index: Path, settings: Settings, fake_embedder: Any
) -> None:
    app = create_app(settings, LiveRetriever(settings, fake_embedder))
    with TestClient(app, raise_server_exceptions=False) as c:
        for q in ("veg", "kultur", "helse"):
            assert c.get("/search", params={"q": q}).status_code == 200
        assert c.post("/search", json={"query": "bru"}).status_code == 200
        assert c.post("/search", json={"query": " "}).status_code == 422  # not counted
        assert c.post("/search", json={"query": "veg", "k": 0}).status_code == 422
    counts = FeedbackStore(feedback_path(settings), 180).searches()  # flushed on shutdown
    assert sum(counts.values()) == 4


def test_openapi_documents_feedback(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/feedback"]["post"]
    assert {"201", "400", "401", "404", "409", "413", "422", "429", "503"} <= set(op["responses"])
    request = spec["components"]["schemas"]["FeedbackRequest"]
    assert request["additionalProperties"] is False
    assert set(request["properties"]["vote"]["enum"]) == {"up", "down", "opened", "none"}
    assert request["properties"]["query"]["pattern"] and request["examples"]
