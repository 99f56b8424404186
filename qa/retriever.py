"""Hybrid retrieval: dense (FAISS) and lexical (BM25) lists fused, near-duplicates dropped.

``Retriever`` answers from one loaded build; ``LiveRetriever`` holds the current one and
swaps in a rebuilt index without a restart. A caller keeps the Retriever it got for the
whole request, so a swap never fails a request.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from qa import fusion
from qa.access import PUBLIC, Caller, Filters, can_see
from qa.access.rows import RowAccess, corpus_languages
from qa.answer.locate import locate
from qa.config import Settings
from qa.index import IndexProblem, LoadedIndex, current_version, dense, load_index
from qa.index.lexical import tokenize
from qa.language import detect
from qa.types import Embedder, Hit, Passage, SearchResult

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """An indexed source file, as listed by ``GET /sources``."""

    path: str
    title: str
    passages: int
    chars: int
    encoding: str
    language: str
    format: str = "txt"
    pages: int = 0
    groups: tuple[str, ...] = (PUBLIC,)  # who may see it (``qa.access``)
    modified: str | None = None  # ISO datetime, UTC; None in an index from before filters


class Retriever:
    """Search over one index build."""

    def __init__(self, index: LoadedIndex, embedder: Embedder, settings: Settings) -> None:
        if index.dense is None or index.lexical is None:
            raise ValueError("this index was loaded without its search halves")
        self._index = index
        self._dense, self._lexical = index.dense, index.lexical
        self.embedder = embedder
        self.settings = settings
        sources = index.manifest["sources"].values()
        self.corpus_languages = corpus_languages(s["language"] for s in sources)
        self._access = RowAccess(index.manifest["sources"], [p.source for p in index.passages])

    @classmethod
    def load(cls, index_dir: Path, settings: Settings, embedder: Embedder) -> Retriever:
        return cls(load_index(Path(index_dir), settings, embedder), embedder, settings)

    @property
    def version(self) -> str:
        return self._index.version

    @property
    def manifest(self) -> dict:
        return self._index.manifest

    @property
    def passages(self) -> list[Passage]:
        return self._index.passages

    def groups_of(self, path: str) -> tuple[str, ...]:
        return self._access.groups_of(path)

    def can_see(self, path: str, caller: Caller | None) -> bool:
        """Whether ``path`` is indexed and ``caller`` may see it (None: no check)."""
        return self._access.can_see(path, caller)

    def visible_sources(self, caller: Caller | None) -> set[str]:
        return {path for path in self._access.paths if self.can_see(path, caller)}

    def sources(self, caller: Caller | None = None) -> list[SourceInfo]:
        """The indexed files ``caller`` may see (None: all)."""
        return [
            info for info in self._all_sources() if caller is None or can_see(info.groups, caller)
        ]

    def _all_sources(self) -> list[SourceInfo]:
        return [
            SourceInfo(
                path,
                s["title"],
                s["passages"],
                s["chars"],
                s["encoding"],
                s["language"],
                s.get("format", "txt"),  # indexes built before formats: text
                s.get("pages", 0),
                tuple(s.get("groups", [PUBLIC])),
                s.get("modified"),
            )
            for path, s in sorted(self._index.manifest["sources"].items())
        ]

    def source_text(self, path: str) -> str | None:
        """The indexed text of a source: what citations' offsets refer to."""
        return self._index.texts.get(path)

    def search(
        self,
        query: str,
        k: int | None = None,
        caller: Caller | None = None,
        filters: Filters | None = None,
    ) -> SearchResult:
        return self.search_batch([query], k, caller, filters)[0]

    def search_batch(
        self,
        queries: list[str],
        k: int | None = None,
        caller: Caller | None = None,
        filters: Filters | None = None,
    ) -> list[SearchResult]:
        """Answer several queries, embedding them in one batch."""
        if not queries:
            return []
        vectors = self.embedder.embed_queries(list(queries))
        return [
            self.search_vector(q, v, k, caller, filters)
            for q, v in zip(queries, vectors, strict=True)
        ]

    def search_vector(
        self,
        query: str,
        vector: np.ndarray,
        k: int | None = None,
        caller: Caller | None = None,
        filters: Filters | None = None,
    ) -> SearchResult:
        """Answer a query whose embedding is already computed (batched by the caller).

        Only passages of files ``caller`` may see (None: no check) and ``filters`` let
        through are ranked, inside FAISS and BM25, so ``k`` come back when ``k`` exist."""
        k = k or self.settings.default_k
        s = self.settings
        language = detect(query)
        limit = self._access.restriction(caller, filters)
        if limit is not None and limit.allowed.count == 0:
            return SearchResult(query=query, language=language, hits=[])
        n = max(s.candidates, k * 3)
        allowed, weights = (limit.allowed, limit.weights) if limit else (None, None)
        ids, sims = dense.search(self._dense, vector[None, :], n, allowed)
        dense_ids = [int(i) for i in ids[0] if i >= 0]
        similarity = dict(zip(dense_ids, sims[0].tolist(), strict=False))
        lex = self._lexical
        lex_ids = [int(i) for i in lex.search(query, n, weights)[0]]
        w_lex = fusion.lexical_weight(
            s.lexical_weight,
            language,
            limit.languages if limit else self.corpus_languages,
            lex.coverage(query, weights),
            s.foreign_lexical_weight,
        )
        scores = fusion.rrf([dense_ids, lex_ids], [s.dense_weight, w_lex], s.rrf_k)
        order = fusion.ranked(scores, tiebreak=similarity)
        spans = fusion.merge_overlapping(order, self.passages, k, max_chars=2 * s.chunk_size)
        dense_rank = {d: r for r, d in enumerate(dense_ids, start=1)}
        lex_rank = {d: r for r, d in enumerate(lex_ids, start=1)}
        hits = []
        for rank, (start, end, rows) in enumerate(spans, start=1):
            best = rows[0]
            hits.append(
                Hit(
                    self._span(rows, start, end),
                    scores[best],
                    rank,
                    dense_rank.get(best),
                    lex_rank.get(best),
                )
            )
        self._answer_spans(query, vector, hits)
        return SearchResult(query=query, language=language, hits=hits)

    def _answer_spans(self, query: str, vector: np.ndarray, hits: list[Hit]) -> None:
        """Each hit's answer span (``qa.answer``), by the configured method."""
        table = self._index.sentences
        if table is None or not hits:
            return
        terms = self._lexical.idf(query)
        texts, method = self._index.texts, self.settings.answer_span
        locate(hits, method, vector, table, texts, terms, tokenize, self.embedder, query)

    def _span(self, rows: list[int], start: int, end: int) -> Passage:
        """The best of ``rows`` (merged passages of one file) widened or narrowed to
        ``[start, end)``: the pages all rows cover, the section of the best (where the
        answer most likely is)."""
        p = self.passages[rows[0]]
        if (start, end) == (p.start, p.end):
            return p
        text = self._index.texts[p.source]
        covered = [self.passages[r] for r in rows]
        firsts = [q.page_start for q in covered if q.page_start is not None]
        lasts = [q.page_end for q in covered if q.page_end is not None]
        return replace(
            p,
            start=start,
            end=end,
            text=text[start:end],
            line_start=text.count("\n", 0, start) + 1,
            line_end=text.count("\n", 0, end - 1) + 1,
            page_start=min(firsts, default=None),
            page_end=max(lasts, default=None),
        )


