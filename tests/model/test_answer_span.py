"""Through the real model: a seeds question gets an answer span that holds its answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.config import Settings
from qa.embedding import load_embedder
from qa.index import build_index
from qa.retriever import Retriever

pytestmark = pytest.mark.slow

QUESTION = "Hva heter kulturprosjektet som KS og Norsk kulturskoleråd har samarbeidet om?"
ANSWER = "Kulturprosjektet Oppspill"  # eval/gold.jsonl, seeds-001


def test_a_seeds_question_gets_a_span_with_its_answer(seed_sources: Path, tmp_path: Path) -> None:
    settings = Settings(sources_dir=seed_sources, index_dir=tmp_path / "index")
    embedder = load_embedder(settings)
    report = build_index(settings, embedder, progress=False)
    assert report.sentences > report.passages  # sentence vectors made at index time
    retriever = Retriever.load(settings.index_dir, settings, embedder)
    hit = retriever.search(QUESTION, 1).hits[0]
    text = retriever.source_text(hit.passage.source) or ""
    assert hit.answer_start is not None and hit.answer_end is not None
    span = text[hit.answer_start : hit.answer_end]
    assert ANSWER in " ".join(span.split()) and len(span) < len(hit.passage.text)
