"""Which passage rows of one index build a caller and filters allow, for the retriever.

Computed once per distinct (groups, filters) and kept: a pass over the files and the
passages costs more than a search, and the same groups ask again and again.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qa.access.caller import PUBLIC, Caller, can_see
from qa.access.filters import Filters
from qa.index import dense

#: Restrictions kept per build (one per distinct groups and filters).
CACHED = 256


@dataclass(frozen=True, slots=True)
class Restriction:
    """The rows one (caller groups, filters) pair may rank: a FAISS selector and a BM25 mask."""

    allowed: dense.Allowed
    weights: np.ndarray  # float32, 1.0 allowed, 0.0 not
    languages: frozenset[str]  # the corpus languages as far as these rows go


def corpus_languages(languages: Iterable[str]) -> frozenset[str]:
    """The (up to three) most common languages of the files: the lexical side's home
    languages (qa/fusion.py). Counted over visible files only, so that the weight, and so
    the scores, say nothing of files the caller may not see."""
    return frozenset(lang for lang, _ in Counter(languages).most_common(3))


class RowAccess:
    """Files' groups and the rows of each file, from a build's manifest and passages."""

    def __init__(self, sources: Mapping[str, Mapping[str, Any]], row_files: Sequence[str]):
        self._sources = sources
        self.paths = sorted(sources)
        where = {path: i for i, path in enumerate(self.paths)}
        self._file_of = np.array([where[f] for f in row_files], dtype=np.int64)
        self._cache: dict[tuple, Restriction | None] = {}
        self._lock = threading.Lock()

    def groups_of(self, path: str) -> tuple[str, ...]:
        """A file's groups; a file of an index built before access control is public."""
        return tuple(self._sources[path].get("groups", [PUBLIC]))

    def can_see(self, path: str, caller: Caller | None) -> bool:
        """Whether ``path`` is indexed and ``caller`` may see it (None: no check)."""
        if path not in self._sources:
            return False
        return caller is None or can_see(self.groups_of(path), caller)

    def restriction(self, caller: Caller | None, filters: Filters | None) -> Restriction | None:
        """The rows this caller and these filters allow; None when that is every row, so an
        anonymous caller of an all-public index searches exactly as without access control."""
        filters = filters or Filters()
        if caller is None and filters.empty:
            return None
        key = (None if caller is None else caller.groups, filters)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        files = np.array(
            [self.can_see(p, caller) and filters.matches(p, self._sources[p]) for p in self.paths],
            dtype=bool,
        )
        mask = files[self._file_of] if len(self._file_of) else np.zeros(0, dtype=bool)
        seen = (self._sources[p]["language"] for p, ok in zip(self.paths, files, strict=True) if ok)
        fresh = (
            None
            if mask.all()
            else Restriction(dense.Allowed(mask), mask.astype(np.float32), corpus_languages(seen))
        )
        with self._lock:
            if len(self._cache) >= CACHED:
                self._cache.clear()
            self._cache[key] = fresh
        return fresh
