"""qa eval --url: the client decodes with the API's own schemas and, through the real app,
gives exactly the figures of the Retriever it serves."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from qa.api.schemas import SearchResponse
from qa.config import Settings
from qa.eval.http import HttpSearcher, result_from_search
from qa.eval.run import evaluate_searcher
from qa.retriever import Retriever
from tests.support.client import api
from tests.support.fake import FakeEmbedder
from tests.unit.eval_hand import TINY_QUESTIONS, hand_result

KEY = "s3cret"


def test_wire_format_round_trips_through_the_api_schema() -> None:
    """What the API sends (``SearchResponse.from_result``) decodes to the same hits."""
    sent = hand_result("question q2")
    wire = SearchResponse.from_result(sent, "v1").model_dump(mode="json")
    got = result_from_search(wire)
    assert (got.query, got.language) == (sent.query, sent.language)
    assert [(h.passage, h.score, h.rank) for h in got.hits] == [
        (h.passage, h.score, h.rank) for h in sent.hits
    ]
    del wire["results"][0]["line_start"]  # a field renamed or dropped on one side: an error
    with pytest.raises(ValidationError, match="line_start"):
        result_from_search(wire)


def test_http_mode_against_the_api_gives_the_same_figures(
    settings: Settings, tiny_index: Path, fake_embedder: FakeEmbedder
) -> None:
    direct = evaluate_searcher(Retriever.load(tiny_index, settings, fake_embedder), TINY_QUESTIONS)
    with api(settings, fake_embedder, api_key=KEY, rate_limit="10000/minute") as client:
        searcher = HttpSearcher(client=client, api_key=KEY)
        assert searcher.health().model == fake_embedder.name
        via_api = evaluate_searcher(searcher, TINY_QUESTIONS)
        with pytest.raises(RuntimeError, match="401"):
            HttpSearcher(client=client).search("veg")
    assert via_api["metrics"] == direct["metrics"]
    assert via_api["unanswerable"] == direct["unanswerable"]
    assert [r["results"] for r in via_api["questions"]] == [
        r["results"] for r in direct["questions"]
    ]
