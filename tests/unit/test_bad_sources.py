"""Bad source files: each is skipped and named, the rest is indexed, the exit status tells.

In-process cases use the fake embedder (the point there is the reading, not the model);
the CLI cases run the real ``qa index`` with the real default model in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.config import Settings
from qa.index import IndexProblem, build_index, current_version, load_index
from qa.retriever import Retriever
from qa.sources import scan as sources_mod
from qa.sources import scan_sources
from qa.sources import text as text_mod
from tests.support.corpus import SEEDS
from tests.support.fake import FakeEmbedder
from tests.support.procs import no_traceback, run_qa

HUGE = 100 * 1024 * 1024
GOOD = "Kommunene har ansvar for skolene og barnehagene i sitt område."


def add_bad_files(folder: Path, outside: Path) -> dict[str, str]:
    """Every kind of unusable file in ``folder``; returns name -> words its reason contains."""
    (folder / "tom.txt").write_bytes(b"")
    (folder / "blank.txt").write_text("  \n\t\n   ", encoding="utf-8")
    (folder / "bilde.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    # High bytes that are text in no encoding charset-normalizer knows.
    (folder / "rot.txt").write_bytes(bytes(0x80 + (i * 37) % 128 for i in range(2000)))
    (folder / "brutt-bom.txt").write_bytes(b"\xef\xbb\xbfHei \xff\xfe p\xe5 deg")
    with open(folder / "enorm.txt", "wb") as fh:  # sparse: 100 MB on paper, nothing on disk
        fh.truncate(HUGE)
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_text("Hemmelig innhold utenfor kildemappen.", encoding="utf-8")
    (folder / "lenke-ut.txt").symlink_to(outside)
    (folder / "lenke-inn.txt").symlink_to(folder / "god.txt")
    (folder / "mappelenke").symlink_to(outside.parent)
    os.mkfifo(folder / "rør.txt")
    (folder / os.fsdecode(b"navn-\xff.txt")).write_text(GOOD, encoding="utf-8")
    return {
        "tom.txt": "empty",
        "blank.txt": "no text",
        "bilde.png": "binary",
        "rot.txt": "undecodable",
        "brutt-bom.txt": "undecodable",
        "enorm.txt": "too large (104,857,600 bytes; the limit is 20,000,000, QA_MAX_FILE_BYTES)",
        "lenke-ut.txt": "symbolic link",
        "lenke-inn.txt": "symbolic link",
        "mappelenke": "symbolic link",
        "rør.txt": "not a regular file",
        "navn-\\xff.txt": "not valid UTF-8",
    }


@pytest.fixture
def messy(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Two good files (one in a subfolder), a hidden one, and every bad kind."""
    folder = tmp_path / "kilder"
    (folder / "under").mkdir(parents=True)
    (folder / "god.txt").write_text(GOOD, encoding="utf-8")
    (folder / "under" / "latin1.txt").write_bytes("Søknadsfrist for støtte.".encode("latin-1"))
    (folder / ".skjult.txt").write_text("ignored, not named", encoding="utf-8")
    expected = add_bad_files(folder, tmp_path / "utenfor" / "hemmelig.txt")
    return folder, expected


def messy_settings(tmp_path: Path, folder: Path) -> Settings:
    return Settings(sources_dir=folder, index_dir=tmp_path / "index", _env_file=None)


def test_every_bad_file_is_skipped_with_its_reason(messy: tuple[Path, dict[str, str]]) -> None:
    folder, expected = messy
    docs, skipped = scan_sources(folder)
    assert sorted(d.path for d in docs) == ["god.txt", "under/latin1.txt"]
    reasons = {s.path: s.reason for s in skipped}
    assert set(reasons) == set(expected)  # the hidden file is left out, not reported
    for name, words in expected.items():
        assert words in reasons[name], (name, reasons[name])


def test_build_indexes_the_rest_and_records_the_skipped(
    tmp_path: Path, messy: tuple[Path, dict[str, str]]
) -> None:
    folder, expected = messy
    settings = messy_settings(tmp_path, folder)
    report = build_index(settings, FakeEmbedder(), progress=False)
    assert report.sources == 2 and {s.path for s in report.skipped} == set(expected)
    manifest = json.loads((tmp_path / "index" / "current" / "manifest.json").read_text("utf-8"))
    assert {s["path"] for s in manifest["skipped"]} == set(expected)
    loaded = load_index(settings.index_dir, settings, FakeEmbedder())
    assert "Hemmelig" not in json.dumps(loaded.texts, ensure_ascii=False)
    hits = Retriever(loaded, FakeEmbedder(), settings).search("skolene og barnehagene").hits
    assert hits and hits[0].passage.source == "god.txt"


def _walk_with(action):  # type: ignore[no-untyped-def]
    """A ``_walk`` that runs ``action(path)`` right after listing a file, before reading it."""
    real = sources_mod._walk

    def walk(root: Path, errors: list[OSError]) -> Iterator[Path]:
        for path in real(root, errors):
            action(path)
            yield path

    return walk


