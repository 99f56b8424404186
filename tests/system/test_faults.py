"""Faults: a killed build, a damaged or mismatched index, a full disk, load during a re-index,
and the security settings checked on a real server.

What must hold every time: the index that was served before is still served (nothing is
lost, nothing half-written is ever loaded), and the operator gets a message saying what to
run, with exit status 1, never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from qa.config import Settings
from qa.index import IndexProblem, build_index, current_version, dense, load_index
from qa.index import build as index_mod
from qa.retriever import Retriever
from tests.support.corpus import ROOT, SEEDS, SHARED, write_tiny_sources
from tests.support.fake import FakeEmbedder
from tests.support.procs import no_traceback, qa_command, qa_env, run_qa, serving

NORQUAD = SHARED / "norquad-validation" / "sources"


def index_args(src: Path, index: Path, *more: str) -> list[str]:
    return ["index", "--sources", str(src), "--index", str(index), *more]


def builds(index: Path) -> list[str]:
    return sorted(p.name for p in (index / "builds").iterdir())


# --- killed while building --------------------------------------------------------------


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
    with index_mod._lock(index):  # the dead process's lock went with it
        pass
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
import qa.index
real = qa.index.LexicalIndex.build
def build_then_die(texts):  # passages, sources, vectors and FAISS are on disk by now
    real(texts)
    os.kill(os.getpid(), signal.SIGKILL)
qa.index.LexicalIndex.build = build_then_die
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
    assert killed.returncode == -signal.SIGKILL
    assert current_version(tiny_index) == before
    leftovers = [b for b in builds(tiny_index) if b.startswith(".tmp-")]
    assert len(leftovers) == 1
    assert not (tiny_index / "builds" / leftovers[0] / "manifest.json").exists()
    assert load_index(tiny_index, settings, fake_embedder).version == before

    again = run_qa(index_args(src, tiny_index), tmp_path, fake=True, env=env)
    assert again.returncode == 0, again.stderr
    assert current_version(tiny_index) != before
    assert not [b for b in builds(tiny_index) if b.startswith(".tmp-")]


# --- damaged or mismatched index refused by `qa serve` ----------------------------------


def _garbage(path: Path) -> None:
    if path.is_dir():
        for f in path.iterdir():
            f.write_bytes(b"\x00garbage")
    else:
        path.write_bytes(b"\x00garbage{")


def _edit_manifest(build: Path, **changes: Any) -> None:
    manifest = json.loads((build / "manifest.json").read_text("utf-8"))
    for key, value in changes.items():
        if key.startswith("model_"):
            manifest["model"][key.removeprefix("model_")] = value
        else:
            manifest[key] = value
    (build / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def _other_dim_faiss(build: Path) -> None:
    n = len((build / "passages.jsonl").read_text("utf-8").splitlines())
    vectors = np.random.default_rng(0).standard_normal((n, 32)).astype(np.float32)
    dense.save(dense.build(vectors, "flat"), build / "dense.faiss")


DAMAGE = {
    "dense.faiss garbage": (lambda b: _garbage(b / "dense.faiss"), "damaged"),
    "dense.faiss truncated": (
        lambda b: (b / "dense.faiss").write_bytes((b / "dense.faiss").read_bytes()[:200]),
        "damaged",
    ),
    "passages.jsonl garbage": (lambda b: _garbage(b / "passages.jsonl"), "damaged"),
    "passages.jsonl a line short": (
        lambda b: (b / "passages.jsonl").write_text(
            "".join((b / "passages.jsonl").read_text("utf-8").splitlines(True)[:-1]), "utf-8"
        ),
        "damaged",
    ),
    "sources.jsonl garbage": (lambda b: _garbage(b / "sources.jsonl"), "damaged"),
    "lexical garbage": (lambda b: _garbage(b / "lexical"), "damaged"),
    "manifest.json garbage": (lambda b: _garbage(b / "manifest.json"), "damaged"),
    "manifest.json a list": (lambda b: (b / "manifest.json").write_text("[]"), "damaged"),
    "manifest.json sources wrong": (lambda b: _edit_manifest(b, sources=[1]), "damaged"),
    "manifest.json removed": (lambda b: (b / "manifest.json").unlink(), "no index"),
    "other model": (
        lambda b: _edit_manifest(b, model_name="intfloat/e5-large", model_fingerprint="x"),
        "was built with model intfloat/e5-large",
    ),
    "other dimension": (lambda b: _edit_manifest(b, model_dim=1024), "(dim 1024)"),
    "dense.faiss of another dimension": (_other_dim_faiss, "dimension 32, not 64"),
    "other format": (lambda b: _edit_manifest(b, format=2), "format 2"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_qa_serve_refuses_a_bad_index_at_start(
    tiny_index: Path, settings: Settings, tmp_path: Path, damage: str
) -> None:
    """The real `qa serve` (fake model): exit 1 before listening, a message saying what to
    run, no traceback."""
    harm, words = DAMAGE[damage]
    harm((tiny_index / "current").resolve())
    args = ["serve", "--index", str(tiny_index), "--sources", str(settings.sources_dir)]
    args += ["--host", "127.0.0.1", "--port", "9"]  # never reached: it must exit first
    env = qa_env(QA_CHUNK_SIZE="120", QA_CHUNK_OVERLAP="30")
    result = run_qa(args, tmp_path, fake=True, env=env, timeout=120)
    assert result.returncode == 1, result.stderr
    assert words in result.stderr
    assert f"qa index --index {tiny_index}" in result.stderr
    no_traceback(result.stderr)
    assert "serving" not in result.stderr


@pytest.mark.slow
def test_real_model_refuses_an_index_of_another_model(
    tiny_index: Path, settings: Settings, tmp_path: Path
) -> None:
    """The index was built with the fake model; the real `qa serve` (real model) refuses it
    and says both model names and how to fix it."""
    args = ["serve", "--index", str(tiny_index), "--sources", str(settings.sources_dir)]
    result = run_qa([*args, "--port", "9"], tmp_path, timeout=300)
    assert result.returncode == 1, result.stderr
    assert "built with model fake-embedder (dim 64)" in result.stderr
    assert "multilingual-e5-small" in result.stderr and "--rebuild" in result.stderr
    no_traceback(result.stderr)


def test_damaged_embeddings_are_re_embedded_not_a_crash(
    tiny_index: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    """embeddings.npy is only read to reuse vectors: if it is damaged, everything is
    embedded again and the new build is whole."""
    (tiny_index / "current" / "embeddings.npy").write_bytes(b"garbage")
    (Path(settings.sources_dir) / "ny.txt").write_text(
        "Nytt om havner og kaianlegg i fylket.", encoding="utf-8"
    )
    report = build_index(settings, fake_embedder, progress=False)
    assert report.reused == 0 and report.embedded == report.passages
    loaded = load_index(tiny_index, settings, fake_embedder)
    assert np.load(loaded.path / "embeddings.npy").shape == (report.passages, 64)


def test_a_bad_new_build_while_serving_keeps_the_old_one(
    tiny_index: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    """A damaged build that `current` is pointed at (by hand, a bad copy) is not loaded;
    the previous one is served on and the error is kept for the operator."""
    from qa.retriever import LiveRetriever

    live = LiveRetriever(settings, fake_embedder)
    live.start()
    try:
        old = live.get().version
        (Path(settings.sources_dir) / "ny.txt").write_text(
            "Nytt om ferjer og ferjesamband i fylket.", encoding="utf-8"
        )
        build_index(settings, fake_embedder, progress=False)
        _garbage((tiny_index / "current").resolve() / "dense.faiss")
        assert not live.reload_if_changed()
        assert live.get().version == old and "damaged" in (live.last_error or "")
        assert live.get().search("ferjer").hits
    finally:
        live.stop()


# --- full disk ---------------------------------------------------------------------------


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


def _stage_spy(monkeypatch: pytest.MonkeyPatch, fs: Path | None = None) -> list[str]:
    """Record which writer of the build ran last (so the test knows where the disk filled)
    and, with ``fs``, the free bytes when each started (in ``stages.free``)."""
    stages: Any = type("Stages", (list,), {})()
    stages.free = []

    def spy(name: str, real):  # type: ignore[no-untyped-def]
        def wrapped(*a: Any, **kw: Any) -> Any:
            inside_lexical = name == "embeddings" and stages and stages[-1] == "lexical"
            if not inside_lexical:  # bm25s calls np.save itself
                stages.append(name)
                if fs is not None:
                    stages.free.append(free_bytes(fs))
            return real(*a, **kw)

        return wrapped

    monkeypatch.setattr(index_mod, "write_jsonl", spy("jsonl", index_mod.write_jsonl))
    monkeypatch.setattr(index_mod, "write_json", spy("manifest", index_mod.write_json))
    monkeypatch.setattr(index_mod.np, "save", spy("embeddings", np.save))
    monkeypatch.setattr(index_mod.dense, "save", spy("faiss", dense.save))
    monkeypatch.setattr(index_mod.os, "symlink", spy("swap", os.symlink))
    real_lexical_save = index_mod.LexicalIndex.save
    monkeypatch.setattr(index_mod.LexicalIndex, "save", spy("lexical", real_lexical_save))
    return stages


def _assert_unchanged(index: Path, settings: Settings, before: str) -> None:
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
            with pytest.raises(IndexProblem, match="the previous index is unchanged") as exc:
                build_index(settings, embedder, progress=False)
            assert "No space left on device" in str(exc.value) or "write" in str(exc.value)
            failed_at.append(stages[-1])
            _assert_unchanged(fs / "index", settings, before)
            filler.unlink()
        assert failed_at == [stage for _, stage in plan], (failed_at, plan)
        assert {"jsonl", "embeddings", "faiss", "lexical", "manifest"} <= set(failed_at)
        report = build_index(settings, embedder, progress=False)  # room again
        assert report.changed and current_version(fs / "index") != before
        hits = Retriever.load(fs / "index", settings, embedder).search("nytt bibliotek").hits
        assert any(h.passage.source == "stor.txt" for h in hits)


PAGE = 4096


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
    tiny_index: Path, settings: Settings, fake_embedder: FakeEmbedder, monkeypatch
) -> None:
    before = current_version(tiny_index)
    (Path(settings.sources_dir) / "ny.txt").write_text(
        "Nytt om ferjer og ferjesamband i fylket.", encoding="utf-8"
    )

    def no_space(*a: Any, **kw: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(index_mod.os, "replace", no_space)
    with pytest.raises(IndexProblem, match="could not switch"):
        build_index(settings, fake_embedder, progress=False)
    monkeypatch.undo()
    assert current_version(tiny_index) == before
    assert not list(tiny_index.glob(".current-*"))


# --- load during a re-index ---------------------------------------------------------------


def _loadtest() -> Any:
    spec = importlib.util.spec_from_file_location("loadtest", ROOT / "scripts" / "loadtest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["loadtest"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_load_with_a_reindex_has_no_errors(tmp_path: Path) -> None:
    """scripts/loadtest.py, short: 8 clients for 8 s against the real `qa serve` (real
    model), `qa index` adding a file meanwhile. No request fails across the swap, and the
    new passage is served within seconds of the swap."""
    lt = _loadtest()
    cfg = lt.LoadConfig(
        clients=8,
        duration_s=8,
        reindex=True,
        reindex_at_s=0,
        max_wait_s=240,
        workdir=tmp_path / "work",
        out=tmp_path / "load.json",
    )
    report = lt.run(cfg)
    print(lt.summary(report))
    assert report["errors"] == 0, report["error_samples"]
    assert report["server_tracebacks"] == 0
    r = report["reindex"]
    assert r["qa_index_exit"] == 0, r["qa_index_output_tail"]
    assert not r["probe_errors"], r["probe_errors"]
    assert r["served_after_swap_s"] is not None and r["served_after_swap_s"] < 15, r
    assert len(report["index_versions_served"]) == 2  # before and after the swap
    assert json.loads((tmp_path / "load.json").read_text("utf-8"))["errors"] == 0


# --- security settings on a real server ---------------------------------------------------

KEY = "s3cret-nøkkel"
ALLOWED = "https://intranett.kommune.no"


def raw_get(url: str, target: str, headers: str = "") -> tuple[int, str]:
    """A GET with the target sent byte for byte (httpx would normalise `..` away)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        request = f"GET {target} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
        s.sendall(request.encode("latin-1"))  # header bytes as given (a UTF-8 key included)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode("utf-8", "replace")


