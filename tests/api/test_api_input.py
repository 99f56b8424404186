"""Hostile and broken input: every case is a 4xx JSON error that names the problem, never a
5xx, a traceback or a file-system path; and a bug is a generic 500 in the same envelope."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from qa.api.app import create_app
from qa.api.deps import get_retriever
from qa.api.ratelimit import TokenBuckets
from qa.api.routes import QUERY_PATTERN
from qa.config import Settings
from qa.retriever import LiveRetriever
from tests.api.helpers import JSON, assert_error, live_server
from tests.support.client import api


@pytest.fixture
def client(tiny_index: Path, settings: Settings, fake_embedder: Any) -> Iterator[TestClient]:
    with api(settings, fake_embedder, max_query_chars=100, max_k=10) as c:
        yield c


# --- search input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": ""}, "query"),
        ({"query": "   \n\t "}, "query"),
        ({"query": "x" * 101}, "query"),
        ({"query": "veg", "k": 0}, "k"),
        ({"query": "veg", "k": 11}, "k"),
        ({"query": "veg", "k": -3}, "k"),
        ({"query": "veg", "k": "5"}, "k"),
        ({"query": "veg", "k": 2.5}, "k"),
        ({"query": "veg", "k": True}, "k"),
        ({"query": "veg", "k": 10**30}, "k"),
        ({"query": 123}, "query"),
        ({"query": None}, "query"),
        ({"query": ["veg"]}, "query"),
        ({"query": {"a": 1}}, "query"),
        ({"k": 3}, "query"),
    ],
)
def test_bad_search_body(client: TestClient, body: dict, field: str) -> None:
    assert_error(client.post("/search", json=body), 422, "validation_error", where=field)


def test_whole_float_k_is_an_integer(client: TestClient) -> None:
    """JSON Schema's integer includes 2.0; generated clients may send it."""
    r = client.post("/search", json={"query": "veg", "k": 2.0})
    assert r.status_code == 200 and len(r.json()["results"]) == 2


@pytest.mark.parametrize("body", [[], "veg", 3, None, [{"query": "veg"}]])
def test_body_not_an_object(client: TestClient, body: Any) -> None:
    assert_error(client.post("/search", json=body), 422, "validation_error")


@pytest.mark.parametrize(
    "params",
    [
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 101},
        {"q": "veg", "k": "abc"},
        {"q": "veg", "k": "0"},
        {"q": "veg", "k": "11"},
        {"q": "veg", "k": "1e3"},
        {"q": "veg", "k": ""},
        {"k": "3"},
    ],
)
def test_bad_search_query_string(client: TestClient, params: dict) -> None:
    assert_error(client.get("/search", params=params), 422, "validation_error")


INVISIBLE = "\u00a0\u200b\u3000"  # no-break space, zero-width space, ideographic space


@pytest.mark.parametrize("query", [INVISIBLE, "\u200b", "\ufeff\u2060", " \u200e\t\u3164 "])
def test_invisible_query_is_blank(client: TestClient, query: str) -> None:
    """Attack D9: nothing to see is nothing to search, as for a blank query."""
    err = assert_error(client.post("/search", json={"query": query}), 422, where="query")
    assert err["details"][0]["type"] == "blank"
    assert_error(client.get("/search", params={"q": query}), 422, where="q")


def test_query_limit_is_on_the_stripped_query(client: TestClient) -> None:
    """Attack D9: the limit (100 here) counts what is searched, not the space around it."""
    query = "veg " * 24 + "vegx"  # 100 characters
    for padded in (f"  {query}\n ", f"{INVISIBLE}{query}"):
        r = client.post("/search", json={"query": padded})
        assert r.status_code == 200, r.text
        assert r.json()["query"] == query
        assert client.get("/search", params={"q": padded}).status_code == 200
    assert_error(client.post("/search", json={"query": f" {query}x "}), 422, where="query")


def test_visible_character_pattern_matches_unicode() -> None:
    """The pattern treats as invisible exactly white space, control and format characters
    (and the letters drawn as blank), so the schema and the check say the same thing."""
    visible = re.compile(QUERY_PATTERN)
    blank_letters = {"\u115f", "\u1160", "\u2800", "\u3164", "\uffa0"}
    for cp in (*range(0xD800), *range(0xE000, 0x10000)):
        c = chr(cp)
        invisible = c.isspace() or unicodedata.category(c) in ("Cc", "Cf") or c in blank_letters
        assert (visible.match(c) is None) == invisible, hex(cp)


@pytest.mark.parametrize("query", ["skole", "hej", "Hvad er klokken", "och", "veg"])
def test_language_is_one_of_the_promised_values(client: TestClient, query: str) -> None:
    """Attack D9: the detector also knows Danish, Swedish, German; the API says "und"."""
    body = client.post("/search", json={"query": query}).json()
    assert body["language"] in {"nb", "nn", "en", "und"}, body["language"]


def test_all_problems_reported_at_once(client: TestClient) -> None:
    err = assert_error(client.post("/search", json={"query": " ", "k": 99}), 422)
    assert {d["loc"][-1] for d in err["details"]} == {"query", "k"}
    assert any("blank" in d["msg"] for d in err["details"])


