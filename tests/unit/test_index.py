"""The index folder: incremental rebuilds, atomic swap, refusing a mismatched or broken index."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.index import (
    IndexBusy,
    IndexCorrupt,
    IndexMismatch,
    IndexNotFound,
    IndexProblem,
    build_index,
    current_version,
    dense,
    load_index,
    store,
    up_to_date,
)
from qa.index import manifest as manifest_mod


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
    assert report.embedded == 2  # one passage per small new file
    assert fake_embedder.embedded == report.embedded + report.sentences  # + their sentences
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
    assert len(builds) == store.KEEP_BUILDS


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


def test_an_index_of_another_format_is_refused_and_rebuilt(
    tiny_index: Path, settings: Settings, fake_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writer and reader share one FORMAT: bumping it makes every older index refused (so
    the check cannot be a literal), and the next build writes the new format."""
    old = manifest_mod.FORMAT
    manifest = json.loads((tiny_index / "current" / "manifest.json").read_text())
    assert manifest["format"] == old
    monkeypatch.setattr(manifest_mod, "FORMAT", old + 1)
    with pytest.raises(IndexMismatch, match=rf"format {old}, .*reads format {old + 1}.*--rebuild"):
        load_index(tiny_index, settings, fake_embedder)
    assert up_to_date(settings, fake_embedder.fingerprint) is None
    report = build_index(settings, fake_embedder, progress=False)
    assert report.changed and report.reused == 0 and report.embedded == report.passages
    assert load_index(tiny_index, settings, fake_embedder).manifest["format"] == old + 1


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

    monkeypatch.setattr(dense, "save", disk_full)
    with pytest.raises(IndexProblem, match=r"No space left on device.*previous index is unchanged"):
        build_index(settings, fake_embedder, progress=False)
    assert current_version(tiny_index) == before
    assert not [b for b in (tiny_index / "builds").iterdir() if b.name.startswith(".tmp")]
    assert load_index(tiny_index, settings, fake_embedder).version == before


def test_concurrent_builds_are_refused(tiny_index: Path, settings: Settings, fake_embedder) -> None:
    with store.lock(tiny_index), pytest.raises(IndexBusy):
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


def test_up_to_date_reports_an_unchanged_index(
    tiny_index: Path, settings: Settings, fake_embedder
) -> None:
    src = Path(settings.sources_dir)
    (src / "tom.txt").write_bytes(b"")  # skipped: named in the report, as a build names it
    build = build_index(settings, fake_embedder, progress=False)
    os.utime(src / "veg.txt", (1, 1))  # a touched file with the same bytes is unchanged
    report = up_to_date(settings, fake_embedder.fingerprint)
    assert report is not None and not report.changed
    manifest = json.loads((tiny_index / "current" / "manifest.json").read_text())
    assert (report.sources, report.passages) == (4, manifest["passages"])
    assert report.passages > 4  # small chunks: several passages per file
    assert (report.embedded, report.reused, report.removed) == (0, report.passages, [])
    assert report.build_id == current_version(tiny_index) == build.build_id
    assert [s.path for s in report.skipped] == [s.path for s in build.skipped] == ["tom.txt"]
    again = build_index(settings, fake_embedder, progress=False)  # the full test agrees
    assert not again.changed and (again.sources, again.passages) == (4, report.passages)


def _edit(settings: Settings, index: Path) -> None:
    (Path(settings.sources_dir) / "veg.txt").write_text("Nye regler for vegene.", "utf-8")


def _add(settings: Settings, index: Path) -> None:
    (Path(settings.sources_dir) / "ny.txt").write_text("En ny fil om bibliotek.", "utf-8")


def _remove(settings: Settings, index: Path) -> None:
    (Path(settings.sources_dir) / "sub" / "helse.txt").unlink()


def _rename(settings: Settings, index: Path) -> None:
    src = Path(settings.sources_dir)
    os.rename(src / "veg.txt", src / "vei.txt")


def _swap_contents(settings: Settings, index: Path) -> None:
    src = Path(settings.sources_dir)
    veg, kultur = (src / "veg.txt").read_bytes(), (src / "kultur.txt").read_bytes()
    (src / "veg.txt").write_bytes(kultur)
    (src / "kultur.txt").write_bytes(veg)


def _truncate_mid_line(settings: Settings, index: Path) -> None:
    path = index / "current" / "passages.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _drop_last_line(settings: Settings, index: Path) -> None:
    path = index / "current" / "passages.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))


def _damage_manifest(settings: Settings, index: Path) -> None:
    (index / "current" / "manifest.json").write_bytes(b"\x00garbage{")


def _damage_embeddings(settings: Settings, index: Path) -> None:
    (index / "current" / "embeddings.npy").write_bytes(b"garbage")


def _no_index(settings: Settings, index: Path) -> None:
    os.unlink(index / "current")


@pytest.mark.parametrize(
    "change",
    [
        _edit,
        _add,
        _remove,
        _rename,
        _swap_contents,
        _truncate_mid_line,
        _drop_last_line,
        _damage_manifest,
        _damage_embeddings,
        _no_index,
    ],
)
def test_up_to_date_is_none_when_a_build_would_change_something(
    tiny_index: Path, settings: Settings, fake_embedder, change
) -> None:
    assert up_to_date(settings, fake_embedder.fingerprint) is not None
    change(settings, tiny_index)
    assert up_to_date(settings, fake_embedder.fingerprint) is None
    assert build_index(settings, fake_embedder, progress=False).changed  # agrees


def test_up_to_date_is_none_for_another_model_or_chunking(
    tiny_index: Path, settings: Settings, fake_embedder
) -> None:
    assert up_to_date(settings, fake_embedder.fingerprint) is not None
    assert up_to_date(settings, "another-model@1234") is None
    assert up_to_date(settings.model_copy(update={"chunk_size": 200}), "fake-embedder-v1") is None
    assert up_to_date(settings.model_copy(update={"chunk_overlap": 10}), "fake-embedder-v1") is None
    other = build_index(settings.model_copy(update={"chunk_size": 200}), fake_embedder, False)
    assert other.changed  # the full test agrees: re-chunked


def test_up_to_date_without_an_index(tmp_path: Path, settings: Settings, fake_embedder) -> None:
    assert up_to_date(settings, fake_embedder.fingerprint) is None
    assert not Path(settings.index_dir).exists()  # looking created nothing
    nowhere = settings.model_copy(update={"index_dir": tmp_path / "missing" / "index"})
    assert up_to_date(nowhere, fake_embedder.fingerprint) is None


def test_bm25s_logger_follows_the_root_level() -> None:
    """bm25s sets its logger to DEBUG when imported; qa.index.lexical undoes that."""
    code = (
        "import logging, sys\n"
        "logging.getLogger().setLevel(logging.WARNING)\n"
        "import qa.index.lexical\n"
        "log = logging.getLogger('bm25s')\n"
        "first = log.getEffectiveLevel()\n"
        "logging.getLogger().setLevel(logging.ERROR)\n"
        "print(first, log.getEffectiveLevel(), log.isEnabledFor(logging.DEBUG))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out == [str(logging.WARNING), str(logging.ERROR), "False"]
    import bm25s  # noqa: F401  (imported here too, after qa.index.lexical in this process)

    import qa.index.lexical  # noqa: F401

    assert logging.getLogger("bm25s").getEffectiveLevel() == logging.getLogger().level
