"""Faults: a damaged or mismatched index, refused by `qa serve` at start and skipped by
a running server's reload.

What must hold every time: nothing damaged is ever served, the operator gets a message
saying what to run, with exit status 1, never a traceback; a running server keeps the
index it had.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa.config import Settings
from qa.index import build_index, dense, load_index
from qa.index.manifest import FORMAT
from qa.retriever import LiveRetriever
from tests.support.fake import FakeEmbedder
from tests.support.procs import no_traceback, qa_env, run_qa


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
    "other format": (lambda b: _edit_manifest(b, format=FORMAT + 1), f"format {FORMAT + 1}"),
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
