"""Gold questions for the ``qa eval`` tests: fixed ranked lists with figures worked out by
hand, and three questions on the tiny corpus of ``tests.support.corpus``."""

from __future__ import annotations

import json
import math
from pathlib import Path

from qa.eval.run import GoldQuestion
from qa.types import Hit, Passage, SearchResult

ANS = "Opplæringsloven pålegger alle kommuner"

# Four answerable questions and one without an answer, with fixed ranked lists.
# Each entry: (source, text) in rank order. Gold file is "a.txt" for all four.
HAND = {
    # file rank 1, answer rank 1
    "q1": ("nb", [("a.txt", f"x {ANS} y"), ("b.txt", "noe annet")]),
    # file rank 2; rank 2 has the answer lower-cased (case-sensitive: no), answer at rank 6
    "q2": (
        "nb",
        [
            ("b.txt", "b"),
            ("a.txt", ANS.lower()),
            ("b.txt", "b2"),
            ("c.txt", "c"),
            ("b.txt", "b3"),
            ("a.txt", ANS),
        ],
    ),
    # never the gold file
    "q3": ("en", [("b.txt", "b"), ("c.txt", "c"), ("b.txt", "b"), ("c.txt", "c")]),
    # file rank 3 (the passage rank, not 2 = its place among distinct files); the answer is
    # broken over a line in the passage: whitespace is normalised before comparing
    "q4": (
        "en",
        [("c.txt", "c"), ("c.txt", "c2"), ("a.txt", "Opplæringsloven pålegger\n  alle kommuner")],
    ),
    "q5": ("en", [("b.txt", "unrelated")]),
}
# By hand: file ranks 1, 2, -, 3; answer ranks 1, 6, -, 3.
EXPECTED = {
    "hit@1": 1 / 4,
    "hit@5": 3 / 4,
    "mrr@10": (1 + 1 / 2 + 0 + 1 / 3) / 4,
    "ndcg@10": (1 + 1 / math.log2(3) + 0 + 1 / math.log2(4)) / 4,
    "recall@10": 3 / 4,
    "answer@1": 1 / 4,
    "answer@5": (1 + 0 + 0 + 1) / 4,
}
EXPECTED_NB = {"hit@1": 1 / 2, "hit@5": 1.0, "mrr@10": (1 + 1 / 2) / 2, "answer@5": 1 / 2}
EXPECTED_EN = {"hit@1": 0.0, "hit@5": 1 / 2, "mrr@10": (0 + 1 / 3) / 2, "answer@5": 1 / 2}
EXPECTED_CURVE = [1 / 4, 2 / 4, 3 / 4] + [3 / 4] * 7

# On the tiny corpus (tests.support.corpus.TINY), searched with the fake embedder.
KULTUR = "Hvilken lov pålegger kommunene kulturskoletilbud?"
TINY_QUESTIONS = [
    GoldQuestion("t1", KULTUR, "nb", "kultur.txt", "Opplæringsloven"),
    GoldQuestion("t2", "Hva koster vedlikeholdet av vegene?", "nb", "veg.txt", "3,2 milliarder"),
    GoldQuestion("t3", "Who runs nursing homes?", "en", "sub/helse.txt", "sykehjem"),
    GoldQuestion("t4", "Who is the mayor of Oslo?", "en", None, None, answerable=False),
]


def hand_questions(bad_text: str = "") -> list[GoldQuestion]:
    qs = [
        GoldQuestion(qid, f"question {qid}{bad_text}", lang, "a.txt", ANS)
        for qid, (lang, _) in HAND.items()
        if qid != "q5"
    ]
    return [*qs, GoldQuestion("q5", "unanswerable?", "en", None, None, answerable=False)]


def hand_result(query: str, spec: dict = HAND) -> SearchResult:
    qid = query.split()[-1].split("<")[0] if query.startswith("question") else "q5"
    lang, rows = spec[qid]
    hits = [
        Hit(Passage(src, 0, len(text), text, 1, 1, src), 1.0 - i / 10, i + 1)
        for i, (src, text) in enumerate(rows)
    ]
    return SearchResult(query, lang, hits)


class FakeSearcher:
    """Fixed ranked lists; counts how it was called."""

    def __init__(self, spec: dict = HAND) -> None:
        self.spec, self.single, self.batched = spec, 0, 0

    def search(self, query: str, k: int = 5) -> SearchResult:
        self.single += 1
        return hand_result(query, self.spec)

    def search_batch(self, queries: list[str], k: int = 5) -> list[SearchResult]:
        self.batched += len(queries)
        return [hand_result(q, self.spec) for q in queries]


def write_gold(path: Path, questions: list[GoldQuestion]) -> Path:
    """A gold file as ``qa eval --gold`` reads it."""
    rows = [
        {"id": q.id, "question": q.question, "lang": q.lang, "source": q.source, "answer": q.answer}
        | ({} if q.answerable else {"answerable": False})
        for q in questions
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path
