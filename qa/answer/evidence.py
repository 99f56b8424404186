"""Lexical evidence for the answer span beyond stemmed query terms (``qa.answer.span``).

The stemmer misses much Norwegian inflection and compounding ("fylkesvegene" against
"fylkesveg"), and an English question over a Norwegian text shares only its names and
numbers with it: a query word counts as found when its first ``PREFIX`` letters open a word
of the sentence. The question word tells what kind of answer is wanted (a time, an amount,
a name): a sentence that holds one gets a bonus. Rules, not a model: fixed here, their
weights chosen on ../shared/norquad-train by eval/tune_span.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

#: Letters of a query word's beginning that must open a word of the sentence.
PREFIX = 5
_WORD = re.compile(r"\w+")
_DIGIT = re.compile(
    r"\d|\b(?:to|tre|fire|fem|seks|sju|syv|åtte|ni|ti|elleve|tolv|tjue|hundre|tusen|"
    r"millioner|million|milliarder|prosent|kroner)\b",
    re.IGNORECASE,
)
_TIME = re.compile(
    r"\b(?:1[5-9]\d\d|20\d\d|januar|februar|mars|april|mai|juni|juli|august|september|"
    r"oktober|november|desember|mandag|tirsdag|onsdag|torsdag|fredag|lørdag|søndag|"
    r"i dag|i går|i morgen|i fjor|i år|klokken|kl\.)",
    re.IGNORECASE,
)
#: A capitalised word inside a sentence (after a word or a comma): a name, likely.
_NAME = re.compile(r"(?<=[\w,] )[A-ZÆØÅ][a-zæøå]+")
_AMOUNT_Q = re.compile(
    r"\b(?:hvor|kor|how) (?:mange|mye|stor|store|lang|lenge|gammel|høy|many|much|old|long)\b"
)
_TIME_Q = re.compile(r"\b(?:når|hvilket år|kva år|when|what year)\b")
_WHO_Q = re.compile(r"\b(?:hvem|kven|who)\b")
_WHERE_Q = re.compile(r"\b(?:hvor|kvar|where)\b")


def prefix_overlap(question: str, sentences: Sequence[str]) -> np.ndarray:
    """Per sentence, the share of the question's words (over 3 letters) found in it by
    their first ``PREFIX`` letters (0..1)."""
    wanted = {w[:PREFIX] for w in _WORD.findall(question.lower()) if len(w) > 3}
    if not wanted:
        return np.zeros(len(sentences))
    found = [{w[:PREFIX] for w in _WORD.findall(s.lower())} for s in sentences]
    return np.array([len(wanted & words) / len(wanted) for words in found])


def answer_type(question: str, sentences: Sequence[str]) -> np.ndarray:
    """1 for a sentence that holds what the question word asks for (a time for "når", an
    amount for "hvor mange", a name not in the question for "hvem"/"hvor"), else 0."""
    q = question.lower().strip()
    asked = {w.lower() for w in _WORD.findall(question)}
    if _AMOUNT_Q.search(q):
        found = [bool(_DIGIT.search(s)) for s in sentences]
    elif _TIME_Q.search(q):
        found = [bool(_TIME.search(s)) for s in sentences]
    elif _WHO_Q.search(q) or _WHERE_Q.search(q):
        found = [any(n.lower() not in asked for n in _NAME.findall(s)) for s in sentences]
    else:
        return np.zeros(len(sentences))
    return np.array(found, dtype=float)
