"""Load one index build for searching: the reading side of the index folder.

``qa/index.py`` writes builds; this reads the one ``current`` points at, and refuses one
made with another model or that is damaged, saying what to run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from qa.config import Settings
from qa.index import dense
from qa.index.lexical import LexicalIndex
from qa.index.manifest import (
    IndexCorrupt,
    IndexMismatch,
    IndexNotFound,
    check_manifest,
    read_jsonl,
    validate_manifest,
)
from qa.types import Embedder, Passage


@dataclass
class LoadedIndex:
    """One build, in memory."""

    path: Path
    manifest: dict
    passages: list[Passage]
    texts: dict[str, str]
    dense: object  # faiss.Index
    lexical: LexicalIndex

    @property
    def version(self) -> str:
        return str(self.manifest["build_id"])


def current_version(index_dir: Path) -> str | None:
    """The build id ``current`` points at (cheap: one readlink), or None without an index."""
    try:
        return Path(os.readlink(Path(index_dir) / "current")).name
    except OSError:
        return None


def load_index(
    index_dir: Path, settings: Settings, embedder: Embedder, with_search: bool = True
) -> LoadedIndex:
    """Load the current build; refuses one made with another model or that is damaged."""
    index_dir = Path(index_dir)
    build = index_dir / "current"
    if not (build / "manifest.json").is_file():
        raise IndexNotFound(
            f"no index in {index_dir}: build it with `qa index --index {index_dir}`"
        )
    path = build.resolve()
    try:
        manifest = validate_manifest(json.loads((path / "manifest.json").read_text("utf-8")))
        check_manifest(manifest, embedder, index_dir)
        passages = [Passage(**row) for row in read_jsonl(path / "passages.jsonl")]
        texts = {row["path"]: row["text"] for row in read_jsonl(path / "sources.jsonl")}
        if len(passages) != manifest["passages"]:
            raise ValueError("passages.jsonl does not match the manifest")
        faiss_index = dense.load(path / "dense.faiss") if with_search else None
        lexical = LexicalIndex.load(path / "lexical", len(passages)) if with_search else None
        if with_search and faiss_index.ntotal != len(passages):
            raise ValueError("dense.faiss does not match passages.jsonl")
        if with_search and faiss_index.d != embedder.dim:
            raise ValueError(f"dense.faiss has dimension {faiss_index.d}, not {embedder.dim}")
    except IndexMismatch:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
        raise IndexCorrupt(
            f"the index in {index_dir} is damaged ({type(exc).__name__}: {exc}); "
            f"rebuild it with `qa index --index {index_dir} --rebuild`"
        ) from exc
    return LoadedIndex(path, manifest, passages, texts, faiss_index, lexical)  # type: ignore[arg-type]
