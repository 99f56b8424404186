"""Faults: a full disk and no inodes left, on a real (small tmpfs) filesystem.

The build runs out of room inside each of its files in turn, then at the swap. What must
hold every time: the build fails with a message naming the cause, the previous index is
still current and whole, no half build is left, and with room again the build goes through.
Mounting needs root; elsewhere these tests skip.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa.config import Settings
from qa.index import IndexProblem, build_index, current_version, dense, load_index
from qa.index.lexical import LexicalIndex
from qa.retriever import Retriever
from tests.support.corpus import write_tiny_sources
from tests.support.fake import FakeEmbedder
from tests.support.procs import builds, index_args, no_traceback, qa_env, run_qa

PAGE = 4096  # bytes of a tmpfs data page

#: The reason the build's message gives when the disk fills inside each writer: the OS
#: error, FAISS's write error (which names it too), or numpy's count of a short write
#: (np.save, also under bm25s), which carries no errno.
FULL_REASON = {
    "jsonl": r"\(No space left on device\); ",
    "manifest": r"\(No space left on device\); ",
    "faiss": r"write error in \S+/dense\.faiss: \d+ != \d+ \(No space left on device\)\); ",
    "embeddings": r"\(\d+ requested and \d+ written\); ",
    "lexical": r"\(\d+ requested and \d+ written\); ",
}


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A small tmpfs at ``where`` (root only); the test is skipped if mounting is refused."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path, leave: int) -> Path:
    """Fill the filesystem of ``folder`` until it is full, then free ``leave`` bytes."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as fh:  # unbuffered: nothing left to fail at close
        for block in (b"\x01" * 65536, b"\x01" * 512):  # big blocks, then the last crumbs
            with contextlib.suppress(OSError):
                while fh.write(block):
                    pass
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave))
    return filler


def use_inodes(folder: Path, leave: int) -> list[Path]:
    """Create empty files until no inode is left, then delete ``leave`` of them."""
    made = []
    with contextlib.suppress(OSError):
        for i in range(1_000_000):
            path = folder / f"inode-{i}"
            path.touch()
            made.append(path)
    for path in made[len(made) - leave :] if leave else []:
        path.unlink()
    return made[: len(made) - leave] if leave else made


def free_bytes(fs: Path) -> int:
    st = os.statvfs(fs)
    return st.f_bavail * st.f_frsize


#: The durable writers of ``qa.index`` and the stage each one is.
WRITERS = {"write_jsonl": "jsonl", "write_json": "manifest"}


class Stages(list[str]):
    """Which writer of the build ran last (so a test knows where the disk filled) and, with
    a filesystem ``fs``, its free bytes as each writer started (``free``)."""

    def __init__(self, fs: Path | None) -> None:
        super().__init__()
        self.fs = fs
        self.free: list[int] = []

    def spy(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*a: Any, **kw: Any) -> Any:
            inside_lexical = name == "embeddings" and self and self[-1] == "lexical"
            if not inside_lexical:  # bm25s calls np.save itself
                self.append(name)
                if self.fs is not None:
                    self.free.append(free_bytes(self.fs))
            return real(*a, **kw)

        return wrapped


def _patch_everywhere(monkeypatch: pytest.MonkeyPatch, name: str, stages: Stages) -> None:
    """Spy on the function ``name`` in every ``qa.index`` module that holds it: the writers
    are imported by name, and which module imports them is the package's own business."""
    mods = [m for n, m in list(sys.modules.items()) if n.split(".")[:2] == ["qa", "index"]]
    found = {id(f): f for m in mods if callable(f := getattr(m, name, None))}
    assert len(found) == 1, f"{name}: {len(found)} functions of that name in qa.index"
    real = next(iter(found.values()))
    wrapper = stages.spy(WRITERS[name], real)
    for m in mods:
        if getattr(m, name, None) is real:
            monkeypatch.setattr(m, name, wrapper)


def _stage_spy(monkeypatch: pytest.MonkeyPatch, fs: Path | None = None) -> Stages:
    """Spy on every writer of the build (see ``Stages``)."""
    stages = Stages(fs)
    for name in WRITERS:
        _patch_everywhere(monkeypatch, name, stages)
    monkeypatch.setattr(np, "save", stages.spy("embeddings", np.save))
    monkeypatch.setattr(dense, "save", stages.spy("faiss", dense.save))
    monkeypatch.setattr(os, "symlink", stages.spy("swap", os.symlink))
    monkeypatch.setattr(LexicalIndex, "save", stages.spy("lexical", LexicalIndex.save))
    return stages


def _assert_unchanged(index: Path, settings: Settings, before: str | None) -> None:
    assert current_version(index) == before
    assert not [b for b in builds(index) if b.startswith(".tmp-")]
    embedder = FakeEmbedder()
    loaded = Retriever(load_index(index, settings, embedder), embedder, settings)
    assert loaded.version == before and loaded.search("kulturskole").hits


def _full_disk_settings(tmp_path: Path, index: Path) -> Settings:
    src = write_tiny_sources(tmp_path / "src")
    return Settings(
        sources_dir=src, index_dir=index, chunk_size=120, chunk_overlap=30, _env_file=None
    )


def _big_source(settings: Settings) -> None:
    words = "Kommunen bygger ny skole og nytt bibliotek i sentrum med midler fra staten. "
    (Path(settings.sources_dir) / "stor.txt").write_text(words * 4000, encoding="utf-8")


