"""Hostile and broken input: every case is a 4xx JSON error that names the problem, never a
5xx, a traceback or a file-system path. Also the API key, CORS, rate limit and headers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa.api.deps import get_retriever
from qa.api.ratelimit import TokenBuckets, parse_rate
from qa.config import Settings
from qa.index import build_index
from tests.support.client import api

JSON = {"content-type": "application/json"}


@pytest.fixture
def client(tiny_index: Path, settings: Settings, fake_embedder: Any) -> Iterator[TestClient]:
    with api(settings, fake_embedder, max_query_chars=100, max_k=10) as c:
        yield c


def assert_error(r: Any, status: int, code: str | None = None, *, where: str = "") -> dict:
    """The standard error body, nothing internal in it."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert isinstance(err["message"], str) and err["message"]
    if code:
        assert err["code"] == code, err
    for leak in ("Traceback", 'File "', "/tmp", os.getcwd(), "site-packages"):
        assert leak not in r.text
    if where:
        assert any(where in [str(x) for x in d["loc"]] for d in err["details"]), err
    return err


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
    r = client.post("/search", json={"query": "veg"})
    err = assert_error(r, 500, "internal_error")
    assert "secret" not in r.text and "shadow" not in r.text
    assert err["request_id"] and err["request_id"] in caplog.text
    assert r.headers["x-content-type-options"] == "nosniff"


# --- path traversal --------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/sources/%2e%2e/%2e%2e/etc/passwd",
        "/sources/%2E%2E/secret.txt",
        "/sources/..%2fsecret.txt",
        "/sources/sub/%2e%2e/%2e%2e/secret.txt",
        "/sources//etc/passwd",
        "/sources/%2Fetc%2Fpasswd",
        "/sources/C:/Windows/win.ini",
        "/sources/sub%5c..%5c..%5csecret.txt",
        "/sources/veg.txt%00.txt",
        "/sources/sub/%2e/helse.txt",
        "/sources/sub//helse.txt",
    ],
)
def test_path_traversal_rejected(client: TestClient, target: str) -> None:
    assert_error(client.get(target), 400, "invalid_path")


