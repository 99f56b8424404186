"""qa eval's inputs and outputs: the gold file, results.json and the HTML page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.eval.metrics import failed
from qa.eval.report import save_result, write_html
from qa.eval.run import evaluate_searcher, load_gold
from tests.support.corpus import ROOT
from tests.unit.eval_hand import FakeSearcher, hand_questions


def test_gold_file_answers_are_exact_spans() -> None:
    questions = load_gold(ROOT / "eval" / "gold.jsonl")
    answerable = [q for q in questions if q.answerable]
    langs = [q.lang for q in answerable]
    assert len(questions) >= 44 and len({q.id for q in questions}) == len(questions)
    assert langs.count("en") == langs.count("nb") + langs.count("nn")
    assert langs.count("nn") >= 4 and len(questions) - len(answerable) >= 4
    for q in answerable:
        text = (ROOT / "sources" / q.source).read_text(encoding="utf-8")
        assert q.answer_start is not None
        assert text[q.answer_start : q.answer_start + len(q.answer)] == q.answer, q.id


def test_load_gold_rejects_bad_lines(tmp_path: Path) -> None:
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": "a", "question": "x", "source": "s", "answer": "y"}\n' * 2, "utf-8")
    with pytest.warns(UserWarning, match="repeated"):
        assert [q.id for q in load_gold(dup)] == ["a", "a#2"]
    no_answer = tmp_path / "na.jsonl"
    no_answer.write_text('{"id": "a", "question": "x", "source": "s.txt"}\n', "utf-8")
    with pytest.raises(ValueError, match="no answer"):
        load_gold(no_answer)
    blank = tmp_path / "blank.jsonl"
    blank.write_text('{"id": "a", "question": "x", "source": "", "answer": ""}\n', "utf-8")
    assert load_gold(blank)[0].answerable is False
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a"}\n', "utf-8")
    with pytest.raises(ValueError, match=r"broken\.jsonl:1: not a gold question"):
        load_gold(broken)


def test_save_result_takes_the_result_first_and_round_trips(tmp_path: Path) -> None:
    """Review defect 13: eval's ``write_json(result, path)`` mirrored the index's
    ``write_json(path, obj)``; the eval one is now ``save_result(result, path)``."""
    import qa.eval.report as report

    assert not hasattr(report, "write_json")
    result = evaluate_searcher(FakeSearcher(), hand_questions())
    path = save_result(result, tmp_path / "deep" / "results.json")
    assert json.loads(path.read_text("utf-8")) == json.loads(json.dumps(result))
    assert "Opplæringsloven" in path.read_text("utf-8")  # UTF-8, not \\u escapes


def test_html_report_escapes_and_lists_failed_questions(tmp_path: Path) -> None:
    result = evaluate_searcher(FakeSearcher(), hand_questions("<script>alert(1)</script>"))
    assert [r["id"] for r in failed(result)] == ["q2", "q3"]
    page = write_html(result, tmp_path / "report.html").read_text("utf-8")
    assert "data:image/png;base64," in page
    assert "question q2&lt;script&gt;" in page and "question q3&lt;script&gt;" in page
    assert "<script>" not in page
    assert "question q1" not in page  # answered at rank 1: not a failure
