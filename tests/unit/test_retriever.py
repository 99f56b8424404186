"""Fusion and the retriever: exact citations, no duplicates, cross-lingual weighting."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa import fusion
from qa.config import Settings
from qa.index import IndexNotFound, build_index, current_version
from qa.retriever import LiveRetriever, Retriever
from qa.types import Passage
from tests.support.fake import FakeEmbedder


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


def _add_a_file(settings: Settings) -> None:
    (Path(settings.sources_dir) / "nytt.txt").write_text("Svømmehallen åpner i mars.", "utf-8")


def test_concurrent_reloads_load_a_new_build_once(
    tiny_index: Path,
    settings: Settings,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The poller, the source watcher and anyone else may ask at once: one load, one swap."""
    live = LiveRetriever(settings.model_copy(update={"reload_interval_s": 3600}), fake_embedder)
    live.start()
    try:
        _add_a_file(settings)
        build_index(settings, fake_embedder, progress=False)
        loads: list[str] = []
        real = Retriever.load.__func__  # type: ignore[attr-defined]  # the classmethod's function

        def slow_load(cls: type[Retriever], *args: Any) -> Retriever:
            loads.append(threading.current_thread().name)
            time.sleep(0.05)  # a wide window for a second loader, were there no lock
            return real(cls, *args)

        monkeypatch.setattr(Retriever, "load", classmethod(slow_load))
        start = threading.Barrier(8)
        answers: list[bool] = []

        def reload() -> None:
            start.wait()
            answers.append(live.reload_if_changed())

        threads = [threading.Thread(target=reload) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(answers) == [False] * 7 + [True]
        assert len(loads) == 1
        assert live.get().version == current_version(tiny_index)
    finally:
        live.stop()


def test_the_poller_serves_an_index_built_after_a_failed_start(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    """No index at start: start() says so, and the poller loads the first build (no task of
    the caller's needed)."""
    live = LiveRetriever(settings, fake_embedder)
    with pytest.raises(IndexNotFound):
        live.start()
    try:
        assert not live.ready
        build_index(settings, fake_embedder, progress=False)
        deadline = time.monotonic() + 30
        while not live.ready and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.ready and live.get().version == current_version(settings.index_dir)
    finally:
        live.stop()


def test_stop_ends_the_poller_and_closes_the_embedder(
    tiny_index: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    closed: list[bool] = []
    fake_embedder.close = lambda: closed.append(True)  # type: ignore[attr-defined]  # a BatchingEmbedder's close()
    live = LiveRetriever(settings, fake_embedder)
    live.start()
    assert live._thread is not None and live._thread.is_alive()
    live.stop()
    assert not live._thread.is_alive() and closed == [True]
