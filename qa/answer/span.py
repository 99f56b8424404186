"""Which sentence of a result answers the question: the answer span.

``vectors`` (the default) and ``query`` score each sentence by its cosine with the query
(the model already loaded: vectors stored at index time, or embedded now for the results
only) plus fixed shares of lexical evidence: the query's idf-weighted BM25 terms it holds,
the query words it holds by their first letters, whether it holds the kind of answer the
question word asks for (``qa.answer.evidence``), and its best neighbour's cosine (a "Han
..." sentence leans on the one before it). ``words`` (the sentence with most query words)
and ``first`` (the first sentence) are the baselines ``qa eval`` compares them with. A very
short winner (a heading, "Ja.") takes its next sentence along, and so does a winner whose
neighbour scores within ``PAIR_MARGIN`` (the answer likely runs across the sentence end).
docs/retrieval.md has the figures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from qa.answer.evidence import answer_type, prefix_overlap

METHODS = ("vectors", "query", "words", "first")


@dataclass(frozen=True)
class Weights:
    """What each piece of evidence adds to a sentence's cosine with the query. Tuned on
    ../shared/norquad-train (eval/tune_span.py), never on the validation split."""

    terms: float = 0.0  # share of the query's BM25 idf weight (stemmed terms): the
    # prefixes below hold the same evidence and more (0.05 here cost a point on training)
    prefixes: float = 0.1  # share of the query words found by their first letters
    kind: float = 0.05  # holds the kind of answer the question word asks for
    neighbour: float = 0.2  # the better neighbour's cosine (the sentence's own at an edge)


WEIGHTS = Weights()
#: Kept for callers that weigh only the stemmed terms.
LEXICAL_WEIGHT = WEIGHTS.terms
PAIR_MARGIN = 0.03
#: A chosen sentence shorter than this (characters) is joined with its neighbour.
SHORT = 40

Span = tuple[int, int]


def trimmed(text: str, spans: Sequence[Span]) -> list[Span]:
    """``spans`` without leading and trailing whitespace; empty ones dropped."""
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            out.append((s, e))
    return out


def overlap(
    text: str, spans: Sequence[Span], terms: Mapping[str, float], tokenize: Callable
) -> np.ndarray:
    """Per sentence, the share of the query terms' idf weight that it holds (0..1)."""
    total = sum(terms.values())
    if not total:
        return np.zeros(len(spans))
    return np.array(
        [sum(terms[t] for t in set(tokenize(text[s:e])) if t in terms) / total for s, e in spans]
    )


def _words(
    text: str, spans: Sequence[Span], terms: Mapping[str, float], tokenize: Callable
) -> np.ndarray:
    """Per sentence, how many distinct query words it holds."""
    return np.array([len(set(tokenize(text[s:e])) & terms.keys()) for s, e in spans], float)


def scores(
    method: str,
    text: str,
    spans: Sequence[Span],
    terms: Mapping[str, float],
    tokenize: Callable[[str], list[str]],
    sims: np.ndarray | None,
    question: str = "",
    weights: Weights = WEIGHTS,
) -> np.ndarray:
    """One score a sentence under ``method`` (higher: more likely the answer)."""
    if method == "first":
        return -np.arange(len(spans), dtype=float)
    if method == "words" or sims is None:
        return _words(text, spans, terms, tokenize)
    cos = np.asarray(sims, dtype=float)
    sentences = [text[s:e] for s, e in spans]
    before, after = np.r_[cos[:1], cos[:-1]], np.r_[cos[1:], cos[-1:]]
    # at weight 0 (the default) the stemmed terms are not counted: tokenizing every
    # sentence of every hit was a quarter of a search's time outside the model
    lexical = weights.terms * overlap(text, spans, terms, tokenize) if weights.terms else 0.0
    return (
        cos
        + lexical
        + weights.prefixes * prefix_overlap(question, sentences)
        + weights.kind * answer_type(question, sentences)
        + weights.neighbour * np.maximum(before, after)
    )


def pick(
    spans: Sequence[Span],
    values: np.ndarray,
    pair_margin: float = PAIR_MARGIN,
    short: int = SHORT,
    pairs: bool = True,
) -> Span:
    """The best sentence (the first of equals), with a neighbour when it is very short or
    scores within ``pair_margin`` of it."""
    best = int(np.argmax(values))
    start, end = spans[best]
    if not pairs or len(spans) == 1:
        return start, end
    nxt, prev = best + 1, best - 1
    neighbours = [i for i in (nxt, prev) if 0 <= i < len(spans)]
    mate = max(neighbours, key=lambda i: (values[i], i == nxt))
    if end - start < short or values[mate] >= values[best] - pair_margin:
        return min(start, spans[mate][0]), max(end, spans[mate][1])
    return start, end


def choose(
    method: str,
    text: str,
    spans: Sequence[Span],
    terms: Mapping[str, float],
    tokenize: Callable[[str], list[str]],
    sims: np.ndarray | None = None,
    question: str = "",
) -> Span | None:
    """The answer span among ``spans`` (sentences of one result, offsets into ``text``) for
    ``question``; None when there is no sentence. Baselines are never paired: each is one
    sentence."""
    if not spans:
        return None
    values = scores(method, text, spans, terms, tokenize, sims, question)
    return pick(spans, values, pairs=method in ("vectors", "query"))
