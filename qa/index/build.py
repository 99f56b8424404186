"""Build and update the index folder (reading it back: qa/index_load.py).

Layout (a person can open every file)::

    index/current -> builds/<build-id>      symlink, swapped atomically
    index/builds/<build-id>/manifest.json   model, dimension, chunking, source hashes, versions
                            passages.jsonl  one passage a line (source, offsets, lines, text)
                            sources.jsonl   the decoded text of every source (citations)
                            embeddings.npy  passage vectors (reused for unchanged files)
                            dense.faiss     FAISS index
                            lexical/        bm25s files

A build is written to ``builds/.tmp-<id>``, renamed when complete, and only then does
``current`` point at it; a reader, or a crash (kill, full disk) halfway, never sees half an
index. Re-running re-embeds only files whose bytes changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.chunking import chunk_document
from qa.config import Settings
from qa.index import dense
from qa.index.lexical import LexicalIndex
from qa.index.load import current_version, load_index
from qa.index.manifest import (
    IndexProblem,
    versions,
    write_json,
    write_jsonl,
)
from qa.language import detect
from qa.sources import Skipped, SourceDoc, scan_sources
from qa.types import Embedder, Passage

log = logging.getLogger(__name__)
FORMAT = 1
KEEP_BUILDS = 2
EMBED_BATCH = 256


class IndexBusy(IndexProblem):
    """Another build holds the lock on this index folder."""


@dataclass
class BuildReport:
    """What a build did; ``changed`` is False when the index was already up to date."""

    build_id: str
    path: Path
    sources: int
    passages: int
    embedded: int
    reused: int
    removed: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    changed: bool = True


def _chunking(settings: Settings) -> dict:
    from qa.chunking import SEPARATORS

    return {
        "splitter": "langchain_text_splitters.RecursiveCharacterTextSplitter",
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "separators": SEPARATORS,
    }


@contextlib.contextmanager
def _lock(index_dir: Path) -> Iterator[None]:
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexBusy(f"another `qa index` is writing {index_dir}; wait for it") from exc
        yield


Previous = tuple[dict[str, tuple], dict[str, str]]


def _previous(index_dir: Path, embedder: Embedder, settings: Settings) -> Previous:
    """What the current build offers, when its model and chunking match: sha256 ->
    (path, passages, vectors, language), and path -> sha256 of every file it indexed."""
    try:
        old = load_index(index_dir, settings, embedder, with_search=False)
    except IndexProblem:
        return {}, {}
    if old.manifest.get("chunking") != _chunking(settings):
        return {}, {}
    try:
        vectors = np.load(old.path / "embeddings.npy", mmap_mode="r")
        if vectors.shape != (len(old.passages), embedder.dim):
            raise ValueError(f"shape {vectors.shape}")
    except (OSError, ValueError) as exc:
        log.warning("embeddings.npy of %s is unusable (%s): re-embedding all", old.path, exc)
        return {}, {}
    by_source: dict[str, list[int]] = {}
    for i, p in enumerate(old.passages):
        by_source.setdefault(p.source, []).append(i)
    reuse = {}
    for path, info in old.manifest["sources"].items():
        rows = by_source.get(path, [])
        reuse[info["sha256"]] = (
            path,
            [old.passages[i] for i in rows],
            np.array(vectors[rows]),
            info["language"],
        )
    return reuse, {path: info["sha256"] for path, info in old.manifest["sources"].items()}


@dataclass(frozen=True)
class _BuiltWith:
    """The model an index was built with, as its manifest says: stands in for the embedder
    where only its identity is needed."""

    name: str
    fingerprint: str
    dim: int


def up_to_date(settings: Settings, fingerprint: str) -> BuildReport | None:
    """The report of a build that would change nothing, else None.

    Needs only the model's fingerprint, so ``qa index`` on an unchanged folder skips
    loading the model (seconds). Same test as ``build_index``: same model and chunking,
    the same files with the same bytes, an index that loads.
    """
    t0 = time.perf_counter()
    index_dir = Path(settings.index_dir)
    old_id = current_version(index_dir)
    if old_id is None:
        return None
    try:  # the dimension; load_index below checks the rest of the manifest
        model = json.loads((index_dir / "current" / "manifest.json").read_text("utf-8"))["model"]
        built = _BuiltWith(model["name"], model["fingerprint"], model["dim"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if built.fingerprint != fingerprint:
        return None
    docs, skipped = scan_sources(Path(settings.sources_dir), settings.max_file_bytes)
    reuse, old_shas = _previous(index_dir, built, settings)  # type: ignore[arg-type]
    if not docs or {d.path: d.sha256 for d in docs} != old_shas:
        return None
    passages = sum(len(reuse[d.sha256][1]) for d in docs)
    seconds = time.perf_counter() - t0
    return BuildReport(
        old_id, index_dir / "current", len(docs), passages, 0, passages, [], skipped, seconds, False
    )


def _embed(embedder: Embedder, texts: list[str], progress: bool) -> np.ndarray:
    """Embed in length-sorted batches (less padding) with a progress bar, in input order."""
    from tqdm import tqdm

    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with tqdm(total=len(texts), desc="embedding", unit="passage", disable=not progress) as bar:
        for lo in range(0, len(order), EMBED_BATCH):
            rows = order[lo : lo + EMBED_BATCH]
            out[rows] = embedder.embed_passages([texts[i] for i in rows])
            bar.update(len(rows))
    return out


def _fits(embedder: Embedder):  # type: ignore[no-untyped-def]
    return lambda text: embedder.count_tokens(text) <= embedder.max_tokens


def build_index(
    settings: Settings, embedder: Embedder, progress: bool = True, rebuild: bool = False
) -> BuildReport:
    """Bring the index folder up to date with the sources folder, atomically.

    ``rebuild`` re-embeds everything instead of reusing unchanged files' vectors.
    """
    t0 = time.perf_counter()
    index_dir = Path(settings.index_dir)
    with _lock(index_dir):
        docs, skipped = scan_sources(Path(settings.sources_dir), settings.max_file_bytes)
        if not docs:
            # An emptied folder (a mount gone, a bad sync) must not wipe a working index.
            named = "".join(f"\n  skipped {s.path}: {s.reason}" for s in skipped[:20])
            raise IndexProblem(
                f"nothing to index in {settings.sources_dir}: no readable text files "
                f"({len(skipped)} skipped); the previous index is unchanged{named}"
            )
        reuse, old_shas = ({}, {}) if rebuild else _previous(index_dir, embedder, settings)
        old_id = current_version(index_dir)
        old_sources = set(old_shas)
        languages = {sha: entry[3] for sha, entry in reuse.items()}
        passages: list[Passage] = []
        vectors: list[np.ndarray] = []
        new: list[tuple[int, Passage]] = []
        reused = 0
        for doc in docs:
            if doc.sha256 in reuse:
                _, old_passages, old_vecs, _ = reuse[doc.sha256]
                for p, v in zip(old_passages, old_vecs, strict=True):
                    passages.append(_rehome(p, doc))
                    vectors.append(v)
                reused += len(old_passages)
                continue
            for p in chunk_document(
                doc, settings.chunk_size, settings.chunk_overlap, _fits(embedder)
            ):
                new.append((len(passages), p))
                passages.append(p)
                vectors.append(None)  # type: ignore[arg-type]
        current_paths = {d.path for d in docs}
        removed = sorted(old_sources - current_paths)
        # unchanged: the same files with the same bytes (two files that swapped contents, or
        # byte-identical copies, are told apart by path, not by hash)
        unchanged = old_id is not None and not new and {d.path: d.sha256 for d in docs} == old_shas
        if unchanged:
            log.info("index %s is up to date (%d passages)", old_id, len(passages))
            return BuildReport(
                old_id,
                index_dir / "current",
                len(docs),
                len(passages),
                0,
                reused,
                [],
                skipped,
                time.perf_counter() - t0,
                changed=False,
            )
        if new:
            fresh = _embed(embedder, [p.text for _, p in new], progress)
            for (row, _), vec in zip(new, fresh, strict=True):
                vectors[row] = vec
        matrix = (
            np.vstack(vectors).astype(np.float32)
            if vectors
            else np.zeros((0, embedder.dim), dtype=np.float32)
        )
        build_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        manifest = _manifest(
            build_id, settings, embedder, docs, passages, skipped, matrix, languages
        )
        path = _write_build(index_dir, build_id, manifest, docs, passages, matrix, settings)
        _swap(index_dir, build_id)
        _collect(index_dir)
        report = BuildReport(
            build_id,
            path,
            len(docs),
            len(passages),
            len(new),
            reused,
            removed,
            skipped,
            time.perf_counter() - t0,
        )
        log.info(
            "index %s: %d sources, %d passages (%d embedded, %d reused), %d removed",
            build_id,
            len(docs),
            len(passages),
            len(new),
            reused,
            len(removed),
        )
        return report


def _rehome(p: Passage, doc: SourceDoc) -> Passage:
    """A reused passage under the file's current name (a moved file keeps its vectors)."""
    if p.source == doc.path and p.title == doc.title:
        return p
    return Passage(doc.path, p.start, p.end, p.text, p.line_start, p.line_end, doc.title)


