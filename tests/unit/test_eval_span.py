"""answer-span@k and the span share, on hand-made records with figures worked out by hand."""

from __future__ import annotations

import pytest

from qa.eval.metrics import SHARE, check_floors, parse_floor, summarise
from qa.eval.report import format_table
from qa.eval.run import GoldQuestion, run_questions
from qa.types import Hit, Passage, SearchResult


def _row(rank: int, has: bool, span: bool, source: str = "a.txt") -> dict:
    return {
        "rank": rank,
        "score": 1.0 / rank,
        "source": source,
        "text": "t",
        "from_gold": source == "a.txt",
        "has_answer": has,
        "has_span": span,
        "answer_start": 0,
        "answer_end": 1,
    }


def _rec(qid: str, lang: str, rows: list[dict]) -> dict:
    return {
        "id": qid,
        "question": qid,
        "lang": lang,
        "source": "a.txt",
        "answer": "x",
        "answerable": True,
        "latency_ms": 1.0,
        "results": rows,
    }


# q1: first result holds the answer and its span does; q2: first holds it, span misses, the
# span of result 3 holds it; q3: answer only at rank 2 with its span; q4: nowhere.
RECORDS = [
    _rec("q1", "nb", [_row(1, True, True), _row(2, False, False, "b.txt")]),
    _rec("q2", "nb", [_row(1, True, False), _row(2, False, False), _row(3, True, True)]),
    _rec("q3", "en", [_row(1, False, False, "b.txt"), _row(2, True, True)]),
    _rec("q4", "en", [_row(1, False, False, "b.txt")]),
]


def test_answer_span_at_1_and_5_and_the_share_by_hand() -> None:
    m = summarise(RECORDS, 10)["metrics"]
    assert m["all"]["answer@1"] == pytest.approx(2 / 4)
    assert m["all"]["answer-span@1"] == pytest.approx(1 / 4)
    assert m["all"]["answer-span@5"] == pytest.approx(3 / 4)
    assert m["all"][SHARE] == pytest.approx(1 / 2)  # of q1 and q2, only q1's span holds it
    assert m["nb"]["answer-span@1"] == pytest.approx(1 / 2) and m["nb"][SHARE] == 0.5
    assert m["en"]["answer-span@5"] == pytest.approx(1 / 2)
    assert m["en"][SHARE] is None  # no English first result holds the answer


def test_the_span_figures_are_printed_and_can_be_floors() -> None:
    result = summarise(RECORDS, 10)
    table = format_table(result)
    assert "answer-span@1" in table and "answer-span@5" in table and SHARE in table
    floors = [parse_floor("answer-span@5=0.7"), parse_floor(f"nb:{SHARE}=0.6")]
    assert check_floors(result, floors) == [f"nb:{SHARE} = 0.500 is below the floor 0.6"]


def test_records_from_before_answer_spans_count_as_no_span() -> None:
    old = [_rec("q1", "nb", [{k: v for k, v in _row(1, True, True).items() if k != "has_span"}])]
    assert summarise(old, 10)["metrics"]["all"]["answer-span@1"] == 0.0


class _Fixed:
    """A searcher answering one passage whose answer span is set by hand."""

    def __init__(self, span: tuple[int, int] | None) -> None:
        self.span = span

    def search(self, query: str, k: int = 5) -> SearchResult:
        text = "Innledning. Svaret er Opplæringsloven her. Slutt."
        hit = Hit(Passage("a.txt", 10, 10 + len(text), text, 1, 1), 1.0, 1)
        if self.span:
            hit.answer_start, hit.answer_end = self.span
        return SearchResult(query, "nb", [hit])


def test_run_records_carry_the_span_and_judge_it_against_the_answer() -> None:
    q = [GoldQuestion("t1", "Hvilken lov?", "nb", "a.txt", "Opplæringsloven")]
    hit = run_questions(_Fixed((22, 52)), q, 5)[0]["results"][0]  # "Svaret er ... her."
    assert (hit["answer_start"], hit["answer_end"], hit["has_span"]) == (22, 52, True)
    miss = run_questions(_Fixed((10, 21)), q, 5)[0]["results"][0]  # "Innledning."
    assert miss["has_answer"] and not miss["has_span"]
    whole = run_questions(_Fixed(None), q, 5)[0]["results"][0]  # no span set: the passage
    assert (whole["answer_start"], whole["answer_end"], whole["has_span"]) == (10, 59, True)
