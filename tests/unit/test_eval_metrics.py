"""qa eval figures: checked against hand computation and textbook formulas; floors; the
paired comparison; the records a run makes are not changed by judging them."""

from __future__ import annotations

import copy
import json
import math
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa.eval.cli import eval_command
from qa.eval.metrics import CURVE_K, check_floors, parse_floor, summarise
from qa.eval.report import format_table
from qa.eval.run import GoldQuestion, evaluate_searcher, run_questions
from tests.unit.eval_hand import (
    ANS,
    EXPECTED,
    EXPECTED_CURVE,
    EXPECTED_EN,
    EXPECTED_NB,
    HAND,
    FakeSearcher,
    hand_questions,
)


def test_figures_agree_with_hand_computation() -> None:
    searcher = FakeSearcher()
    result = evaluate_searcher(searcher, hand_questions(), k=10)
    for metric, value in EXPECTED.items():
        assert result["metrics"]["all"][metric] == pytest.approx(value), metric
    for metric, value in EXPECTED_NB.items():
        assert result["metrics"]["nb"][metric] == pytest.approx(value), metric
    for metric, value in EXPECTED_EN.items():
        assert result["metrics"]["en"][metric] == pytest.approx(value), metric
    assert result["recall_curve"]["all"] == pytest.approx(EXPECTED_CURVE)
    assert result["metrics"]["all"]["n"] == 4 and result["n_questions"] == 5
    ranks = {r["id"]: (r["file_rank"], r["answer_rank"]) for r in result["questions"]}
    assert ranks == {
        "q1": (1, 1),
        "q2": (2, 6),
        "q3": (None, None),
        "q4": (3, 3),
        "q5": (None, None),
    }
    # unanswerable: out of the metrics, reported with its top score
    un = result["unanswerable"]
    assert un["n"] == 1 and un["questions"][0]["top_score"] == pytest.approx(1.0)
    # one timed single query each (plus a warm-up): its results scored, its time the latency
    assert searcher.batched == 0 and searcher.single == 6
    assert result["latency_ms"]["n"] == 5 and result["latency_ms"]["p50"] >= 0
    # the table prints the same figures
    table = format_table(result)
    assert "0.458" in table and "0.533" in table and "q3" in table


def test_judging_leaves_the_records_as_they_were() -> None:
    """Review: evaluate.py added ranks and scores into the records it was given."""
    records = run_questions(FakeSearcher(), hand_questions(), CURVE_K)
    before = copy.deepcopy(records)
    result = summarise(records, 10)
    assert records == before
    q2 = next(r for r in result["questions"] if r["id"] == "q2")
    assert (q2["file_rank"], q2["answer_rank"]) == (2, 6) and "file_rank" not in records[1]
    assert list(q2)[: len(records[1])] == list(records[1])  # results.json keeps its key order


def test_ranx_agrees_with_plain_formulas_on_random_lists() -> None:
    """Many random ranked lists: every figure equals the textbook formula on the first hit."""
    rng = random.Random(7)
    spec: dict = {}
    questions = []
    for i in range(60):
        rows = [(rng.choice("abcd") + ".txt", rng.choice(["x", ANS, "y"])) for _ in range(10)]
        spec[f"r{i}"] = ("nb", rows[: rng.randint(0, 10)])
        questions.append(GoldQuestion(f"r{i}", f"question r{i}", "nb", "a.txt", ANS))
    result = evaluate_searcher(FakeSearcher(spec), questions)

    def first(rows: list, answer: bool) -> int | None:
        hits = [i for i, (s, t) in enumerate(rows, 1) if s == "a.txt" and (t == ANS or not answer)]
        return hits[0] if hits else None

    files = [first(rows, False) for _, rows in spec.values()]
    answers = [first(rows, True) for _, rows in spec.values()]
    n = len(files)
    plain = {
        "hit@1": sum(r == 1 for r in files) / n,
        "hit@5": sum(r is not None and r <= 5 for r in files) / n,
        "mrr@10": sum(1 / r for r in files if r) / n,
        "ndcg@10": sum(1 / math.log2(r + 1) for r in files if r) / n,
        "recall@10": sum(r is not None for r in files) / n,
        "answer@1": sum(r == 1 for r in answers) / n,
        "answer@5": sum(r is not None and r <= 5 for r in answers) / n,
    }
    for metric, value in plain.items():
        assert result["metrics"]["all"][metric] == pytest.approx(value), metric


