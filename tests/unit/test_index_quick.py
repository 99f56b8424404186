"""``qa index`` on an unchanged folder, told from file times (``qa.index.quick``): the same
answer as the full test, and every change the full test sees is still seen."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa.config import Settings
from qa.index import build_index, quick, up_to_date
from qa.index.build import up_to_date as full_test
from qa.index.quick import quick_up_to_date
from tests.support.fake import FakeEmbedder


@pytest.fixture
def recorded(
    settings: Settings, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """An index whose build recorded every file's times (the files were just written, so
    the racy margin is set to 0 here; ``test_a_file_changed_during_the_scan_...`` keeps it)."""
    monkeypatch.setattr(quick, "RACY_S", -60.0)
    build_index(settings, fake_embedder, progress=False)
    return Path(settings.index_dir)


def _manifest(index_dir: Path) -> dict:
    return json.loads((index_dir / "current" / "manifest.json").read_text("utf-8"))


def _edit_keeping_times(path: Path, text: str) -> None:
    st = os.stat(path)
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_unchanged_folder_is_told_from_times_alike_the_full_test(
    recorded: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    stat = _manifest(recorded)["stat"]
    assert set(stat["files"]) == set(_manifest(recorded)["sources"])
    fast = quick_up_to_date(settings, fake_embedder.fingerprint)
    slow = full_test(settings, fake_embedder.fingerprint)
    assert fast is not None and slow is not None
    assert dataclasses.replace(fast, seconds=0) == dataclasses.replace(slow, seconds=0)
    assert not fast.changed and fast.embedded == 0 and fast.reused == fast.passages > 0


def test_no_file_is_read_when_times_match(
    recorded: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    for f in Path(settings.sources_dir).rglob("*.txt"):
        f.chmod(0o000)  # unreadable: only lstat can succeed; chmod moves ctime, so re-record
    try:
        manifest = _manifest(recorded)
        manifest["stat"]["files"] = {
            p: quick._lstat(Path(settings.sources_dir) / p) for p in manifest["sources"]
        }
        (recorded / "current" / "manifest.json").write_text(json.dumps(manifest), "utf-8")
        assert quick_up_to_date(settings, fake_embedder.fingerprint) is not None
    finally:
        for f in Path(settings.sources_dir).rglob("*.txt"):
            f.chmod(0o644)


def test_touched_file_is_hashed_and_still_unchanged(
    recorded: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    veg = Path(settings.sources_dir) / "veg.txt"
    os.utime(veg, ns=(0, os.stat(veg).st_mtime_ns + 5_000_000_000))
    report = quick_up_to_date(settings, fake_embedder.fingerprint)
    assert report is not None and not report.changed


@pytest.mark.parametrize(
    "change",
    ["same_size_other_bytes", "same_size_and_mtime", "new_file", "removed", "rules", "settings"],
)
def test_every_change_is_seen(
    recorded: Path, settings: Settings, fake_embedder: FakeEmbedder, change: str
) -> None:
    src = Path(settings.sources_dir)
    veg = src / "veg.txt"
    text = veg.read_text("utf-8")
    if change == "same_size_other_bytes":
        veg.write_text(text[::-1], encoding="utf-8")
    elif change == "same_size_and_mtime":  # ctime still moves (a program cannot set it)
        _edit_keeping_times(veg, text.upper())
        assert os.path.getsize(veg) == len(text.encode())
    elif change == "new_file":
        (src / "ny.txt").write_text("Ny fil om barnehager.", encoding="utf-8")
    elif change == "removed":
        veg.unlink()
    elif change == "rules":
        (src / "access.toml").write_text('[[rule]]\npath = "**"\ngroups = ["alle"]\n', "utf-8")
    else:
        settings = settings.model_copy(update={"max_file_bytes": 10})
    quick_answer = quick_up_to_date(settings, fake_embedder.fingerprint)
    edited = change.startswith("same_size")  # bytes changed: known without the full test
    assert quick_answer == (quick.EDITED if edited else None)
    if change != "settings":  # the public answer agrees: a build is due
        assert up_to_date(settings, fake_embedder.fingerprint) is None
        assert build_index(settings, fake_embedder, progress=False).changed


def test_other_model_or_damaged_build_is_not_up_to_date(
    recorded: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    assert quick_up_to_date(settings, "another-fingerprint") is None
    (recorded / "current" / "dense.faiss").unlink()
    assert quick_up_to_date(settings, fake_embedder.fingerprint) is None


def test_a_file_changed_during_the_scan_is_not_recorded(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    """Files written just now are left out of the record (``RACY_S``), yet the answer holds:
    they are hashed."""
    build_index(settings, fake_embedder, progress=False)
    assert _manifest(Path(settings.index_dir))["stat"]["files"] == {}
    assert quick_up_to_date(settings, fake_embedder.fingerprint) is not None
    veg = Path(settings.sources_dir) / "veg.txt"
    _edit_keeping_times(veg, veg.read_text("utf-8").upper())
    assert quick_up_to_date(settings, fake_embedder.fingerprint) == quick.EDITED


def test_unchanged_check_imports_no_search_library(tmp_path: Path) -> None:
    """What ``qa index`` on an unchanged folder imports: none of the heavy libraries."""
    code = (
        "import sys, qa.cli, qa.index.quick\n"
        "from qa.index import up_to_date, IndexProblem\n"
        "heavy = ['torch', 'faiss', 'bm25s', 'lingua', 'langchain_text_splitters',"
        " 'sentence_transformers', 'onnxruntime', 'fastapi', 'numba', 'scipy']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
