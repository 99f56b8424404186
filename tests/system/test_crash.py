"""Faults: `qa index` killed while it builds.

What must hold every time: the index that was served before is still current and
loadable, the lock died with the process, and nothing half-written is ever loaded.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from qa.config import Settings
from qa.index import current_version, load_index
from tests.support.corpus import SEEDS, SHARED
from tests.support.fake import FakeEmbedder
from tests.support.procs import builds, index_args, qa_command, qa_env, run_qa, serving

NORQUAD = SHARED / "norquad-validation" / "sources"


class Stderr:
    """Collects a process's stderr in a thread (tqdm writes \\r, not lines)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.data = b""
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        while chunk := process.stderr.read1(4096):  # type: ignore[attr-defined]
            self.data += chunk

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def wait_for(self, marker: str, process: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.text():
            assert process.poll() is None, f"exited before {marker!r}:\n{self.text()}"
            assert time.monotonic() < deadline, f"no {marker!r} in {timeout} s:\n{self.text()}"
            time.sleep(0.05)


def assert_lock_free(index: Path) -> None:
    """The index lock (an flock on ``.lock``) can be taken: a dead writer holds nothing."""
    with open(index / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError if still held
        fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.mark.slow
@pytest.mark.skipif(not NORQUAD.is_dir(), reason=f"needs {NORQUAD}")
def test_sigkill_while_embedding_keeps_the_index_servable(tmp_path: Path) -> None:
    """Real model: `qa index` on 60 more files is SIGKILLed mid-embedding; the previous
    index stays current and loadable, the lock is free, and a `qa serve` started after
    the kill answers from it."""
    src, index = tmp_path / "src", tmp_path / "index"
    shutil.copytree(SEEDS, src)
    first = run_qa(index_args(src, index, "--quiet"), tmp_path)
    assert first.returncode == 0, first.stderr
    before, before_builds = current_version(index), builds(index)
    for f in sorted(NORQUAD.glob("*.txt"))[:60]:
        shutil.copy(f, src / f.name)

    process = subprocess.Popen(
        qa_command(index_args(src, index), fake=False),
        cwd=tmp_path,
        env=qa_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    err = Stderr(process)
    try:
        err.wait_for("embedding:", process, timeout=240)
        time.sleep(1.5)  # well into the embedding: the first batch is done by now
        assert process.poll() is None, f"finished before the kill:\n{err.text()}"
        assert "index updated" not in err.text()
        process.send_signal(signal.SIGKILL)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    assert current_version(index) == before
    assert [b for b in builds(index) if not b.startswith(".tmp-")] == before_builds
    assert_lock_free(index)
    manifest = json.loads((index / "current" / "manifest.json").read_text("utf-8"))
    assert sorted(manifest["sources"]) == sorted(p.name for p in SEEDS.glob("*.txt"))

    with serving(index, src, tmp_path, env=qa_env(QA_BUILD_IF_MISSING="false")) as server:
        health = httpx.get(f"{server.url}/health", timeout=10).json()
        assert health["index_version"] == before
        r = httpx.get(f"{server.url}/search", params={"q": "Kulturprosjektet Oppspill"}, timeout=60)
        assert r.status_code == 200 and r.json()["results"], r.text
        assert r.json()["index_version"] == before


_KILL_WHILE_WRITING = """
import os, signal
from qa.index.lexical import LexicalIndex
real = LexicalIndex.save
def save_then_die(self, folder):  # passages, sources, vectors and FAISS are on disk by now
    real(self, folder)
    os.kill(os.getpid(), signal.SIGKILL)
LexicalIndex.save = save_then_die
"""


def test_sigkill_while_writing_leaves_only_a_tmp_folder(
    tiny_index: Path, settings: Settings, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    """Killed between writing the files and the swap: the half build is a `.tmp-` folder
    nobody loads, and the next build removes it."""
    before = current_version(tiny_index)
    src = Path(settings.sources_dir)
    (src / "ny.txt").write_text("Ny fil om bibliotekene i fylket.", encoding="utf-8")
    env = qa_env(QA_CHUNK_SIZE="120", QA_CHUNK_OVERLAP="30")
    killed = run_qa(index_args(src, tiny_index), tmp_path, prelude=_KILL_WHILE_WRITING, env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert current_version(tiny_index) == before
    leftovers = [b for b in builds(tiny_index) if b.startswith(".tmp-")]
    assert len(leftovers) == 1
    assert not (tiny_index / "builds" / leftovers[0] / "manifest.json").exists()
    assert_lock_free(tiny_index)
    assert load_index(tiny_index, settings, fake_embedder).version == before

    again = run_qa(index_args(src, tiny_index), tmp_path, fake=True, env=env)
    assert again.returncode == 0, again.stderr
    assert current_version(tiny_index) != before
    assert not [b for b in builds(tiny_index) if b.startswith(".tmp-")]