def _manifest(
    build_id: str,
    settings: Settings,
    embedder: Embedder,
    docs: list[SourceDoc],
    passages: list[Passage],
    skipped: list[Skipped],
    matrix: np.ndarray,
    languages: dict[str, str],
) -> dict:
    """The manifest; ``languages`` (by sha256) saves re-detecting unchanged files."""
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
        "chunking": _chunking(settings),
        "dense": {
            "type": dense.choose_type(len(passages), settings.index_type),
            "vectors": int(matrix.shape[0]),
        },
        "lexical": {"library": "bm25s", "stemmer": "norwegian (PyStemmer)"},
        "passages": len(passages),
        "sources": {
            d.path: {
                "sha256": d.sha256,
                "encoding": d.encoding,
                "title": d.title,
                "language": languages.get(d.sha256) or detect(d.text),
                "chars": len(d.text),
                "passages": counts.get(d.path, 0),
            }
            for d in docs
        },
        "skipped": [{"path": s.path, "reason": s.reason} for s in skipped],
        "versions": versions(),
    }


def _write_build(
    index_dir: Path,
    build_id: str,
    manifest: dict,
    docs: list[SourceDoc],
    passages: list[Passage],
    matrix: np.ndarray,
    settings: Settings,
) -> Path:
    builds = index_dir / "builds"
    tmp = builds / f".tmp-{build_id}"
    final = builds / build_id
    try:
        builds.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        write_jsonl(tmp / "passages.jsonl", (_passage_row(p) for p in passages))
        write_jsonl(tmp / "sources.jsonl", ({"path": d.path, "text": d.text} for d in docs))
        with open(tmp / "embeddings.npy", "wb") as fh:
            np.save(fh, matrix)
            fh.flush()
            os.fsync(fh.fileno())
        dense.save(dense.build(matrix, manifest["dense"]["type"]), tmp / "dense.faiss")
        LexicalIndex.build([p.text for p in passages]).save(tmp / "lexical")
        _sync_tree(tmp)  # FAISS and bm25s do not fsync: on disk before the manifest says whole
        write_json(tmp / "manifest.json", manifest)  # last: its presence marks a whole build
        os.rename(tmp, final)
    except (OSError, RuntimeError) as exc:  # FAISS reports a failed write as RuntimeError
        shutil.rmtree(tmp, ignore_errors=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise IndexProblem(
            f"could not write the index in {index_dir} ({reason}); the previous index is unchanged"
        ) from exc
    except BaseException:  # a bug or Ctrl-C: no half build left behind either
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder``, so a power cut after the swap cannot
    leave a build whose manifest is on disk but whose data is not."""
    for path in [*sorted(folder.rglob("*"), reverse=True), folder]:
        _fsync(path)


def _passage_row(p: Passage) -> dict:
    return dataclasses.asdict(p)


def _swap(index_dir: Path, build_id: str) -> None:
    """Point ``current`` at the new build with one atomic rename."""
    link = index_dir / f".current-{build_id}"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    try:
        os.symlink(Path("builds") / build_id, link)
        os.replace(link, index_dir / "current")
    except OSError as exc:
        with contextlib.suppress(OSError):
            link.unlink()
        raise IndexProblem(
            f"could not switch {index_dir} to the new build ({exc.strerror or exc}); "
            "the previous index is unchanged"
        ) from exc
    _fsync(index_dir)


def _collect(index_dir: Path) -> None:
    """Drop old builds (keeping the previous one for readers mid-swap) and crash leftovers."""
    keep = current_version(index_dir)
    builds = sorted((index_dir / "builds").iterdir())
    done = [b for b in builds if not b.name.startswith(".") and b.name != keep]
    for old in done[: max(0, len(done) - (KEEP_BUILDS - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    for tmp in builds:
        if tmp.name.startswith(".tmp-"):
            shutil.rmtree(tmp, ignore_errors=True)