def assert_clean_error(body: str, *secrets: str) -> None:
    """An error body: the JSON shape, and nothing internal in it."""
    assert '"error"' in body, body
    for leak in ("Traceback", 'File "', "site-packages", os.getcwd(), "/tmp", *secrets):
        assert leak not in body, (leak, body)


def _calls(openapi: dict) -> list[tuple[str, str]]:
    """(method, url) for every operation the API documents, with sample parameters."""
    out = []
    for path, ops in openapi["paths"].items():
        for method in ops:
            url = path.replace("{path}", "veg.txt")
            if url == "/search" and method == "get":
                url += "?q=veg"
            out.append((method.upper(), url))
    return out


@pytest.mark.slow
def test_real_server_api_key_cors_paths_and_headers(
    tiny_index: Path, settings: Settings, tmp_path: Path
) -> None:
    """`qa serve` (fake model) with QA_API_KEY and QA_CORS_ORIGINS set, over real HTTP."""
    secret = tmp_path / "hemmelig.txt"
    secret.write_text("TOPPHEMMELIG passord", encoding="utf-8")
    src = Path(settings.sources_dir)
    (src / "veg.txt").unlink()
    (src / "veg.txt").symlink_to(secret)  # swapped for a link to a secret after indexing
    (src / "lenke.txt").symlink_to(secret)
    env = qa_env(**{"QA_API_KEY": KEY, "QA_CORS_ORIGINS": ALLOWED, "QA_RATE_LIMIT": "off"},
                 QA_CHUNK_SIZE="120", QA_CHUNK_OVERLAP="30")  # fmt: skip
    with serving(tiny_index, src, tmp_path, fake=True, env=env) as server:
        http = httpx.Client(base_url=server.url, timeout=30)
        key = {"X-API-Key": KEY.encode()}
        calls = _calls(http.get("/openapi.json").json())
        assert ("POST", "/search") in calls and ("GET", "/sources/veg.txt") in calls
        for method, url in calls:
            body = {"json": {"query": "veg"}} if method == "POST" else {}
            bare = http.request(method, url, **body)
            if url == "/health":
                assert bare.status_code == 200
                continue
            assert bare.status_code == 401, (method, url, bare.status_code)
            assert_clean_error(bare.text, KEY)
            wrong = http.request(method, url, headers={"X-API-Key": "feil"}, **body)
            assert wrong.status_code == 401
            bearer = {"Authorization": b"Bearer " + KEY.encode()}
            for good in (key, bearer):
                assert http.request(method, url, headers=good, **body).status_code == 200, url
        for page in ("/", "/view", "/widget.js", "/docs", "/openapi.json"):
            assert http.get(page).status_code == 200, page  # static, no indexed data

        # Paths: the snapshot is served, never the file system; traversal is refused.
        r = http.get("/sources/veg.txt", headers=key)
        assert r.text.startswith("Vegvedlikehold") and "TOPPHEMMELIG" not in r.text
        assert http.get("/sources/lenke.txt", headers=key).status_code == 404
        hits = http.get("/search", params={"q": "TOPPHEMMELIG passord"}, headers=key).json()
        assert not any("TOPPHEMMELIG" in h["text"] for h in hits["results"])
        header = f"X-API-Key: {KEY}\r\n".encode().decode("latin-1")
        for target in (
            "/sources/../../etc/passwd",
            "/sources/%2e%2e/%2e%2e/etc/passwd",
            "/sources/..%2f..%2fetc%2fpasswd",
            "/sources/%2Fetc%2Fpasswd",
            "/sources//etc/passwd",
            f"/sources/{secret}",
            "/sources/sub%5c..%5c..%5cetc%5cpasswd",
            "/sources/veg.txt%00.txt",
        ):
            status, body = raw_get(server.url, target, header)
            assert status in (400, 404), (target, status)
            assert "root:" not in body and "TOPPHEMMELIG" not in body
            assert_clean_error(body, KEY)

        # CORS: the allowed origin only; preflights need no key (browsers send none).
        r = http.get("/search?q=veg", headers={**key, "Origin": ALLOWED})
        assert r.headers["access-control-allow-origin"] == ALLOWED
        r = http.get("/search?q=veg", headers={**key, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
        pre = {"Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type,x-api-key"}  # fmt: skip
        assert http.options("/search", headers={**pre, "Origin": ALLOWED}).status_code == 200
        evil = http.options("/search", headers={**pre, "Origin": "https://evil.example"})
        assert evil.status_code == 400 and "access-control-allow-origin" not in evil.headers
        r = http.get("/search?q=veg", headers={"Origin": ALLOWED})  # a 401 the page can read
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ALLOWED

        # Headers on what a browser renders.
        for page in ("/", "/view", "/widget.js", "/health"):
            h = http.get(page).headers
            assert h["x-content-type-options"] == "nosniff", page
            assert "frame-ancestors" in h["content-security-policy"], page
            assert "server" not in h, page
        assert "script-src 'self';" in http.get("/").headers["content-security-policy"]
        http.close()
    no_traceback(server.output())


@pytest.mark.slow
def test_real_server_rate_limit_is_per_client(
    tiny_index: Path, settings: Settings, tmp_path: Path
) -> None:
    """QA_RATE_LIMIT=5/minute over real sockets from different loopback addresses: one
    client is limited, another is not, /health never is, and a client that is not a
    trusted proxy cannot pick a new identity with X-Forwarded-For."""
    env = qa_env(QA_RATE_LIMIT="5/minute", QA_CHUNK_SIZE="120", QA_CHUNK_OVERLAP="30")

    def client(addr: str) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=addr)
        return httpx.Client(base_url=server.url, transport=transport, timeout=30)

    with serving(tiny_index, Path(settings.sources_dir), tmp_path, fake=True, env=env) as server:
        a, b = client("127.0.0.2"), client("127.0.0.3")
        assert [a.get("/search?q=veg").status_code for _ in range(5)] == [200] * 5
        limited = a.get("/search?q=veg")
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
        assert_clean_error(limited.text)
        assert a.get("/sources").status_code == 429  # per client, not per route
        spoofed = a.get("/search?q=veg", headers={"X-Forwarded-For": "198.51.100.9"})
        assert spoofed.status_code == 429
        assert a.get("/health").status_code == 200
        assert b.get("/search?q=veg").status_code == 200
        a.close()
        b.close()