class LiveRetriever:
    """The current Retriever of an index folder, reloaded when a new build appears.

    The one path by which a new build is served: ``reload_if_changed``, under a lock, called
    by this object's own poller thread and by whoever knows of a build first (the source
    watcher, right after building), so a build is loaded once however many ask at a time.
    """

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self._current: Retriever | None = None
        self._reload = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        #: The build ``current`` points at that failed to load: tried (and logged) once.
        self.failed_version: str | None = None

    @property
    def ready(self) -> bool:
        return self._current is not None

    @property
    def problem(self) -> str | None:
        """Why the newest build on disk is not served, for /health and /ready (no paths)."""
        if self.failed_version is None:
            return None
        return f"The index build {self.failed_version} on disk could not be loaded; rebuild it."

    def get(self) -> Retriever:
        current = self._current
        if current is None:
            raise IndexProblem("the index is not loaded yet")
        return current

    def start(self) -> None:
        """Start polling for new builds, then load the current one now.

        Raises what is wrong with the index (IndexProblem); the poller keeps trying, so a
        server can answer 503 until a build loads. A caller that gives up calls ``stop()``.
        """
        if self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="index-watch", daemon=True)
            self._thread.start()
        with self._reload:
            self._current = Retriever.load(self.settings.index_dir, self.settings, self.embedder)

    def stop(self) -> None:
        """Stop polling and release the embedder's resources (worker threads) if it has any."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        close = getattr(self.embedder, "close", None)
        if callable(close):
            close()

    def reload_if_changed(self) -> bool:
        """Swap in the build ``current`` points at, if it is new; keep the old one on error."""
        with self._reload:
            version = current_version(self.settings.index_dir)
            if version is None or (self._current and self._current.version == version):
                return False
            if version == self.failed_version:  # broken on disk: a new build is tried, not it
                return False
            try:
                fresh = Retriever.load(self.settings.index_dir, self.settings, self.embedder)
            except IndexProblem as exc:
                self.last_error = str(exc)
                self.failed_version = version
                log.error("new index not loaded, still serving the previous one: %s", exc)
                return False
            self._current = fresh
            self.last_error = None
            self.failed_version = None
        log.info("now serving index %s (%d passages)", fresh.version, len(fresh.passages))
        return True

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.reload_interval_s):
            try:
                self.reload_if_changed()
            except Exception:  # the poller must survive anything and keep serving
                log.exception("index reload failed")