def test_disk_full_on_a_real_filesystem_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 16 MB tmpfs filled so the build runs out of room inside each of its files in turn:
    every time the build fails with a message, the previous index is served unchanged and
    no half build is left; with room again the build goes through."""
    with tmpfs(tmp_path / "fs", "size=16m") as fs:
        # A reference build on the same filesystem measures the room each step takes.
        ref = _full_disk_settings(tmp_path / "ref", fs / "ref")
        build_index(ref, FakeEmbedder(), progress=False)
        _big_source(ref)
        spy = _stage_spy(monkeypatch, fs)
        build_index(ref, FakeEmbedder(), progress=False)
        marks = [*spy.free, free_bytes(fs)]  # free bytes at the start of each step, at the end
        shutil.rmtree(fs / "ref")
        plan = [
            (marks[0] - start + (start - end) // 2 // PAGE * PAGE, stage)  # half the step's room
            for stage, start, end in zip(spy, marks[:-1], marks[1:], strict=True)
            if stage != "swap"  # a short symlink takes no data page (see the inode test)
        ]
        monkeypatch.undo()

        settings = _full_disk_settings(tmp_path, fs / "index")
        embedder = FakeEmbedder()
        build_index(settings, embedder, progress=False)
        before = current_version(fs / "index")
        _big_source(settings)  # ~300 kB of text: the new build needs ~3 MB
        stages = _stage_spy(monkeypatch)
        failed_at = []
        for leave, _ in plan:
            filler = fill(fs, leave)
            stages.clear()
            with pytest.raises(IndexProblem, match=r"; the previous index is unchanged$") as exc:
                build_index(settings, embedder, progress=False)
            message, stage = str(exc.value), stages[-1]
            assert message.startswith(f"could not write the index in {fs / 'index'} ("), message
            assert re.search(FULL_REASON[stage], message), (stage, message)
            failed_at.append(stages[-1])
            _assert_unchanged(fs / "index", settings, before)
            filler.unlink()
        assert failed_at == [stage for _, stage in plan], (failed_at, plan)
        assert {"jsonl", "embeddings", "faiss", "lexical", "manifest"} <= set(failed_at)
        report = build_index(settings, embedder, progress=False)  # room again
        assert report.changed and current_version(fs / "index") != before
        hits = Retriever.load(fs / "index", settings, embedder).search("nytt bibliotek").hits
        assert any(h.passage.source == "stor.txt" for h in hits)


def test_out_of_inodes_at_every_step_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No inode left for the 0th, 1st, 2nd... file of the build, up to the `current` link
    of the swap: each time the previous index stays current and whole."""
    with tmpfs(tmp_path / "fs", "size=64m,nr_inodes=400") as fs:
        settings = _full_disk_settings(tmp_path, fs / "index")
        embedder = FakeEmbedder()
        build_index(settings, embedder, progress=False)
        before = current_version(fs / "index")
        (Path(settings.sources_dir) / "ny.txt").write_text(
            "Nytt om havner og kaianlegg i fylket.", encoding="utf-8"
        )
        stages = _stage_spy(monkeypatch)
        (fs / "junk").mkdir()
        failed_at = []
        for leave in range(0, 40):
            made = use_inodes(fs / "junk", leave)
            stages.clear()
            try:
                build_index(settings, embedder, progress=False)
            except IndexProblem as exc:
                assert "No space left on device" in str(exc) and "unchanged" in str(exc)
                failed_at.append(stages[-1] if stages else "mkdir")
                _assert_unchanged(fs / "index", settings, before)
            else:
                break
            finally:
                for path in made:
                    path.unlink()
        else:
            pytest.fail("the build never fit")
        # The half-build folder, each file (embeddings.npy fails at open, before np.save),
        # the manifest, and the new `current` link of the swap.
        steps = {"mkdir", "jsonl", "faiss", "lexical", "manifest", "swap"}
        assert steps <= set(failed_at), failed_at
        assert current_version(fs / "index") != before
        loaded = Retriever.load(fs / "index", settings, embedder)
        assert any(h.passage.source == "ny.txt" for h in loaded.search("havner").hits)


def test_qa_index_on_a_full_disk_says_so(tmp_path: Path) -> None:
    """Through the CLI (fake model): exit 1, the reason, no traceback; index unchanged."""
    with tmpfs(tmp_path / "fs", "size=4m") as fs:
        settings = _full_disk_settings(tmp_path, fs / "index")
        build_index(settings, FakeEmbedder(), progress=False)
        before = current_version(fs / "index")
        _big_source(settings)
        filler = fill(fs, 0)
        env = qa_env(QA_CHUNK_SIZE="120", QA_CHUNK_OVERLAP="30")
        result = run_qa(
            index_args(settings.sources_dir, fs / "index"), tmp_path, fake=True, env=env
        )
        assert result.returncode == 1, result.stderr
        assert "No space left on device" in result.stderr
        assert "the previous index is unchanged" in result.stderr
        no_traceback(result.stderr)
        _assert_unchanged(fs / "index", settings, before)
        filler.unlink()


def test_swap_failure_is_reported_not_raised_raw(
    tiny_index: Path,
    settings: Settings,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The swap cannot rename the new `current` link into place: a message, not an OSError."""
    before = current_version(tiny_index)
    (Path(settings.sources_dir) / "ny.txt").write_text(
        "Nytt om ferjer og ferjesamband i fylket.", encoding="utf-8"
    )

    def no_space(*a: Any, **kw: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(IndexProblem, match="could not switch"):
        build_index(settings, fake_embedder, progress=False)
    monkeypatch.undo()
    assert current_version(tiny_index) == before
    assert not list(tiny_index.glob(".current-*"))
