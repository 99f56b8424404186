"""Build and update the index folder (reading it back: ``qa.index.load``).

Layout (a person can open every file)::

    index/current -> builds/<build-id>      symlink, swapped atomically
    index/builds/<build-id>/manifest.json   model, dimension, chunking, source hashes, versions
                            passages.jsonl  one passage a line (source, offsets, lines, text)
                            sources.jsonl   the text of every source (citations), its pages
                                            and headings
                            embeddings.npy  passage vectors (reused for unchanged files)
                            sentences.npy   sentence offsets of every source (answer spans)
                            sentence_vectors.npy  their vectors, float16 (reused likewise)
                            dense.faiss     FAISS index
                            lexical/        bm25s files

A build is written to ``builds/.tmp-<id>``, renamed when complete, and only then does
``current`` point at it; a reader, or a crash (kill, full disk) halfway, never sees half an
index. Re-running re-reads and re-embeds only files whose bytes (or reader) changed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.chunking import chunk_document
from qa.config import Settings
from qa.embedding.engines import prepare_passages
from qa.index import dense
from qa.index.access import access_of, without_rules
from qa.index.lexical import LexicalIndex
from qa.index.manifest import BuiltWith, IndexProblem, make_manifest
from qa.index.quick import build_stat, stat_entry
from qa.index.report import BuildReport
from qa.index.reuse import Previous, previous_build, rehome
from qa.index.sentences import (
    SentencePlan,
    SentenceTable,
    embed_sentences,
    manifest_entry,
    save_sentences,
)
from qa.index.store import (
    collect,
    current_version,
    lock,
    source_row,
    swap,
    sync_tree,
    write_json,
    write_jsonl,
)
from qa.language import detect
from qa.sources import Extracted, ReadKey, Skipped, SourceDoc, scan_sources, shown
from qa.types import Embedder, Passage

log = logging.getLogger(__name__)
#: Passages handed to the embedder at once: the progress bar moves, and a query served
#: during a ``--watch`` re-index waits for one such call at most, not for the whole build.
EMBED_BATCH = 256


def _unchanged(
    previous: Previous,
    index_dir: Path,
    docs: list[SourceDoc],
    skipped: list[Skipped],
    t0: float,
    access: dict[str, Any],
) -> BuildReport:
    """The report of a build that found nothing to do."""
    assert previous.build_id is not None  # Previous.unchanged() holds
    passages = previous.passages_of(docs)
    return BuildReport(
        build_id=previous.build_id,
        path=index_dir / "current",
        sources=len(docs),
        passages=passages,
        embedded=0,
        reused=passages,
        skipped=skipped,
        seconds=time.perf_counter() - t0,
        changed=False,
    ).describe(docs, access)


def up_to_date(settings: Settings, fingerprint: str) -> BuildReport | None:
    """The report of a build that would change nothing, else None.

    Needs only the model's fingerprint, so ``qa index`` on an unchanged folder skips
    loading the model (seconds). Same test as ``build_index`` (``Previous.unchanged``).
    """
    t0 = time.perf_counter()
    index_dir = Path(settings.index_dir)
    if current_version(index_dir) is None:
        return None
    try:  # the dimension; load_index in _previous checks the rest of the manifest
        manifest = json.loads((index_dir / "current" / "manifest.json").read_text("utf-8"))
        built = BuiltWith.of(manifest)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if built.fingerprint != fingerprint:
        return None
    previous = previous_build(index_dir, built, settings)
    docs, skipped = scan(settings, previous.readings)
    meta, access = access_of(settings, docs)
    if not previous.unchanged(docs, meta):
        return None
    return _unchanged(previous, index_dir, docs, skipped, t0, access)


@dataclass
class _Plan:
    """The passages of a new build in order, and where their vectors come from."""

    passages: list[Passage] = field(default_factory=list)
    reused: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (first row, vectors)
    new: list[int] = field(default_factory=list)  # rows to embed
    sentences: SentencePlan = field(default_factory=SentencePlan)

    @property
    def reused_count(self) -> int:
        return sum(len(vectors) for _, vectors in self.reused)


def _plan(
    docs: list[SourceDoc],
    previous: Previous,
    settings: Settings,
    embedder: Embedder,
    languages: dict[ReadKey, str],
) -> _Plan:
    """Reuse the passages, sentences and vectors of unchanged files; chunk the others
    (their languages, needed to cut sentences, are added to ``languages``)."""
    plan = _Plan()

    def fits(text: str) -> bool:
        return embedder.count_tokens(text) <= embedder.max_tokens

    for doc in docs:
        old = previous.reusable.get(doc.key)
        if old is not None:
            plan.reused.append((len(plan.passages), old.vectors))
            plan.passages.extend(rehome(p, doc) for p in old.passages)
            plan.sentences.add(doc.path, old.sentence_spans, old.sentence_vectors)
            continue
        language = languages.setdefault(doc.key, detect(doc.text))
        plan.sentences.add_new(doc.path, doc.text, language)
        for p in chunk_document(doc, settings.chunk_size, settings.chunk_overlap, fits):
            plan.new.append(len(plan.passages))
            plan.passages.append(p)
    return plan


def _vectors(plan: _Plan, embedder: Embedder, progress: bool) -> np.ndarray:
    """One vector a passage: reused ones copied, new ones embedded ``EMBED_BATCH`` at a time
    (the embedder sorts each call by length itself) under a progress bar."""
    from tqdm import tqdm

    matrix = np.zeros((len(plan.passages), embedder.dim), dtype=np.float32)
    for first, vectors in plan.reused:
        matrix[first : first + len(vectors)] = vectors
    with tqdm(total=len(plan.new), desc="embedding", unit="passage", disable=not progress) as bar:
        for lo in range(0, len(plan.new), EMBED_BATCH):
            rows = plan.new[lo : lo + EMBED_BATCH]
            matrix[rows] = embedder.embed_passages([plan.passages[i].text for i in rows])
            bar.update(len(rows))
    return matrix


def scan(
    settings: Settings, readings: dict[ReadKey, Extracted | str]
) -> tuple[list[SourceDoc], list[Skipped]]:
    """The sources folder read with the settings' limits, files read last time not again;
    the access rules file left out."""
    docs, skipped = scan_sources(
        Path(settings.sources_dir),
        settings.max_file_bytes,
        timeout_s=settings.read_timeout_s,
        memory_mb=settings.read_memory_mb,
        cache=readings,
    )
    return without_rules(settings, docs, skipped)


def _scan(settings: Settings, previous: Previous) -> tuple[list[SourceDoc], list[Skipped]]:
    docs, skipped = scan(settings, previous.readings)
    if not docs:
        # An emptied folder (a mount gone, a bad sync) must not wipe a working index.
        named = "".join(f"\n  skipped {shown(s.path)}: {s.reason}" for s in skipped[:20])
        raise IndexProblem(
            f"nothing to index in {settings.sources_dir}: no readable text files "
            f"({len(skipped)} skipped); the previous index is unchanged{named}"
        )
    return docs, skipped


def passage_job(embedder: Embedder, count: int) -> AbstractContextManager[None]:
    """Tells an embedder that picks its engine per job how many texts this build embeds."""
    job = getattr(embedder, "passage_job", None)
    return job(count) if job is not None else nullcontext()


def build_index(
    settings: Settings, embedder: Embedder, progress: bool = True, rebuild: bool = False
) -> BuildReport:
    """Bring the index folder up to date with the sources folder, atomically.

    ``rebuild`` re-embeds everything instead of reusing unchanged files' vectors.
    """
    t0 = time.perf_counter()
    index_dir = Path(settings.index_dir)
    prepare_passages(embedder)
    with lock(index_dir):
        previous = Previous() if rebuild else previous_build(index_dir, embedder, settings)
        since_ns = time.time_ns()  # files changed after this are hashed next time (quick)
        docs, skipped = _scan(settings, previous)
        meta, access = access_of(settings, docs)
        if previous.unchanged(docs, meta):
            report = _unchanged(previous, index_dir, docs, skipped, t0, access)
            log.info("index %s is up to date (%d passages)", report.build_id, report.passages)
            return report
        languages = {key: old.language for key, old in previous.reusable.items()}
        plan = _plan(docs, previous, settings, embedder, languages)
        texts = {d.path: d.text for d in docs}
        with ThreadPoolExecutor(1) as pool:  # BM25 in Python while the model runs in C++
            lexical = pool.submit(LexicalIndex.build, [p.text for p in plan.passages])
            with passage_job(embedder, len(plan.new) + plan.sentences.to_embed):
                matrix = _vectors(plan, embedder, progress)
                table = embed_sentences(plan.sentences, texts, embedder, progress)
        build_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        manifest = make_manifest(
            build_id, settings, embedder, docs, plan.passages, skipped, languages, meta, access
        )
        _add_sentences(manifest, table)
        manifest["stat"] = stat_entry(settings, docs, skipped, since_ns)
        path = _write_build(index_dir, build_id, manifest, docs, plan, matrix, table, lexical)
        swap(index_dir, build_id)
        collect(index_dir)
    report = BuildReport(
        build_id=build_id,
        path=path,
        sources=len(docs),
        passages=len(plan.passages),
        embedded=len(plan.new),
        reused=plan.reused_count,
        removed=sorted(set(previous.keys) - {d.path for d in docs}),
        skipped=skipped,
        seconds=time.perf_counter() - t0,
        sentences=plan.sentences.to_embed,
        sentence_seconds=plan.sentences.seconds,
    ).describe(docs, access)
    log.info(
        "index %s: %d sources, %d passages (%d embedded, %d reused), %d removed; "
        "%d sentences embedded in %.1f of %.1f s",
        *(build_id, report.sources, report.passages, report.embedded, report.reused),
        *(len(report.removed), report.sentences, report.sentence_seconds, report.seconds),
    )
    return report


def _add_sentences(manifest: dict[str, Any], table: SentenceTable) -> None:
    """The sentence table's block and each source's rows, in the manifest."""
    manifest["sentences"] = manifest_entry(len(table.spans))
    for path, (first, count) in table.rows.items():
        manifest["sources"][path]["sentences"] = [first, count]


def _write_build(
    index_dir: Path,
    build_id: str,
    manifest: dict[str, Any],
    docs: list[SourceDoc],
    plan: _Plan,
    matrix: np.ndarray,
    table: SentenceTable,
    lexical: Future[LexicalIndex],
) -> Path:
    """Write every file of a build, the manifest last, and rename it into ``builds/``."""
    builds = index_dir / "builds"
    tmp = builds / f".tmp-{build_id}"
    final = builds / build_id
    try:
        builds.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        write_jsonl(tmp / "passages.jsonl", (dataclasses.asdict(p) for p in plan.passages))
        write_jsonl(tmp / "sources.jsonl", map(source_row, docs))
        with open(tmp / "embeddings.npy", "wb") as fh:
            np.save(fh, matrix)
            fh.flush()
            os.fsync(fh.fileno())
        save_sentences(table, tmp)
        dense.save(dense.build(matrix, manifest["dense"]["type"]), tmp / "dense.faiss")
        lexical.result().save(tmp / "lexical")
        sync_tree(tmp)  # FAISS and bm25s do not fsync: on disk before the manifest says whole
        if "stat" in manifest:  # the build's own files, so quick sees one damaged since
            manifest["stat"]["build"] = build_stat(tmp)
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