def test_symlink_outside_sources_is_never_served(
    settings: Settings, fake_embedder: Any, tiny_sources: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPPHEMMELIG passord", encoding="utf-8")
    (tiny_sources / "lenke.txt").symlink_to(secret)
    build_index(settings, fake_embedder, progress=False)  # the link is skipped when indexing
    (tiny_sources / "veg.txt").unlink()
    (tiny_sources / "veg.txt").symlink_to(secret)  # swapped for a link after indexing
    with api(settings, fake_embedder) as client:
        assert_error(client.get("/sources/lenke.txt"), 404, "not_found")
        r = client.get("/sources/veg.txt")
        assert r.status_code == 200 and r.text.startswith("Vegvedlikehold")  # the snapshot
        assert "TOPPHEMMELIG" not in r.text
        hits = client.get("/search", params={"q": "TOPPHEMMELIG passord", "k": 10}).json()
        assert not any("TOPPHEMMELIG" in h["text"] for h in hits["results"])


# --- API key ---------------------------------------------------------------------------


@pytest.fixture
def keyed(tiny_index: Path, settings: Settings, fake_embedder: Any) -> Iterator[TestClient]:
    with api(settings, fake_embedder, api_key="s3cret-nøkkel") as c:
        yield c


@pytest.mark.parametrize("path", ["/search?q=veg", "/sources", "/sources/veg.txt"])
def test_api_key_required(keyed: TestClient, path: str) -> None:
    err = assert_error(keyed.get(path), 401, "unauthorized")
    assert "API key" in err["message"]
    assert keyed.get(path).headers["www-authenticate"] == "Bearer"
    assert_error(keyed.get(path, headers={"X-API-Key": "wrong"}), 401)
    assert_error(keyed.get(path, headers={"Authorization": "Bearer wrong"}), 401)
    assert_error(keyed.get(path, headers={"Authorization": "Basic czNjcmV0"}), 401)
    assert_error(keyed.get(path, headers={"X-API-Key": b"\xff\xfe"}), 401)  # type: ignore[dict-item]
    key = "s3cret-nøkkel".encode()
    assert keyed.get(path, headers={"X-API-Key": key}).status_code == 200  # type: ignore[dict-item]
    assert keyed.get(path, headers={"Authorization": b"Bearer " + key}).status_code == 200  # type: ignore[dict-item]


def test_api_key_post(keyed: TestClient) -> None:
    assert_error(keyed.post("/search", json={"query": "veg"}), 401)
    ok = keyed.post(
        "/search", json={"query": "veg"}, headers={"X-API-Key": b"s3cret-n\xc3\xb8kkel"}
    )  # type: ignore[dict-item]
    assert ok.status_code == 200


@pytest.mark.parametrize("path", ["/health", "/widget.js", "/", "/view", "/openapi.json", "/docs"])
def test_open_without_key(keyed: TestClient, path: str) -> None:
    assert keyed.get(path).status_code == 200


def test_key_in_openapi_only_when_set(keyed: TestClient, client: TestClient) -> None:
    assert "securitySchemes" in keyed.get("/openapi.json").json()["components"]
    assert "securitySchemes" not in client.get("/openapi.json").json()["components"]


# --- CORS ------------------------------------------------------------------------------


def test_cors_allow_list(tiny_index: Path, settings: Settings, fake_embedder: Any) -> None:
    ok, evil = "https://intranett.kommune.no", "https://evil.example"
    with api(settings, fake_embedder, cors_origins=[ok]) as c:
        r = c.get("/search?q=veg", headers={"Origin": ok})
        assert r.headers["access-control-allow-origin"] == ok
        assert (
            "access-control-allow-origin"
            not in c.get("/search?q=veg", headers={"Origin": evil}).headers
        )
        pre = {"Origin": ok, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type,x-api-key"}  # fmt: skip
        r = c.options("/search", headers=pre)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ok
        r = c.options("/search", headers={**pre, "Origin": evil})
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
        # errors are readable by the allowed page too
        r = c.post("/search", json={"query": ""}, headers={"Origin": ok})
        assert r.status_code == 422 and r.headers["access-control-allow-origin"] == ok
        # /view may be framed by the allowed origins
        assert ok in c.get("/view").headers["content-security-policy"]


def test_no_cors_by_default(client: TestClient) -> None:
    r = client.get("/search?q=veg", headers={"Origin": "https://intranett.kommune.no"})
    assert r.status_code == 200
    assert not any(h.startswith("access-control-") for h in r.headers)


# --- rate limit ------------------------------------------------------------------------


def test_rate_limit(tiny_index: Path, settings: Settings, fake_embedder: Any) -> None:
    with api(settings, fake_embedder, rate_limit="3/minute") as c:
        assert [c.get("/search?q=veg").status_code for _ in range(3)] == [200] * 3
        r = c.get("/search?q=veg")
        assert_error(r, 429, "rate_limited")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert c.get("/sources").status_code == 429  # per client, not per route
        assert c.get("/health").status_code == 200  # probes are never limited


def test_rate_limit_off(tiny_index: Path, settings: Settings, fake_embedder: Any) -> None:
    with api(settings, fake_embedder, rate_limit="off") as c:
        assert all(c.get("/health").status_code == 200 for _ in range(5))
        assert c.app.user_middleware  # type: ignore[attr-defined]


def test_token_bucket_refills_per_client() -> None:
    now = [0.0]
    buckets = TokenBuckets(parse_rate("2/second"), max_keys=2, clock=lambda: now[0])
    assert [buckets.take("a"), buckets.take("a")] == [0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0.0  # another client has its own bucket
    now[0] += 0.5
    assert buckets.take("a") == 0.0
    buckets.take("c")
    assert len(buckets._state) == 2  # the least recently seen client was dropped


def test_parse_rate() -> None:
    assert parse_rate("1200/minute") == [(1200.0, 20.0)]
    assert parse_rate("10 per second; 100/hour") == [(10.0, 10.0), (100.0, 100 / 3600)]
    assert parse_rate("off") == []
    with pytest.raises(ValueError, match="rate_limit"):
        parse_rate("lots")


# --- security headers ------------------------------------------------------------------


def test_security_headers_everywhere(client: TestClient) -> None:
    responses = [
        client.get("/health"),
        client.get("/search?q=veg"),
        client.get("/sources/veg.txt"),
        client.get("/widget.js"),
        client.get("/nothing"),
        client.post("/search", json={"query": ""}),
        client.get("/"),
        client.get("/view"),
        client.get("/docs"),
    ]
    for r in responses:
        assert r.headers["x-content-type-options"] == "nosniff", r.url
        assert r.headers["referrer-policy"] == "no-referrer"
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors" in csp
        if r.headers["content-type"].startswith("application/json"):
            assert csp.startswith("default-src 'none'") and r.headers["x-frame-options"] == "DENY"
    for page in responses[6:8]:
        csp = page.headers["content-security-policy"]
        assert (
            "script-src 'self';" in csp
            and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        )
        assert page.headers["x-frame-options"] == "SAMEORIGIN"
    assert "server" not in responses[0].headers or "uvicorn" not in responses[0].headers["server"]
