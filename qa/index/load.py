"""Load one index build for searching: the reading side of the index folder.

``qa.index.build`` writes builds; this reads the one ``current`` points at, and refuses one
made with another model or that is damaged, saying what to run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss

from qa.config import Settings
from qa.index import dense
from qa.index.lexical import LexicalIndex
from qa.index.manifest import (
    IndexCorrupt,
    IndexMismatch,
    IndexNotFound,
    ModelIdentity,
    check_manifest,
    validate_manifest,
)
from qa.index.sentences import SentenceTable, load_sentences
from qa.index.store import read_jsonl
from qa.types import Passage


@dataclass
class LoadedIndex:
    """One build, in memory (``dense`` and ``lexical`` are None when loaded without search)."""

    path: Path
    manifest: dict[str, Any]
    passages: list[Passage]
    texts: dict[str, str]
    layout: dict[str, dict[str, Any]]  # path -> {"pages": [...], "headings": [...]} if any
    dense: faiss.Index | None
    lexical: LexicalIndex | None
    sentences: SentenceTable | None = None  # the answer span's sentences

    @property
    def version(self) -> str:
        return str(self.manifest["build_id"])


def load_index(
    index_dir: Path, settings: Settings, model: ModelIdentity, with_search: bool = True
) -> LoadedIndex:
    """Load the current build; refuses one made with another model or that is damaged.

    ``model`` is the configured embedder, or only the identity a manifest names (``BuiltWith``)
    when the vectors are not searched (``with_search=False``).
    """
    index_dir = Path(index_dir)
    build = index_dir / "current"
    if not (build / "manifest.json").is_file():
        raise IndexNotFound(
            f"no index in {index_dir}: build it with `qa index --index {index_dir}`"
        )
    path = build.resolve()
    try:
        manifest = validate_manifest(json.loads((path / "manifest.json").read_text("utf-8")))
        check_manifest(manifest, model, index_dir)
        passages = [Passage(**row) for row in read_jsonl(path / "passages.jsonl")]
        texts, layout = _sources(path / "sources.jsonl")
        if len(passages) != manifest["passages"]:
            raise ValueError("passages.jsonl does not match the manifest")
        table = load_sentences(path, manifest, model.dim, list(manifest["sources"]))
        faiss_index = dense.load(path / "dense.faiss") if with_search else None
        lexical = LexicalIndex.load(path / "lexical", len(passages)) if with_search else None
        if faiss_index is not None and faiss_index.ntotal != len(passages):
            raise ValueError("dense.faiss does not match passages.jsonl")
        if faiss_index is not None and faiss_index.d != model.dim:
            raise ValueError(f"dense.faiss has dimension {faiss_index.d}, not {model.dim}")
    except IndexMismatch:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
        raise IndexCorrupt(
            f"the index in {index_dir} is damaged ({type(exc).__name__}: {exc}); "
            f"rebuild it with `qa index --index {index_dir} --rebuild`"
        ) from exc
    return LoadedIndex(path, manifest, passages, texts, layout, faiss_index, lexical, table)


def _sources(path: Path) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Each source's text, and its page starts and headings where it has them (rows of an
    index written before formats had them have neither)."""
    texts: dict[str, str] = {}
    layout: dict[str, dict[str, Any]] = {}
    for row in read_jsonl(path):
        texts[row["path"]] = row["text"]
        if row.get("pages") or row.get("headings"):
            layout[row["path"]] = {k: row.get(k) or [] for k in ("pages", "headings")}
    return texts, layout
