"""Rank fusion as small pure functions over ranked lists of passage ids.

Plain reciprocal rank fusion lets BM25 drag down questions asked in another language than
the text (an English question over Norwegian sources matches few words, and its BM25 list
is mostly noise). So the lexical list's weight follows how well the question's words are
known to the corpus and whether the question's language is the corpus's.
"""

from __future__ import annotations

from collections.abc import Sequence

from qa.language import NORDIC
from qa.types import Passage


def rrf(rankings: Sequence[Sequence[int]], weights: Sequence[float], k: int = 60) -> dict[int, float]:
    """Weighted reciprocal rank fusion: sum of weight / (k + rank), ranks starting at 1."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        if weight <= 0:
            continue
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank)
    return scores


def lexical_weight(
    base: float, query_lang: str, corpus_langs: set[str], coverage: float, foreign: float
) -> float:
    """Weight of the BM25 list for one query.

    Same language family as the corpus: ``base``. Otherwise ``base * foreign``, scaled by
    the share of query words the corpus knows (names and numbers still match across
    languages, function words do not).
    """
    same = query_lang in corpus_langs or (query_lang in NORDIC and bool(corpus_langs & NORDIC))
    if same or query_lang == "und":
        return base
    return base * foreign * coverage


def ranked(scores: dict[int, float]) -> list[int]:
    """Ids by descending score; ties broken by id so results are stable."""
    return sorted(scores, key=lambda d: (-scores[d], d))


def _overlaps(a: Passage, b: Passage) -> bool:
    return a.source == b.source and a.start < b.end and b.start < a.end


def drop_near_duplicates(order: Sequence[int], passages: Sequence[Passage], k: int) -> list[int]:
    """The first ``k`` ids whose passage neither overlaps a better one (chunk overlap) nor
    repeats its text (the same text in two files)."""
    kept: list[int] = []
    seen_text: set[str] = set()
    for doc in order:
        p = passages[doc]
        key = " ".join(p.text.split())
        if key in seen_text or any(_overlaps(p, passages[d]) for d in kept):
            continue
        kept.append(doc)
        seen_text.add(key)
        if len(kept) == k:
            break
    return kept
