"""Sentence vectors in the index: written with every build, reused for unchanged files,
and an index without them (an older FORMAT) refused with what to run, then rebuilt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa.answer.sentences import in_context, split, title_of
from qa.config import Settings
from qa.index import IndexCorrupt, IndexMismatch, build_index, load_index
from qa.index.sentences import SPANS_FILE, VECTORS_FILE
from tests.support.fake import FakeEmbedder


def _check_table(settings: Settings, embedder: FakeEmbedder) -> None:
    """Every source's stored sentences are its sentences now, with their own vectors."""
    loaded = load_index(settings.index_dir, settings, embedder)
    assert loaded.sentences is not None
    for path, text in loaded.texts.items():
        spans, vectors = loaded.sentences.of(path)
        assert [tuple(s) for s in spans.tolist()] == split(text)
        fresh = embedder.embed_passages([in_context(title_of(text), text[s:e]) for s, e in spans])
        assert np.allclose(np.asarray(vectors, np.float32), fresh, atol=2e-3)


def test_reuse_keeps_sentence_vectors_right(
    tiny_index: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    _check_table(settings, fake_embedder)
    src = Path(settings.sources_dir)
    (src / "veg.txt").write_text("Nye veger. Bruer bygges i 2025.\n\nTunneler stenges.", "utf-8")
    (src / "sub" / "helse.txt").rename(src / "helse-flyttet.txt")  # moved: vectors reused
    fake_embedder.embedded = 0
    report = build_index(settings, fake_embedder, progress=False)
    assert report.sentences == 3 and report.embedded == 1  # veg.txt's only
    assert fake_embedder.embedded == report.embedded + report.sentences
    _check_table(settings, fake_embedder)
    manifest = json.loads((tiny_index / "current" / "manifest.json").read_text("utf-8"))
    rows = sorted(tuple(info["sentences"]) for info in manifest["sources"].values())
    assert rows[0][0] == 0 and manifest["sentences"]["count"] == sum(n for _, n in rows)


def test_an_index_of_the_older_format_is_refused_then_rebuilt(
    tiny_index: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    build = tiny_index / "current"
    (build / SPANS_FILE).unlink()
    (build / VECTORS_FILE).unlink()
    manifest = json.loads((build / "manifest.json").read_text("utf-8"))
    manifest["format"] = 1
    del manifest["sentences"]
    (build / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    with pytest.raises(IndexMismatch, match="--rebuild"):
        load_index(tiny_index, settings, fake_embedder)
    report = build_index(settings, fake_embedder, progress=False)
    assert report.changed and report.reused == 0 and report.embedded == report.passages
    _check_table(settings, fake_embedder)


def test_missing_or_mismatched_sentence_files_are_damage(
    tiny_index: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    build = tiny_index / "current"
    np.save(build / VECTORS_FILE, np.zeros((2, fake_embedder.dim), np.float16))
    with pytest.raises(IndexCorrupt, match="does not match"):
        load_index(tiny_index, settings, fake_embedder)
    (build / VECTORS_FILE).unlink()
    with pytest.raises(IndexCorrupt, match="--rebuild"):
        load_index(tiny_index, settings, fake_embedder)


def test_sentences_are_embedded_after_their_title_and_another_context_is_damage(
    tiny_index: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    assert title_of("\n  Vegvedlikehold\nFylket har ansvar.") == "Vegvedlikehold"
    assert (
        in_context("Vegvedlikehold", "Fylket har ansvar.") == "Vegvedlikehold: Fylket har ansvar."
    )
    loaded = load_index(settings.index_dir, settings, fake_embedder)
    assert loaded.sentences is not None
    path, text = next((p, t) for p, t in loaded.texts.items() if "\n" in t.strip())
    spans, vectors = loaded.sentences.of(path)
    s, e = spans[-1]  # a sentence that is not the title line
    bare = fake_embedder.embed_passages([text[s:e]])[0]
    assert not np.allclose(np.asarray(vectors[-1], np.float32), bare, atol=2e-3)
    build = tiny_index / "current"
    manifest = json.loads((build / "manifest.json").read_text("utf-8"))
    manifest["sentences"]["context"] = "none"  # vectors of a version without titles
    (build / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    with pytest.raises(IndexCorrupt, match="--rebuild"):
        load_index(tiny_index, settings, fake_embedder)
