"""Fusion and the retriever: exact citations, no duplicates, cross-lingual weighting."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from qa import fusion
from qa.config import Settings
from qa.index import build_index
from qa.retriever import LiveRetriever, Retriever
from qa.types import Passage


def test_rrf_on_hand_written_lists() -> None:
    scores = fusion.rrf([[1, 2, 3], [3, 1]], [1.0, 1.0], k=60)
    assert scores[1] == 1 / 61 + 1 / 62
    assert scores[3] == 1 / 63 + 1 / 61
    assert scores[2] == 1 / 62
    assert fusion.ranked(scores) == [1, 3, 2]
    assert fusion.rrf([[1], [2]], [1.0, 0.0], k=60) == {1: 1 / 61}


def test_lexical_weight_keeps_bm25_for_norwegian_and_damps_it_for_english() -> None:
    nordic = {"nb"}
    assert fusion.lexical_weight(1.0, "nb", nordic, 0.2, 0.5) == 1.0
    assert fusion.lexical_weight(1.0, "nn", nordic, 0.2, 0.5) == 1.0
    assert fusion.lexical_weight(1.0, "en", nordic, 0.4, 0.5) == 0.2
    assert fusion.lexical_weight(1.0, "en", nordic, 0.0, 0.5) == 0.0
    assert fusion.lexical_weight(1.0, "en", {"en"}, 0.1, 0.5) == 1.0


def test_overlapping_passages_are_merged_and_repeats_dropped() -> None:
    ps = [
        Passage("a", 0, 100, "x" * 100, 1, 1),
        Passage("a", 80, 180, "y" * 100, 1, 1),  # overlaps 0: merged into it
        Passage("b", 0, 100, "x" * 100, 1, 1),  # same text as 0 in another file: dropped
        Passage("a", 180, 200, "z" * 20, 1, 1),  # adjacent, no overlap: its own result
        Passage("c", 0, 50, "w" * 50, 1, 1),
    ]
    assert fusion.merge_overlapping([0, 1, 2, 3, 4], ps, 5, 500) == [
        (0, 180, [0, 1]),
        (180, 200, [3]),
        (0, 50, [4]),
    ]
    # when merging would make a result too long, only the part not shown yet is kept
    assert fusion.merge_overlapping([0, 1], ps, 5, 150) == [(0, 100, [0]), (100, 180, [1])]
    assert fusion.merge_overlapping([1, 0, 3], ps, 2, 500) == [(0, 180, [1, 0]), (180, 200, [3])]
    assert fusion.merge_overlapping([1, 0, 3], ps, 1, 500) == [(80, 180, [1])]
    # a short passage overlapping nothing is a result like any other (a tiny file)
    tiny = [*ps, Passage("d", 0, 15, "Nytt om havner.", 1, 1)]
    assert fusion.merge_overlapping([5, 0], tiny, 2, 500) == [(0, 15, [5]), (0, 100, [0])]


def test_every_citation_is_exact(retriever: Retriever) -> None:
    for query in [
        "Hvem har ansvar for fylkesvegene?",
        "kulturskole",
        "overskudd kroner",
        "Who maintains the roads?",
        "sykehjem",
    ]:
        result = retriever.search(query, 10)
        assert result.hits
        for hit in result.hits:
            p = hit.passage
            text = retriever.source_text(p.source)
            assert text is not None and text[p.start : p.end] == p.text
        spans = [(h.passage.source, h.passage.start, h.passage.end) for h in result.hits]
        # no text is returned twice: results of one file never overlap
        for i, (s1, a1, b1) in enumerate(spans):
            for s2, a2, b2 in spans[i + 1 :]:
                assert s1 != s2 or b1 <= a2 or b2 <= a1
        assert [h.rank for h in result.hits] == list(range(1, len(result.hits) + 1))
        assert all(a.score >= b.score for a, b in itertools.pairwise(result.hits))


def test_lexical_match_finds_the_right_file(retriever: Retriever) -> None:
    hit = retriever.search("Hvor mye koster vedlikeholdet av vegene?", 3).hits[0]
    assert hit.passage.source == "veg.txt"
    assert "3,2 milliarder" in hit.passage.text
    assert retriever.search("Hvor mye koster vedlikeholdet?").language == "nb"


def test_batch_equals_single(retriever: Retriever) -> None:
    qs = ["kulturskole", "fastlege", "tunneler"]
    batch = retriever.search_batch(qs, 3)
    for q, res in zip(qs, batch, strict=True):
        single = retriever.search(q, 3)
        assert [h.passage for h in res.hits] == [h.passage for h in single.hits]
        assert np.allclose([h.score for h in res.hits], [h.score for h in single.hits])


def test_sources_listing(retriever: Retriever) -> None:
    listed = {s.path: s for s in retriever.sources()}
    assert set(listed) == {"kultur.txt", "veg.txt", "sub/helse.txt", "okonomi.txt"}
    assert listed["okonomi.txt"].encoding != "utf-8"
    assert retriever.source_text("okonomi.txt").startswith("Økonomi")
    assert retriever.source_text("../etc/passwd") is None


def test_live_retriever_swaps_in_a_rebuilt_index(
    tiny_index: Path, settings: Settings, fake_embedder
) -> None:
    live = LiveRetriever(settings, fake_embedder)
    live.start()
    try:
        old = live.get()
        (Path(settings.sources_dir) / "nytt.txt").write_text(
            "Svømmehallen åpner i mars.", encoding="utf-8"
        )
        build_index(settings, fake_embedder, progress=False)
        assert live.reload_if_changed()
        new = live.get()
        assert new.version != old.version
        assert new.search("svømmehallen", 1).hits[0].passage.source == "nytt.txt"
        # the request that held the old retriever still gets answers from it
        assert old.search("svømmehallen", 5).hits
        assert "nytt.txt" not in {s.path for s in old.sources()}
    finally:
        live.stop()