def test_file_vanishing_after_the_listing(
    tmp_path: Path, messy: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = messy
    victim = folder / "under" / "latin1.txt"
    monkeypatch.setattr(sources_mod, "_walk", _walk_with(lambda p: p == victim and p.unlink()))
    report = build_index(messy_settings(tmp_path, folder), FakeEmbedder(), progress=False)
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons["under/latin1.txt"] == "file vanished while indexing"
    assert report.sources == 1


def test_file_swapped_for_a_link_after_the_listing_is_not_read(
    tmp_path: Path, messy: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check and the read use one file descriptor: a swap in between is refused."""
    folder, _ = messy
    secret = tmp_path / "utenfor" / "hemmelig.txt"
    victim = folder / "god.txt"

    real_lstat = os.lstat
    swapped: list[Path] = []

    def late_swap_lstat(path, *a, **kw):  # type: ignore[no-untyped-def]
        result = real_lstat(path, *a, **kw)  # the check sees the regular file...
        if Path(path) == victim and not swapped:
            swapped.append(victim)
            victim.unlink()
            os.symlink(secret, victim)  # ...and it is a link to a secret before open()
        return result

    monkeypatch.setattr(sources_mod.os, "lstat", late_swap_lstat)
    docs, skipped = scan_sources(folder)
    reasons = {s.path: s.reason for s in skipped}
    assert "symbolic link" in reasons["god.txt"]
    assert all("Hemmelig" not in d.text for d in docs)


def test_unreadable_folder_is_named(
    tmp_path: Path, messy: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Root reads everything, so the permission error is simulated where os.walk lists.)"""
    folder, _ = messy
    real_scandir = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if Path(path) == folder / "under":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    docs, skipped = scan_sources(folder)
    assert [d.path for d in docs] == ["god.txt"]
    assert {s.path: s.reason for s in skipped}["under"] == "folder not readable (Permission denied)"


def test_a_library_error_on_one_file_skips_only_that_file(
    tmp_path: Path, messy: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = messy
    real = text_mod.decode

    def decode(data: bytes) -> tuple[str, str]:
        if data.startswith("Søknadsfrist".encode("latin-1")):
            raise MemoryError("charset detection blew up")
        return real(data)

    monkeypatch.setattr(text_mod, "decode", decode)
    docs, skipped = scan_sources(folder)
    assert [d.path for d in docs] == ["god.txt"]
    assert "MemoryError" in {s.path: s.reason for s in skipped}["under/latin1.txt"]


def test_nothing_readable_keeps_the_previous_index(
    tiny_index: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    """An emptied folder (a mount gone) must not replace a working index with an empty one."""
    before = current_version(tiny_index)
    src = Path(settings.sources_dir)
    shutil.rmtree(src)
    src.mkdir()
    (src / "tom.txt").write_bytes(b"")
    with pytest.raises(IndexProblem, match=r"nothing to index.*1 skipped.*unchanged"):
        build_index(settings, fake_embedder, progress=False)
    assert current_version(tiny_index) == before
    assert load_index(tiny_index, settings, fake_embedder).version == before


def test_empty_folder_builds_nothing(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    s = Settings(sources_dir=tmp_path / "src", index_dir=tmp_path / "index", _env_file=None)
    with pytest.raises(IndexProblem, match="nothing to index"):
        build_index(s, FakeEmbedder(), progress=False)
    assert current_version(tmp_path / "index") is None
    assert not list((tmp_path / "index").glob("builds/*"))


# --- through the real CLI -------------------------------------------------------------


@pytest.mark.slow
def test_qa_index_cli_skips_names_and_exits_3(tmp_path: Path) -> None:
    """The real ``qa index`` (real model): 0 on clean sources, 3 once bad files appear, each
    named on stderr, the good files still indexed; no traceback either time."""
    src = tmp_path / "src"
    shutil.copytree(SEEDS, src)
    index = tmp_path / "index"
    clean = run_qa(["index", "--sources", str(src), "--index", str(index), "--quiet"], tmp_path)
    assert clean.returncode == 0, clean.stderr
    assert "0 skipped" in clean.stderr and "warning" not in clean.stderr

    expected = add_bad_files(src, tmp_path / "utenfor" / "hemmelig.txt")
    messy = run_qa(["index", "--sources", str(src), "--index", str(index), "--quiet"], tmp_path)
    assert messy.returncode == 3, messy.stderr
    no_traceback(messy.stderr)
    for name, words in expected.items():
        line = next(
            x for x in messy.stderr.splitlines() if x.startswith(f"warning: skipped {name}:")
        )
        assert words in line, line
    assert f"{len(expected)} skipped" in messy.stderr
    manifest = json.loads((index / "current" / "manifest.json").read_text("utf-8"))
    assert sorted(manifest["sources"]) == sorted(p.name for p in SEEDS.glob("*.txt"))


@pytest.mark.parametrize("command", ["index", "serve"])
def test_missing_sources_folder_is_named(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "finnes-ikke"
    args = [command, "--sources", str(missing), "--index", str(tmp_path / "index")]
    result = run_qa(args, tmp_path, fake=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert f"sources folder not found: {missing}" in result.stderr
    no_traceback(result.stderr)


def test_cli_nothing_to_index_exits_1(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "tom.txt").write_bytes(b"")
    args = ["index", "--sources", str(tmp_path / "src"), "--index", str(tmp_path / "index")]
    result = run_qa(args, tmp_path, fake=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "nothing to index" in result.stderr and "tom.txt" in result.stderr
    no_traceback(result.stderr)