def test_floors() -> None:
    assert parse_floor("hit@5=0.9") == ("all", "hit@5", 0.9)
    assert parse_floor("en:answer@5=0.8") == ("en", "answer@5", 0.8)
    with pytest.raises(ValueError):
        parse_floor("speed=3")
    result = evaluate_searcher(FakeSearcher(), hand_questions())
    assert check_floors(result, [parse_floor("hit@5=0.75")]) == []
    (msg,) = check_floors(result, [parse_floor("hit@5=0.8")])
    assert "hit@5 = 0.750 is below the floor 0.8" in msg
    (missing,) = check_floors(result, [parse_floor("nn:hit@5=0.1")])
    assert "nn:hit@5 is not in the results" in missing


def test_compare_with_paired_test(tmp_path: Path) -> None:
    from scipy.stats import ttest_rel

    better = dict(HAND, q3=("en", [("a.txt", ANS)]), q2=("nb", [("a.txt", ANS)]))
    a = evaluate_searcher(FakeSearcher(), hand_questions()) | {"name": "model-a"}
    b = evaluate_searcher(FakeSearcher(better), hand_questions()) | {"name": "model-b"}
    pa = tmp_path / "a.json"
    pb = tmp_path / "b.json"
    pa.write_text(json.dumps(a), "utf-8")
    pb.write_text(json.dumps(b), "utf-8")
    out = tmp_path / "cmp"
    res = CliRunner().invoke(
        eval_command, ["--compare", str(pa), str(pb), "--test", "student", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "model-a" in res.output and "model-b" in res.output and "mrr@10" in res.output
    cmp = json.loads((out / "compare.json").read_text("utf-8"))
    # B answers q2 and q3 at rank 1: MRR per question (1, .5, 0, 1/3) -> (1, 1, 1, 1/3)
    row = cmp["rows"]["mrr@10"]
    assert row["a"] == pytest.approx(EXPECTED["mrr@10"])
    assert row["b"] == pytest.approx((1 + 1 + 1 + 1 / 3) / 4)
    independent = ttest_rel([1, 1 / 2, 0, 1 / 3], [1, 1, 1, 1 / 3]).pvalue
    assert row["p"] == pytest.approx(independent, abs=1e-4)
    # the same figures as the single-run path gives (one ranx path for both)
    for metric, r in cmp["rows"].items():
        assert r["a"] == pytest.approx(a["metrics"]["all"][metric], abs=1e-4), metric
        assert r["b"] == pytest.approx(b["metrics"]["all"][metric], abs=1e-4), metric


def test_every_id_ranx_sees_has_one_width_whatever_the_file_names() -> None:
    """ranx compiles per id width: names of any length must give ids of ID_WIDTH, the
    same id for the same name in every call, and the gold file's id in qrels and run."""
    from qa.eval.metrics import ID_WIDTH, qrels_and_runs

    long_name = "Kommunal- og distriktsdepartementet – rundskriv H-5-2026 (høring).txt"
    rec = {
        "id": "q1",
        "source": long_name,
        "results": [
            {"rank": 1, "source": "a.txt", "has_answer": False, "has_span": False},
            {"rank": 2, "source": long_name, "has_answer": True, "has_span": True},
            {"rank": 3, "source": long_name, "has_answer": True, "has_span": False},
        ],
    }
    pairs = qrels_and_runs([rec])
    for qrels, run in pairs.values():
        ids = [d for q in (*qrels.values(), *run.values()) for d in q]
        assert {len(d) for d in ids} == {ID_WIDTH}
    fq, fr = pairs["file"]
    gold = next(iter(fq["q1"]))
    assert list(fr["q1"]).index(gold) == 1  # rank 2; rank 3's passage is a filler
    assert qrels_and_runs([rec])["file"][0] == fq
