"""What a new build takes from the current one: the passages and vectors of unchanged files.

A file is unchanged when its bytes are (sha256), wherever it now lies; its passages are
re-homed under its current name. Nothing is reused across another model or chunking.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.config import Settings
from qa.index.load import load_index
from qa.index.manifest import IndexProblem, ModelIdentity, chunking
from qa.index.store import current_version
from qa.sources import SourceDoc
from qa.types import Passage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reusable:
    """What one file of the current build lends a new build when its bytes are unchanged."""

    path: str
    passages: list[Passage]
    vectors: np.ndarray
    language: str


@dataclass(frozen=True)
class Previous:
    """The current build, as far as a new one can use it (empty: nothing to reuse)."""

    build_id: str | None = None
    reusable: dict[str, Reusable] = field(default_factory=dict)  # by sha256
    shas: dict[str, str] = field(default_factory=dict)  # path -> sha256 of every file

    def unchanged(self, docs: list[SourceDoc]) -> bool:
        """The one "nothing changed" test, for ``up_to_date`` and ``build_index`` alike: an
        index that loads with the same model and chunking (else this is empty), and the same
        files with the same bytes. Files that swapped contents, or byte-identical copies,
        are told apart by path, not by hash."""
        return (
            self.build_id is not None
            and bool(docs)
            and {d.path: d.sha256 for d in docs} == self.shas
        )

    def passages_of(self, docs: list[SourceDoc]) -> int:
        """How many passages ``docs`` have in this build (all of them must be reusable)."""
        return sum(len(self.reusable[d.sha256].passages) for d in docs)


def previous_build(index_dir: Path, model: ModelIdentity, settings: Settings) -> Previous:
    """What the current build offers, when it loads and its model and chunking match."""
    build_id = current_version(index_dir)
    try:
        old = load_index(index_dir, settings, model, with_search=False)
    except IndexProblem:
        return Previous()
    if build_id is None or old.manifest.get("chunking") != chunking(settings):
        return Previous()
    try:
        vectors = np.load(old.path / "embeddings.npy", mmap_mode="r")
        if vectors.shape != (len(old.passages), model.dim):
            raise ValueError(f"shape {vectors.shape}")
    except (OSError, ValueError) as exc:
        log.warning("embeddings.npy of %s is unusable (%s): re-embedding all", old.path, exc)
        return Previous()
    rows: dict[str, list[int]] = {}
    for i, p in enumerate(old.passages):
        rows.setdefault(p.source, []).append(i)
    sources: dict[str, dict[str, Any]] = old.manifest["sources"]
    reusable = {
        info["sha256"]: Reusable(
            path,
            [old.passages[i] for i in rows.get(path, [])],
            np.array(vectors[rows.get(path, [])]),
            info["language"],
        )
        for path, info in sources.items()
    }
    return Previous(build_id, reusable, {path: info["sha256"] for path, info in sources.items()})


def rehome(p: Passage, doc: SourceDoc) -> Passage:
    """A reused passage under the file's current name (a moved file keeps its vectors)."""
    if p.source == doc.path and p.title == doc.title:
        return p
    return Passage(doc.path, p.start, p.end, p.text, p.line_start, p.line_end, doc.title)
