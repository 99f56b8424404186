"""The lexical side: BM25 (bm25s) over Norwegian-stemmed words (PyStemmer).

Saved as a bm25s folder of plain files a person can open (vocabulary JSON, sparse arrays).
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_NORWEGIAN

# bm25s sets its logger to DEBUG on import; let it follow the application's level
logging.getLogger("bm25s").setLevel(logging.NOTSET)

_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(STOPWORDS_NORWEGIAN) | frozenset(STOPWORDS_EN)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("norwegian")


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop words dropped, Norwegian-stemmed words."""
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP and not w.isspace()]
    return _stemmer().stemWords(words)


class LexicalIndex:
    """BM25 over passages, addressed by the same row ids as the dense index."""

    def __init__(self, bm25: bm25s.BM25, n_docs: int) -> None:
        self._bm25 = bm25
        self.n_docs = n_docs
        self._vocab: dict[str, int] = bm25.vocab_dict or {}

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        """Index passages; an empty passage list gives an index that finds nothing."""
        bm25 = bm25s.BM25()
        corpus = [tokenize(t) or ["\u2205"] for t in texts]  # bm25s needs a token per doc
        if corpus:
            bm25.index(corpus, show_progress=False)
        return cls(bm25, len(texts))

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder))

    @classmethod
    def load(cls, folder: Path, n_docs: int) -> LexicalIndex:
        bm25 = bm25s.BM25.load(str(folder), mmap=False, load_vocab=True, show_progress=False)
        return cls(bm25, n_docs)

    def coverage(self, query: str, mask: np.ndarray | None = None) -> float:
        """Share of the query's content words the corpus knows: low for a foreign language.

        With ``mask``, the words of allowed passages only: a word known only from hidden
        files must not change the weighting, hence the scores, of a restricted search."""
        tokens = tokenize(query)
        if not tokens:
            return 0.0
        return sum(self._known(t, mask) for t in tokens) / len(tokens)

    def _known(self, token: str, mask: np.ndarray | None) -> bool:
        column = self._vocab.get(token)
        if column is None or mask is None:
            return column is not None
        scores = self._bm25.scores
        rows = scores["indices"][scores["indptr"][column] : scores["indptr"][column + 1]]
        return bool(mask[rows].any())

    def idf(self, query: str) -> dict[str, float]:
        """The query's terms the corpus knows, with their BM25 idf (rarer: heavier), for
        weighing which sentence of a result holds them."""
        out: dict[str, float] = {}
        for token in set(tokenize(query)):
            column = self._vocab.get(token)
            if column is not None:
                indptr = self._bm25.scores["indptr"]
                df = int(indptr[column + 1] - indptr[column])
                out[token] = float(np.log(1 + (self.n_docs - df + 0.5) / (df + 0.5)))
        return out

    def search(
        self, query: str, k: int, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Row ids and BM25 scores of the best ``k`` passages (score > 0 only); with ``mask``
        (float, 1 = allowed, 0 = not) among the allowed ones only: bm25s multiplies the
        scores by it before the top-k cut."""
        tokens = [t for t in tokenize(query) if t in self._vocab]
        k = min(k, self.n_docs if mask is None else int(np.count_nonzero(mask)))
        if not tokens or k == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        ids, scores = self._bm25.retrieve(
            [tokens],
            k=k,
            show_progress=False,
            n_threads=0,
            return_as="tuple",
            weight_mask=mask,
        )
        ids, scores = ids[0].astype(np.int64), scores[0].astype(np.float32)
        keep = scores > 0
        return ids[keep], scores[keep]
