"""The API key, paths that must not escape, CORS, the rate limit and the security headers:
every refusal is the JSON error body, never a traceback or a file-system path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from qa.api.ratelimit import TokenBuckets, parse_rate
from qa.config import Settings
from qa.index import build_index
from tests.api.helpers import assert_error, live_server
from tests.support.client import api


@pytest.fixture
def client(tiny_index: Path, settings: Settings, fake_embedder: Any) -> Iterator[TestClient]:
    with api(settings, fake_embedder, max_query_chars=100, max_k=10) as c:
        yield c


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
    assert_error(client.get(f"{target}/original"), 400, "invalid_path")


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


@pytest.mark.parametrize(
    "path", ["/search?q=veg", "/sources", "/sources/veg.txt", "/sources/veg.txt/original"]
)
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


@pytest.mark.parametrize(
    "path", ["/health", "/limits", "/widget.js", "/", "/view", "/openapi.json", "/docs"]
)
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


@pytest.mark.slow
def test_no_server_header_from_the_real_server(
    tiny_index: Path, settings: Settings, fake_embedder: Any
) -> None:
    """uvicorn adds ``Server: uvicorn`` unless told not to: a real server, with the options
    ``qa serve`` runs it with (a TestClient never goes through uvicorn)."""
    with live_server(settings, fake_embedder) as base, httpx.Client(base_url=base) as http:
        for r in (http.get("/health"), http.get("/search?q=veg"), http.get("/nothing")):
            assert "server" not in r.headers, r.headers
            assert r.headers["x-content-type-options"] == "nosniff"
