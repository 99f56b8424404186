"""``GET /metrics``: scraped with Prometheus's own text parser after requests whose counts
the test knows; the token; request ids on every answer; one real-server variant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from starlette.datastructures import MutableHeaders

from qa.api.app import create_app
from qa.api.logs import request_id
from qa.api.security import add_security_headers
from qa.config import Settings
from qa.embedding.batching import BatchingEmbedder
from qa.retriever import LiveRetriever
from tests.api.helpers import assert_error, live_server
from tests.support.client import api

TOKEN = "scrape-me-8d1f0c2e"
#: Every header ``qa.api.security`` puts on a data response, taken from it, not repeated.
_DEFAULTS = MutableHeaders()
add_security_headers(_DEFAULTS)
SECURITY = dict(_DEFAULTS.items())

Samples = list[tuple[str, dict[str, str], float]]


def scrape(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, parsed by prometheus_client."""
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(v for n, lab, v in samples if n == name and labels.items() <= lab.items())


@pytest.fixture
def client(tiny_index: Path, settings: Settings, fake_embedder: Any) -> Iterator[TestClient]:
    with api(settings, BatchingEmbedder(fake_embedder, workers=1)) as c:
        yield c


def test_metrics_count_what_was_done(client: TestClient) -> None:
    answers = [
        client.get("/search", params={"q": query})
        for query in ("Hvem har rett til foreldrepenger?", "How is the road maintained?", "veg")
    ]
    answers += [client.post("/search", json={"query": q}) for q in ("vedlikehold av veg", "veg")]
    nothing = client.get("/search", params={"q": "veg", "source": "finnes/ikke/**"})
    assert nothing.status_code == 200 and nothing.json()["results"] == []
    answers.append(nothing)
    languages: dict[str, int] = {}
    for answer in answers:
        language = answer.json()["language"]
        languages[language] = languages.get(language, 0) + 1
    assert len(languages) >= 2  # English and Norwegian told apart
    path = client.get("/sources").json()["sources"][0]["path"]
    assert client.get(f"/sources/{path}").status_code == 200
    assert client.get("/finnes-ikke").status_code == 404
    for _ in range(3):
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 200
    health = client.get("/health").json()

    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    for name, want in SECURITY.items():
        assert r.headers[name] == want
    samples = scrape(r.text)

    searches = "qa_http_requests_total"
    assert value(samples, searches, route="/search", method="GET", status="200") == 4
    assert value(samples, searches, route="/search", method="POST", status="200") == 2
    hist = "qa_http_request_duration_seconds_count"
    assert value(samples, hist, route="/search") == 6
    buckets = {lab["le"] for n, lab, _ in samples if n.endswith("_bucket")}
    assert {"0.005", "0.01", "0.02", "0.05", "0.1", "0.2"} <= buckets
    assert value(samples, searches, route="/sources/{path}", status="200") == 1
    assert value(samples, searches, route="<unmatched>", status="404") == 1
    routes = {lab.get("route") for n, lab, _ in samples if n.startswith("qa_http_")}
    assert not routes & {"/health", "/ready", "/metrics", f"/sources/{path}", "/finnes-ikke"}

    for language, count in languages.items():
        assert value(samples, "qa_searches_total", language=language) == count
    assert value(samples, "qa_searches_total") == 6  # the empty one counts too
    assert value(samples, "qa_searches_empty_total") == 1
    assert value(samples, "qa_index_info", version=health["index_version"]) == 1
    assert value(samples, "qa_index_passages") == health["passages"]
    assert value(samples, "qa_index_built_timestamp_seconds") > 1.6e9
    assert value(samples, "qa_ready") == 1
    assert ("qa_embedding_queue_depth", {}, 0.0) in samples


def test_feedback_is_counted_by_vote(client: TestClient) -> None:
    version = client.get("/health").json()["index_version"]
    for _ in range(2):
        vote = {"query": "veg", "index_version": version, "vote": "none"}
        assert client.post("/feedback", json=vote).status_code == 201
    assert client.post("/feedback", json={"vote": "none"}).status_code == 422  # not counted
    samples = scrape(client.get("/metrics").text)
    assert value(samples, "qa_feedback_total", vote="none") == 2
    assert value(samples, "qa_feedback_total") == 2


def test_apps_do_not_share_counts(tiny_index: Path, settings: Settings, fake_embedder: Any) -> None:
    with api(settings, fake_embedder) as first, api(settings, fake_embedder) as second:
        first.get("/search", params={"q": "veg"})
        one = scrape(first.get("/metrics").text)
        two = scrape(second.get("/metrics").text)
    assert value(one, "qa_searches_total") == 1
    assert value(two, "qa_searches_total") == 0


def test_not_ready_before_an_index(settings: Settings, fake_embedder: Any) -> None:
    """No index: /metrics still answers, says not ready, and names no index."""
    app = create_app(settings, LiveRetriever(settings, fake_embedder))
    with TestClient(app, raise_server_exceptions=False) as client:
        samples = scrape(client.get("/metrics").text)
    assert value(samples, "qa_ready") == 0
    assert not [n for n, _, _ in samples if n.startswith("qa_index")]


