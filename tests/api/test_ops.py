"""Operations: HEAD on GET routes (D6), a complete ``Allow`` (D14), the source-path
pattern in the schema (D13), ``/ready`` apart from ``/health``, and a broken build on disk
shown instead of retried silently (D12)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from qa.api.errors import ApiError
from qa.api.ops import SOURCE_PATH_PATTERN
from qa.api.routes import safe_source_path
from qa.config import Settings
from qa.index import build_index
from tests.api.helpers import assert_error
from tests.support.client import api


@pytest.fixture
def client(tiny_index: Path, settings: Settings, fake_embedder: Any) -> Iterator[TestClient]:
    with api(settings, fake_embedder) as c:
        yield c


# --- D6: HEAD ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/health", "/ready", "/", "/view", "/widget.js", "/sources", "/docs", "/limits"]
)
def test_head_answers_like_get_without_a_body(client: TestClient, path: str) -> None:
    get = client.get(path)
    head = client.head(path)
    assert head.status_code == get.status_code == 200, head.text
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["x-content-type-options"] == "nosniff"


def test_head_on_a_source_and_on_search(client: TestClient) -> None:
    path = client.get("/sources").json()["sources"][0]["path"]
    assert client.head(f"/sources/{path}").status_code == 200
    assert client.head("/search?q=veg").status_code == 200


# --- D14: Allow -------------------------------------------------------------------------


def test_allow_lists_every_method_of_the_path(client: TestClient) -> None:
    r = client.options("/search")
    assert_error(r, 405, "method_not_allowed")
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    r = client.delete("/health")
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD"}
    r = client.post("/sources/a.txt")
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD"}


# --- D13: the path pattern ----------------------------------------------------------------


def test_schema_states_what_a_source_path_may_be(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for route in ("/sources/{path}", "/sources/{path}/original"):
        params = spec["paths"][route]["get"]["parameters"]
        schema = next(p["schema"] for p in params if p["name"] == "path")
        assert schema["pattern"] == SOURCE_PATH_PATTERN
        assert schema["maxLength"] == 1024


def _refused(path: str) -> bool:
    try:
        safe_source_path(path)
    except ApiError:
        return True
    return False


_SAMPLES = [
    "a",
    "a/b.txt",
    "...",
    ".x/..y",
    "C:x",
    "c",
    "c/d:e",
    "1:",
    "a//b",
    "./a",
    "a/..",
    "/a",
    "a\\b",
    "a\nb",
    "a\x7f",
    "..",
    ".",
    "a/",
    "é/ø.pdf",
    ":a",
    "Z:",
    "ab:c",
]


@pytest.mark.parametrize("path", _SAMPLES)
def test_pattern_and_check_agree_on_samples(path: str) -> None:
    assert (re.fullmatch(SOURCE_PATH_PATTERN, path) is None) == _refused(path)


@hsettings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from("aZ.:/\\\n é"), max_size=8))
def test_pattern_and_check_agree(path: str) -> None:
    assert (re.fullmatch(SOURCE_PATH_PATTERN, path) is None) == _refused(path)


# --- /ready and D12 -----------------------------------------------------------------------


def test_ready_when_serving(client: TestClient) -> None:
    r = client.get("/ready")
    assert r.status_code == 200
    assert r.json()["status"] == "ready"
    assert r.json()["index_version"] == client.get("/health").json()["index_version"]


def test_ready_503_without_an_index(settings: Settings, fake_embedder: Any) -> None:
    with api(settings, fake_embedder) as c:
        assert_error(c.get("/ready"), 503, "index_not_ready")


def _break_newest_build(settings: Settings, fake_embedder: Any, tiny_sources: Path) -> None:
    """A new build made current, then damaged on disk (its manifest is not JSON)."""
    (tiny_sources / "ny.txt").write_text("Bibliotek\n\nFolkebiblioteket er gratis.")
    build_index(settings, fake_embedder, progress=False)
    (settings.index_dir / "current" / "manifest.json").write_text("{")


def test_broken_build_shows_and_is_not_retried(
    tiny_index: Path,
    settings: Settings,
    fake_embedder: Any,
    tiny_sources: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with api(settings, fake_embedder, reload_interval_s=0.05) as c:
        before = c.get("/health").json()["index_version"]
        _break_newest_build(settings, fake_embedder, tiny_sources)
        deadline = time.monotonic() + 10
        while not c.get("/health").json()["index_problem"]:
            assert time.monotonic() < deadline, "the broken build never showed on /health"
            time.sleep(0.05)
        health = c.get("/health").json()
        assert health["status"] == "degraded" and health["index_version"] == before
        assert str(settings.index_dir) not in json.dumps(health)
        assert_error(c.get("/ready"), 503, "index_problem")
        assert c.post("/search", json={"query": "veg"}).status_code == 200  # still serving
        time.sleep(0.5)  # ten polls: the broken build is logged once, not every poll
        logged = [r for r in caplog.records if "new index not loaded" in r.getMessage()]
        assert len(logged) == 1


# --- D7: CORS refusals ------------------------------------------------------------------


def test_cors_refusal_is_json_with_security_headers(
    tiny_index: Path, settings: Settings, fake_embedder: Any
) -> None:
    ok, evil = "https://intranett.kommune.no", "https://evil.example"
    pre = {"Origin": evil, "Access-Control-Request-Method": "POST"}
    with api(settings, fake_embedder, cors_origins=[ok]) as c:
        r = c.options("/search", headers=pre)
        assert_error(r, 400, "cors_rejected")
        assert "access-control-allow-origin" not in r.headers
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
        r = c.options("/search", headers={**pre, "Origin": ok})
        assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
