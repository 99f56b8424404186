"""/search results carry a valid answer span, for any query: inside the passage, an exact
slice of the source text that GET /sources serves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.config import Settings
from tests.support.client import api

WORDS = ["kommune", "fylkesvegene", "Hvem", "har", "ansvar", "sykehjem", "kroner", "2024", "?"]


@pytest.fixture
def client(tiny_index: Path, settings: Settings, fake_embedder: Any) -> Iterator[Any]:
    with api(settings, fake_embedder) as c:
        yield c


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join))
def test_every_result_has_a_valid_answer_span(client: Any, query: str) -> None:
    r = client.post("/search", json={"query": query, "k": 5})
    assert r.status_code == 200, r.text
    for item in r.json()["results"]:
        assert item["start"] <= item["answer_start"] < item["answer_end"] <= item["end"]
        source = client.get(f"/sources/{item['source']}").text
        span = source[item["answer_start"] : item["answer_end"]]
        assert span and span == span.strip()
        assert item["text"][item["answer_start"] - item["start"] :].startswith(span)


def test_the_span_is_documented_in_the_openapi_schema(client: Any) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["ResultItem"]
    for field in ("answer_start", "answer_end"):
        assert field in schema["required"] and schema["properties"][field]["description"]