def test_token_is_needed_when_set(tiny_index: Path, settings: Settings, fake_embedder: Any) -> None:
    with api(settings, fake_embedder, metrics_token=TOKEN, rate_limit="2/minute") as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                        {"X-API-Key": TOKEN}, {"Authorization": f"Basic {TOKEN}"}):  # fmt: skip
            r = client.get("/metrics", headers=headers)
            err = assert_error(r, 401, "unauthorized")
            assert TOKEN not in r.text and "wrong" not in err["message"]
            assert r.headers["www-authenticate"] == "Bearer"
            assert r.headers["x-content-type-options"] == "nosniff"
        good = {"Authorization": f"Bearer {TOKEN}"}
        for _ in range(4):  # over the rate limit of 2/minute: exempt, like /health
            r = client.get("/metrics", headers=good)
            assert r.status_code == 200, r.text
        assert "qa_ready 1.0" in r.text
        head = client.head("/metrics", headers=good)
        assert head.status_code == 200 and head.content == b""
        assert client.head("/metrics").status_code == 401
        assert set(client.post("/metrics").headers["allow"].split(", ")) == {"GET", "HEAD"}


def test_empty_token_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="QA_METRICS_TOKEN"):
        Settings(**{**settings.model_dump(), "metrics_token": "  "}, _env_file=None)


def test_hidden_files_are_not_counted_without_the_token(
    tiny_index: Path, settings: Settings, fake_embedder: Any
) -> None:
    """Open /metrics counts passages as /health does for an anonymous caller."""
    with api(settings, fake_embedder) as client:
        open_count = value(scrape(client.get("/metrics").text), "qa_index_passages")
        assert open_count == client.get("/health").json()["passages"]


# --- X-Request-ID -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [(b"abc-123_X.y", True), (b"a" * 128, True), (b"a" * 129, False), (b"\r\nfake", False),
     (b'a"b', False), (b"a b", False), (b"", False), ("ø".encode(), False)],
)  # fmt: skip
def test_request_id_is_kept_only_when_sane(given: bytes, kept: bool) -> None:
    rid = request_id(given)
    assert (rid == given.decode("latin-1")) is kept
    if not kept:
        assert len(rid) == 32 and int(rid, 16) >= 0


def test_every_answer_has_a_request_id(
    tiny_index: Path, settings: Settings, fake_embedder: Any
) -> None:
    with api(settings, fake_embedder, api_key="k", max_body_bytes=1024) as client:
        assert (
            client.get("/health", headers={"X-Request-ID": "mine-1"}).headers["x-request-id"]
            == "mine-1"
        )
        bad = client.get("/health", headers={"X-Request-ID": 'x" y'}).headers["x-request-id"]
        assert bad != 'x" y' and len(bad) == 32
        refused = [
            client.get("/search", params={"q": "veg"}),  # 401
            client.post("/search", content=b"x" * 2000, headers={"X-API-Key": "k"}),  # 413
            client.get("/finnes-ikke"),  # 404
            client.put("/search"),  # 405
        ]
        assert [r.status_code for r in refused] == [401, 413, 404, 405]
        ids = {r.headers["x-request-id"] for r in refused}
        assert len(ids) == 4
    with api(settings, fake_embedder, rate_limit="1/minute") as client:
        client.get("/limits")
        limited = client.get("/limits", headers={"X-Request-ID": "over"})
        assert limited.status_code == 429 and limited.headers["x-request-id"] == "over"


def test_a_500_names_its_request_id(settings: Settings, fake_embedder: Any) -> None:
    app = create_app(settings, LiveRetriever(settings, fake_embedder))

    async def fails() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/fails", fails)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/fails", headers={"X-Request-ID": "trace-500"})
        samples = scrape(client.get("/metrics").text)
    err = assert_error(r, 500, "internal_error")
    assert r.headers["x-request-id"] == err["request_id"] == "trace-500"
    assert value(samples, "qa_http_requests_total", route="/fails", status="500") == 1


@pytest.mark.slow
def test_real_server_metrics(tiny_index: Path, settings: Settings, fake_embedder: Any) -> None:
    """Over real HTTP (uvicorn, ``qa serve``'s options): the same counts, and the token."""
    s = Settings(**{**settings.model_dump(), "metrics_token": TOKEN}, _env_file=None)
    embedder = BatchingEmbedder(fake_embedder, workers=1)
    with live_server(s, embedder) as base, httpx.Client(base_url=base, timeout=30) as http:
        for _ in range(3):
            assert http.get("/search", params={"q": "veg"}).status_code == 200
        http.get("/health")
        assert http.get("/metrics").status_code == 401
        r = http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    samples = scrape(r.text)
    assert value(samples, "qa_http_requests_total", route="/search", method="GET") == 3
    assert value(samples, "qa_http_request_duration_seconds_count", route="/search") == 3
    assert value(samples, "qa_searches_total") == 3
    assert not [lab for n, lab, _ in samples if lab.get("route") == "/health"]
    assert value(samples, "qa_ready") == 1
