"""What a new build takes from the current one: readings, passages and vectors of unchanged files.

A file is unchanged when its bytes (sha256), its format and its reader's version are
(``SourceDoc.key``), wherever it now lies: it is not read again (a PDF is not parsed), and
its passages are re-homed under its current name. A reader's new version re-reads exactly
the files of its format. Nothing is reused across another model or chunking.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.config import Settings
from qa.index.load import LoadedIndex, load_index
from qa.index.manifest import IndexProblem, ModelIdentity, chunking
from qa.index.store import current_version
from qa.sources import Extracted, ReadKey, SourceDoc
from qa.sources.document import Heading
from qa.types import Passage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reusable:
    """What one file of the current build lends a new build when its bytes are unchanged."""

    path: str
    passages: list[Passage]
    vectors: np.ndarray
    language: str
    sentence_spans: np.ndarray  # (start, end) offsets into the unchanged text
    sentence_vectors: np.ndarray


@dataclass(frozen=True)
class Previous:
    """The current build, as far as a new one can use it (empty: nothing to reuse)."""

    build_id: str | None = None
    reusable: dict[ReadKey, Reusable] = field(default_factory=dict)
    keys: dict[str, ReadKey] = field(default_factory=dict)  # path -> key of every file
    readings: dict[ReadKey, Extracted | str] = field(default_factory=dict)  # or why skipped
    groups: dict[str, Any] = field(default_factory=dict)  # path -> its groups in the manifest

    def unchanged(self, docs: list[SourceDoc], meta: dict[str, dict[str, Any]]) -> bool:
        """The one "nothing changed" test, for ``up_to_date`` and ``build_index`` alike: an
        index that loads with the same model and chunking (else this is empty), and the same
        files with the same bytes read by the same readers and the same groups (from
        ``meta``: a changed rules file is a new build, without re-embedding; a touched file
        is not). Files that swapped contents, or byte-identical copies, are told apart by
        path, not by hash."""
        return (
            self.build_id is not None
            and bool(docs)
            and {d.path: d.key for d in docs} == self.keys
            and {path: m.get("groups") for path, m in meta.items()} == self.groups
        )

    def passages_of(self, docs: list[SourceDoc]) -> int:
        """How many passages ``docs`` have in this build (all of them must be reusable)."""
        return sum(len(self.reusable[d.key].passages) for d in docs)


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
    try:
        keys = {path: key_of(info) for path, info in sources.items()}
        readings = _readings(old, keys)
    except (ValueError, TypeError, KeyError) as exc:  # a hand-edited manifest: read again
        log.warning("manifest of %s is unusable for reuse (%s): re-reading all", old.path, exc)
        return Previous()
    assert old.sentences is not None  # load_index always loads them
    reusable = {
        keys[path]: Reusable(
            path,
            [old.passages[i] for i in rows.get(path, [])],
            np.array(vectors[rows.get(path, [])]),
            info["language"],
            *(np.array(a) for a in old.sentences.of(path)),
        )
        for path, info in sources.items()
    }
    groups = {path: info.get("groups") for path, info in sources.items()}
    return Previous(build_id, reusable, keys, readings, groups)


def key_of(info: dict[str, Any]) -> ReadKey:
    """A manifest entry's ``ReadKey``; an index from before formats read everything as text."""
    return (str(info["sha256"]), str(info.get("format", "txt")), int(info.get("reader_version", 1)))


def _readings(old: LoadedIndex, keys: dict[str, ReadKey]) -> dict[ReadKey, Extracted | str]:
    """The previous build's reading of each file, or the reason its reader refused it."""
    sources: dict[str, dict[str, Any]] = old.manifest["sources"]
    readings: dict[ReadKey, Extracted | str] = {
        keys[path]: _reading(info, old.texts[path], old.layout.get(path, {}))
        for path, info in sources.items()
        if path in old.texts
    }
    for skipped in old.manifest.get("skipped") or []:
        if isinstance(skipped, dict) and "sha256" in skipped:  # its reader refused its bytes
            readings[key_of(skipped)] = str(skipped.get("reason") or "unreadable")
    return readings


def _reading(info: dict[str, Any], text: str, layout: dict[str, Any]) -> Extracted:
    """What reading the file gave last time, from the manifest and ``sources.jsonl``."""
    return Extracted(
        text,
        str(info.get("format", "txt")),
        title=info["title"],
        pages=list(layout.get("pages", [])),
        headings=[Heading(*h) for h in layout.get("headings", [])],
        warnings=list(info.get("warnings", [])),
        scanned_pages=list(info.get("scanned_pages", [])),
        encoding=info["encoding"],
    )


def rehome(p: Passage, doc: SourceDoc) -> Passage:
    """A reused passage under the file's current name (a moved file keeps its vectors)."""
    if p.source == doc.path and p.title == doc.title:
        return p
    return dataclasses.replace(p, source=doc.path, title=doc.title)
