"""The index folder: incremental rebuilds, atomic swap, refusing a mismatched or broken index."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from qa import index as index_mod
from qa.config import Settings
from qa.index import (
    IndexCorrupt,
    IndexMismatch,
    IndexNotFound,
    IndexProblem,
    build_index,
    current_version,
    load_index,
)


def test_manifest_says_what_built_the_index(tiny_index: Path, settings: Settings) -> None:
    build = tiny_index / "current"
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["model"]["name"] == "fake-embedder"
    assert manifest["model"]["dim"] == 64
    assert manifest["chunking"]["chunk_size"] == 120
    assert set(manifest["sources"]) == {"kultur.txt", "veg.txt", "sub/helse.txt", "okonomi.txt"}
    assert all(len(s["sha256"]) == 64 for s in manifest["sources"].values())
    assert "faiss-cpu" in manifest["versions"] and "bm25s" in manifest["versions"]
    rows = [json.loads(x) for x in (build / "passages.jsonl").read_text().splitlines()]
    assert len(rows) == manifest["passages"] == np.load(build / "embeddings.npy").shape[0]
    texts = {
        json.loads(x)["path"]: json.loads(x)["text"]
        for x in (build / "sources.jsonl").read_text().splitlines()
    }
    for row in rows:
        assert texts[row["source"]][row["start"] : row["end"]] == row["text"]


def test_rerun_reembeds_only_changed_files_and_drops_deleted(
    tiny_index: Path, settings: Settings, fake_embedder
) -> None:
    src = Path(settings.sources_dir)
    before = load_index(tiny_index, settings, fake_embedder)
    again = build_index(settings, fake_embedder, progress=False)
    assert not again.changed and again.embedded == 0
    assert current_version(tiny_index) == before.version

    (src / "veg.txt").write_text("Nye regler for vegene fra 2025.", encoding="utf-8")
    (src / "sub" / "helse.txt").unlink()
    (src / "ny.txt").write_text("En helt ny fil om bibliotek.", encoding="utf-8")
    fake_embedder.embedded = 0
    report = build_index(settings, fake_embedder, progress=False)
    assert report.changed and report.removed == ["sub/helse.txt"]
    assert fake_embedder.embedded == report.embedded == 2  # one passage per small new file
    after = load_index(tiny_index, settings, fake_embedder)
    assert {p.source for p in after.passages} == {"kultur.txt", "veg.txt", "okonomi.txt", "ny.txt"}
    keys = [(p.source, p.start, p.end) for p in after.passages]
    assert len(keys) == len(set(keys))  # never a duplicated passage
    vectors = np.load(after.path / "embeddings.npy")
    for p, v in zip(after.passages, vectors, strict=True):  # reused vectors stay with their text
        assert np.allclose(v, fake_embedder.embed_passages([p.text])[0], atol=1e-6)


def test_a_moved_file_keeps_its_vectors(
    tiny_index: Path, settings: Settings, fake_embedder
) -> None:
    src = Path(settings.sources_dir)
    os.rename(src / "veg.txt", src / "vei.txt")
    fake_embedder.embedded = 0
    report = build_index(settings, fake_embedder, progress=False)
    assert report.embedded == 0 and report.removed == ["veg.txt"]
    loaded = load_index(tiny_index, settings, fake_embedder)
    assert "vei.txt" in {p.source for p in loaded.passages}


def test_old_builds_are_collected(tiny_index: Path, settings: Settings, fake_embedder) -> None:
    src = Path(settings.sources_dir)
    for i in range(4):
        (src / "veg.txt").write_text(f"Versjon {i} av vegteksten.", encoding="utf-8")
        build_index(settings, fake_embedder, progress=False)
    builds = [b for b in (tiny_index / "builds").iterdir()]
    assert len(builds) == index_mod.KEEP_BUILDS


def test_missing_index_says_what_to_run(tmp_path: Path, settings: Settings, fake_embedder) -> None:
    with pytest.raises(IndexNotFound, match="qa index"):
        load_index(tmp_path / "nowhere", settings, fake_embedder)


def test_other_model_is_refused(tiny_index: Path, settings: Settings, fake_embedder) -> None:
    fake_embedder.dim = 32
    with pytest.raises(IndexMismatch, match=r"dim 64.*--rebuild"):
        load_index(tiny_index, settings, fake_embedder)
    fake_embedder.dim = 64
    fake_embedder.fingerprint = "another-model"
    with pytest.raises(IndexMismatch, match="fake-embedder"):
        load_index(tiny_index, settings, fake_embedder)


@pytest.mark.parametrize("victim", ["dense.faiss", "passages.jsonl", "manifest.json", "lexical"])
def test_damaged_index_is_refused(
    tiny_index: Path, settings: Settings, fake_embedder, victim: str
) -> None:
    target = tiny_index / "current" / victim
    if target.is_dir():
        for f in target.iterdir():
            f.write_bytes(b"garbage")
    else:
        target.write_bytes(b"\x00garbage{")
    with pytest.raises((IndexCorrupt, IndexNotFound), match="qa index"):
        load_index(tiny_index, settings, fake_embedder)


def test_failed_write_keeps_the_previous_index(
    tiny_index: Path, settings: Settings, fake_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = current_version(tiny_index)
    (Path(settings.sources_dir) / "veg.txt").write_text("Endret.", encoding="utf-8")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(index_mod.dense, "save", disk_full)
    with pytest.raises(IndexProblem, match=r"No space left on device.*previous index is unchanged"):
        build_index(settings, fake_embedder, progress=False)
    assert current_version(tiny_index) == before
    assert not [b for b in (tiny_index / "builds").iterdir() if b.name.startswith(".tmp")]
    assert load_index(tiny_index, settings, fake_embedder).version == before


def test_concurrent_builds_are_refused(tiny_index: Path, settings: Settings, fake_embedder) -> None:
    with index_mod._lock(tiny_index), pytest.raises(index_mod.IndexBusy):
        build_index(settings, fake_embedder, progress=False)


def test_swapped_and_identical_files_are_not_taken_for_unchanged(
    tiny_index: Path, settings: Settings, fake_embedder
) -> None:
    src = Path(settings.sources_dir)
    veg, kultur = (src / "veg.txt").read_bytes(), (src / "kultur.txt").read_bytes()
    (src / "veg.txt").write_bytes(kultur)
    (src / "kultur.txt").write_bytes(veg)
    report = build_index(settings, fake_embedder, progress=False)
    assert report.changed and report.embedded == 0  # vectors reused, passages re-homed
    loaded = load_index(tiny_index, settings, fake_embedder)
    for p in loaded.passages:
        assert loaded.texts[p.source][p.start : p.end] == p.text
    assert any("Vegvedlikehold" in p.text for p in loaded.passages if p.source == "kultur.txt")
    (src / "kopi.txt").write_bytes(veg)  # byte-identical copy of a file
    build_index(settings, fake_embedder, progress=False)
    again = build_index(settings, fake_embedder, progress=False)
    assert not again.changed  # identical copies no longer force a rebuild every run
