"""Hostile use of a real `qa serve` over real sockets: the API key, CORS, path traversal,
security headers and the per-client rate limit, as the settings promise them.

The server is the CLI in a subprocess (fake model); requests go over HTTP, some byte for
byte (httpx would normalise a `..` away). No error body may leak a key, a path or a trace.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx
import pytest

from qa.config import Settings
from tests.support.procs import no_traceback, qa_env, serving

KEY = "s3cret-nøkkel"
ALLOWED = "https://intranett.kommune.no"
#: API operations open without a key: they carry no indexed data (a probe; the limits).
OPEN = ("/health", "/ready", "/limits")  # for load balancers and the widget: no indexed data


def raw_get(url: str, target: str, headers: str = "") -> tuple[int, str]:
    """A GET with the target sent byte for byte (httpx would normalise `..` away)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        request = f"GET {target} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
        s.sendall(request.encode("latin-1"))  # header bytes as given (a UTF-8 key included)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode("utf-8", "replace")


def assert_clean_error(body: str, *secrets: str) -> None:
    """An error body: the JSON shape, and nothing internal in it."""
    assert '"error"' in body, body
    for leak in ("Traceback", 'File "', "site-packages", os.getcwd(), "/tmp", *secrets):
        assert leak not in body, (leak, body)


def _calls(openapi: dict) -> list[tuple[str, str]]:
    """(method, url) for every operation the API documents, with sample parameters."""
    out = []
    for path, ops in openapi["paths"].items():
        for method in ops:
            url = path.replace("{path}", "veg.txt")
            if url == "/search" and method == "get":
                url += "?q=veg"
            out.append((method.upper(), url))
    return out


@pytest.mark.slow
def test_real_server_api_key_cors_paths_and_headers(
    tiny_index: Path, settings: Settings, tmp_path: Path
) -> None:
    """`qa serve` (fake model) with QA_API_KEY and QA_CORS_ORIGINS set, over real HTTP."""
    secret = tmp_path / "hemmelig.txt"
    secret.write_text("TOPPHEMMELIG passord", encoding="utf-8")
    src = Path(settings.sources_dir)
    (src / "veg.txt").unlink()
    (src / "veg.txt").symlink_to(secret)  # swapped for a link to a secret after indexing
    (src / "lenke.txt").symlink_to(secret)
    env = qa_env(**{"QA_API_KEY": KEY, "QA_CORS_ORIGINS": ALLOWED, "QA_RATE_LIMIT": "off"},
                 QA_CHUNK_SIZE="120", QA_CHUNK_OVERLAP="30")  # fmt: skip
    with serving(tiny_index, src, tmp_path, fake=True, env=env) as server:
        http = httpx.Client(base_url=server.url, timeout=30)
        key = {"X-API-Key": KEY.encode()}
        calls = _calls(http.get("/openapi.json").json())
        assert ("POST", "/search") in calls and ("GET", "/sources/veg.txt") in calls
        for method, url in calls:
            body = {"json": {"query": "veg"}} if method == "POST" else {}
            bare = http.request(method, url, **body)
            if url in OPEN:
                assert bare.status_code == 200, url
                continue
            assert bare.status_code == 401, (method, url, bare.status_code)
            assert_clean_error(bare.text, KEY)
            wrong = http.request(method, url, headers={"X-API-Key": "feil"}, **body)
            assert wrong.status_code == 401
            bearer = {"Authorization": b"Bearer " + KEY.encode()}
            # veg.txt is a link now: its original is refused (404), never the secret served
            ok = 404 if url.endswith("/original") else 200
            ok = 422 if url == "/feedback" else ok  # {"query"} alone is no vote
            for good in (key, bearer):
                answer = http.request(method, url, headers=good, **body)
                assert answer.status_code == ok and "TOPPHEMMELIG" not in answer.text, url
        for page in ("/", "/view", "/widget.js", "/docs", "/openapi.json"):
            assert http.get(page).status_code == 200, page  # static, no indexed data

        # Paths: the snapshot is served, never the file system; traversal is refused.
        r = http.get("/sources/veg.txt", headers=key)
        assert r.text.startswith("Vegvedlikehold") and "TOPPHEMMELIG" not in r.text
        assert http.get("/sources/lenke.txt", headers=key).status_code == 404
        hits = http.get("/search", params={"q": "TOPPHEMMELIG passord"}, headers=key).json()
        assert not any("TOPPHEMMELIG" in h["text"] for h in hits["results"])
        header = f"X-API-Key: {KEY}\r\n".encode().decode("latin-1")
        for target in (
            "/sources/../../etc/passwd",
            "/sources/%2e%2e/%2e%2e/etc/passwd",
            "/sources/..%2f..%2fetc%2fpasswd",
            "/sources/%2Fetc%2Fpasswd",
            "/sources//etc/passwd",
            f"/sources/{secret}",
            "/sources/sub%5c..%5c..%5cetc%5cpasswd",
            "/sources/veg.txt%00.txt",
        ):
            status, body = raw_get(server.url, target, header)
            assert status in (400, 404), (target, status)
            assert "root:" not in body and "TOPPHEMMELIG" not in body
            assert_clean_error(body, KEY)

        # CORS: the allowed origin only; preflights need no key (browsers send none).
        r = http.get("/search?q=veg", headers={**key, "Origin": ALLOWED})
        assert r.headers["access-control-allow-origin"] == ALLOWED
        r = http.get("/search?q=veg", headers={**key, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
        pre = {"Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type,x-api-key"}  # fmt: skip
        assert http.options("/search", headers={**pre, "Origin": ALLOWED}).status_code == 200
        evil = http.options("/search", headers={**pre, "Origin": "https://evil.example"})
        assert evil.status_code == 400 and "access-control-allow-origin" not in evil.headers
        r = http.get("/search?q=veg", headers={"Origin": ALLOWED})  # a 401 the page can read
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ALLOWED

        # Headers on what a browser renders.
        for page in ("/", "/view", "/widget.js", "/health"):
            h = http.get(page).headers
            assert h["x-content-type-options"] == "nosniff", page
            assert "frame-ancestors" in h["content-security-policy"], page
            assert "server" not in h, page
        assert "script-src 'self';" in http.get("/").headers["content-security-policy"]
        http.close()
    no_traceback(server.output())


@pytest.mark.slow
def test_real_server_rate_limit_is_per_client(
    tiny_index: Path, settings: Settings, tmp_path: Path
) -> None:
    """QA_RATE_LIMIT=5/minute over real sockets from different loopback addresses: one
    client is limited, another is not, /health never is, and a client that is not a
    trusted proxy cannot pick a new identity with X-Forwarded-For."""
    env = qa_env(QA_RATE_LIMIT="5/minute", QA_CHUNK_SIZE="120", QA_CHUNK_OVERLAP="30")

    def client(addr: str) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=addr)
        return httpx.Client(base_url=server.url, transport=transport, timeout=30)

    with serving(tiny_index, Path(settings.sources_dir), tmp_path, fake=True, env=env) as server:
        a, b = client("127.0.0.2"), client("127.0.0.3")
        assert [a.get("/search?q=veg").status_code for _ in range(5)] == [200] * 5
        limited = a.get("/search?q=veg")
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
        assert_clean_error(limited.text)
        assert a.get("/sources").status_code == 429  # per client, not per route
        spoofed = a.get("/search?q=veg", headers={"X-Forwarded-For": "198.51.100.9"})
        assert spoofed.status_code == 429
        assert a.get("/health").status_code == 200
        assert b.get("/search?q=veg").status_code == 200
        a.close()
        b.close()
