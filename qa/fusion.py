"""Rank fusion as small pure functions over ranked lists of passage ids.

Plain reciprocal rank fusion lets BM25 drag down questions asked in another language than
the text (an English question over Norwegian sources matches few words, and its BM25 list
is mostly noise). So the lexical list's weight follows how well the question's words are
known to the corpus and whether the question's language is the corpus's.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from qa.language import NORDIC
from qa.types import Passage


def rrf(
    rankings: Sequence[Sequence[int]], weights: Sequence[float], k: int = 60
) -> dict[int, float]:
    """Weighted reciprocal rank fusion: sum of weight / (k + rank), ranks starting at 1."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        if weight <= 0:
            continue
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank)
    return scores


def lexical_weight(
    base: float, query_lang: str, corpus_langs: AbstractSet[str], coverage: float, foreign: float
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


def ranked(scores: dict[int, float], tiebreak: dict[int, float] | None = None) -> list[int]:
    """Ids by descending score; equal scores (common with rank fusion) are ordered by
    ``tiebreak`` (the dense similarity), then by id so results are stable."""
    tb = tiebreak or {}
    return sorted(scores, key=lambda d: (-round(scores[d], 12), -tb.get(d, -1.0), d))


Span = tuple[int, int, list[int]]  # start, end, ids of the passages it covers


def merge_overlapping(
    order: Sequence[int], passages: Sequence[Passage], k: int, max_chars: int
) -> list[Span]:
    """The first ``k`` results as ``(start, end, ids)``, no text returned twice.

    A passage that overlaps a better-ranked one of the same file (chunk overlap) is merged
    into it: the reader gets one continuous span instead of the shared text twice. When the
    merged span would pass ``max_chars``, only the part not shown yet is kept, as its own
    result. A passage whose text repeats a kept one (the same text in two files) is dropped.
    """
    kept: list[Span] = []
    seen_text: set[str] = set()
    for doc in order:
        if len(kept) == k:
            break
        p = passages[doc]
        key = " ".join(p.text.split())
        if key in seen_text:
            continue
        seen_text.add(key)
        start, end = p.start, p.end
        trimmed = False
        for i, (s, e, ids) in enumerate(kept):
            if passages[ids[0]].source != p.source or not (start < e and s < end):
                continue
            if max(e, end) - min(s, start) <= max_chars:
                kept[i] = (min(s, start), max(e, end), [*ids, doc])
                start = end = 0  # absorbed
                break
            start, end = (e, end) if end > e else (start, s)  # the part not shown yet
            trimmed = True
        if end > start and (not trimmed or end - start >= MIN_PIECE):
            kept.append((start, end, [doc]))
    return kept


#: A leftover of a trimmed passage shorter than this is not worth a result of its own.
MIN_PIECE = 20