@pytest.mark.parametrize(
    "content",
    [b"{", b'{"query": "veg",}', b"{'query': 'veg'}", b'{"query": "veg"} trailing'],
)
def test_invalid_json(client: TestClient, content: bytes) -> None:
    assert_error(client.post("/search", content=content, headers=JSON), 400, "invalid_json")


def test_lone_surrogate_in_json(client: TestClient) -> None:
    r = client.post("/search", content=b'{"query": "veg \\ud800"}', headers=JSON)
    assert_error(r, 422, "validation_error", where="query")


def test_invalid_utf8(client: TestClient) -> None:
    body = b'{"query": "v\xe6g"}'  # Latin-1, not UTF-8
    assert_error(client.post("/search", content=body, headers=JSON), 400, "invalid_utf8")
    assert_error(client.get("/search?q=%FF%FE"), 400, "invalid_utf8")
    assert_error(client.get("/search?q=veg&k=%C3"), 400, "invalid_utf8")
    assert_error(client.get("/sources/%FF.txt"), 400, "invalid_utf8")


def test_wrong_content_type(client: TestClient) -> None:
    r = client.post("/search", content=b'{"query": "veg"}', headers={"content-type": "text/plain"})
    assert_error(r, 422)
    assert_error(client.post("/search", content=b'{"query": "veg"}'), 422)  # none at all


def test_body_too_large(client: TestClient, settings: Settings) -> None:
    big = b'{"query": "' + b"a" * settings.max_body_bytes + b'"}'
    assert_error(client.post("/search", content=big, headers=JSON), 413, "body_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        yield b'{"query": "'
        for _ in range(settings.max_body_bytes // 1024 + 1):
            yield b"a" * 1024
        yield b'"}'

    r = client.post("/search", content=chunks(), headers=JSON)
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "body_too_large")


def test_small_chunked_body_passes(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"query": '
        yield b'"veg", "k": 2}'

    assert client.post("/search", content=chunks(), headers=JSON).status_code == 200


def test_bad_content_length(client: TestClient) -> None:
    r = client.post("/search", content=b"{}", headers={**JSON, "content-length": "abc"})
    assert r.status_code == 400


def test_method_not_allowed_and_unknown_route(client: TestClient) -> None:
    assert_error(client.delete("/search"), 405, "method_not_allowed")
    assert_error(client.get("/nothing/here"), 404, "not_found")


def test_unhandled_error_is_generic_500(client: TestClient, caplog: Any) -> None:
    class Broken:
        version = "x"

        def search(self, *a: Any) -> Any:
            raise RuntimeError("secret detail /etc/shadow")

    client.app.dependency_overrides[get_retriever] = Broken  # type: ignore[attr-defined]
    assert_generic_500(client.post("/search", json={"query": "veg"}), caplog.text)


def _app_with_failing_routes(settings: Settings, embedder: Any) -> FastAPI:
    """The real app plus two test-only routes that raise (one async, one in a thread)."""
    app = create_app(settings, LiveRetriever(settings, embedder))

    async def fails() -> None:
        raise RuntimeError("secret detail /etc/shadow")

    def fails_in_thread() -> None:
        raise KeyError("secret detail /etc/shadow")

    app.add_api_route("/fails", fails)
    app.add_api_route("/fails-in-thread", fails_in_thread)
    return app


def assert_generic_500(r: Any, log: str) -> None:
    """The JSON envelope with a request id found in the log, the security headers, no detail."""
    err = assert_error(r, 500, "internal_error")
    assert "secret" not in r.text and "shadow" not in r.text
    assert err["request_id"] and err["request_id"] in log
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"].startswith("default-src 'none'")


def test_exception_in_a_route_is_the_json_500(
    tiny_index: Path, settings: Settings, fake_embedder: Any, caplog: Any
) -> None:
    app = _app_with_failing_routes(settings, fake_embedder)
    with TestClient(app, raise_server_exceptions=False) as c:
        for path in ("/fails", "/fails-in-thread"):
            assert_generic_500(c.get(path), caplog.text)
            assert c.get("/health").status_code == 200  # and the app goes on


def test_exception_in_a_middleware_is_the_json_500(
    client: TestClient, caplog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure outside the innermost catch-all (here the rate limiter) gets the same 500,
    security headers included."""

    def broken(self: TokenBuckets, key: str) -> float:
        raise RuntimeError("secret detail /etc/shadow")

    monkeypatch.setattr(TokenBuckets, "take", broken)
    assert_generic_500(client.get("/search?q=veg"), caplog.text)


@pytest.mark.slow
def test_exception_in_a_route_through_a_real_server(
    tiny_index: Path, settings: Settings, fake_embedder: Any, caplog: Any
) -> None:
    """Through uvicorn too: no plain-text "Internal Server Error", no traceback."""
    app = _app_with_failing_routes(settings, fake_embedder)
    with live_server(settings, app=app) as base, httpx.Client(base_url=base) as http:
        for path in ("/fails", "/fails-in-thread"):
            assert_generic_500(http.get(path), caplog.text)
