"""The judgements on a run: every figure from one ranx path, CI floors, and paired comparison.

ranx is fed one qrels/run pair per question: the "documents" are source files (hit, MRR,
nDCG, recall) or answer-bearing passages (answer@k). A file's rank is the rank of its first
passage in the hit list; later passages of the same file become non-relevant fillers so that
ranks stay the passage ranks the user sees.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

CURVE_K = 10  # recall@1..CURVE_K is plotted; MRR and nDCG are cut at 10 too
LANGS = ("nb", "nn", "en")
FLOOR_METRICS = {"hit", "mrr", "ndcg", "recall", "answer", "answer-span", "span|answer"}
#: Of the questions whose first result holds the answer, the share whose answer span does.
SHARE = "span|answer@1"
_RANX = {"hit": "hit_rate", "mrr": "mrr", "ndcg": "ndcg", "recall": "recall"}

# ranx input: {qid: {doc: relevance}} and {qid: {doc: score}}, for the "file" and "answer" runs
Pairs = dict[str, tuple[dict[str, dict[str, int]], dict[str, dict[str, float]]]]

#: Every document id ranx is given has this many characters. ranx turns ids into fixed-width
#: numpy strings and numba compiles its functions once per width (about 25 s on 2 cores):
#: with file names as ids, each corpus whose longest name differs compiled again, and the
#: set-up warm-up (``qa.eval.warm``) could not cover them.
ID_WIDTH = 8
ANSWER = "ANSWER__"  # the answer-bearing passage (not hex, so never a file's id)


def _file_id(name: str) -> str:
    """A file's id: the same for the same name in every call (``compare_results`` pairs the
    qrels of one call with the run of another), hex so never a filler or ``ANSWER``."""
    return hashlib.blake2b(name.encode("utf-8"), digest_size=ID_WIDTH // 2).hexdigest()


def _filler(rank: int) -> str:
    """A non-relevant stand-in at ``rank`` (later passages of a file already listed)."""
    return f"#{rank:0{ID_WIDTH - 1}d}"


def metric_names(k: int) -> list[str]:
    """The reported metrics, in display order (``recall@k`` follows ``--k``)."""
    return [
        *("hit@1", "hit@5", "mrr@10", "ndcg@10", f"recall@{k}", "answer@1", "answer@5"),
        *("answer-span@1", "answer-span@5"),
    ]


def reported_names(k: int) -> list[str]:
    """What the report shows and floors may name: the ranx metrics and the span share."""
    return [*metric_names(k), SHARE]


def ranx_metric(metric: str) -> tuple[str, str]:
    """Our metric name -> (which run, ranx metric)."""
    name, cut = metric.split("@")
    if name in ("answer", "answer-span"):  # the passage, or its answer span, holds it
        return ("answer" if name == "answer" else "span"), f"hit_rate@{cut}"
    return "file", f"{_RANX[name]}@{cut}"


def _by_run(metrics: Iterable[str]) -> dict[str, dict[str, str]]:
    """{which run: {our metric: ranx metric}}, runs without a wanted metric left out."""
    out: dict[str, dict[str, str]] = {}
    for m in metrics:
        which, theirs = ranx_metric(m)
        out.setdefault(which, {})[m] = theirs
    return {w: out[w] for w in ("file", "answer", "span") if w in out}


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's uint64 -> int64 cast notice
        yield


def qrels_and_runs(records: list[dict]) -> Pairs:
    """File-level, answer-level and answer-span-level (qrels, run) as ranx dicts, for
    answerable records (a record from before answer spans has none that holds it)."""
    fq: dict = {}
    fr: dict = {}
    aq: dict = {}
    ar: dict = {}
    sr: dict = {}
    for rec in records:
        qid, rows, n = rec["id"], rec["results"], len(rec["results"])
        fq[qid], aq[qid] = {_file_id(rec["source"]): 1}, {ANSWER: 1}
        files: dict[str, float] = {}
        answers: dict[str, float] = {}
        spans: dict[str, float] = {}
        for r in rows:
            score = float(n - r["rank"] + 1)  # distinct, decreasing: ranx keeps our order
            doc = _file_id(r["source"])
            files[doc if doc not in files else _filler(r["rank"])] = score
            first = r["has_answer"] and ANSWER not in answers
            answers[ANSWER if first else _filler(r["rank"])] = score
            first = r.get("has_span", False) and ANSWER not in spans
            spans[ANSWER if first else _filler(r["rank"])] = score
        fr[qid], ar[qid], sr[qid] = files, answers, spans
    return {"file": (fq, fr), "answer": (aq, ar), "span": (aq, sr)}


def ranx_scores(records: list[dict], metrics: list[str]) -> dict[str, dict[str, float]]:
    """Per-question scores {metric: {qid: value}} computed by ranx (answerable records only)."""
    from ranx import Qrels, Run, evaluate

    recs = [r for r in records if r["answerable"]]
    out: dict[str, dict[str, float]] = {m: {} for m in metrics}
    if not recs:
        return out
    pairs = qrels_and_runs(recs)
    for which, wanted in _by_run(metrics).items():
        qrels, run_dict = pairs[which]
        run = Run(run_dict)
        with _quiet():  # two metrics at least: with one, ranx returns a bare float
            evaluate(
                Qrels(qrels),
                run,
                sorted(set(wanted.values()) | {"hit_rate@1"}),
                make_comparable=True,
            )
        for ours, theirs in wanted.items():
            out[ours] = {q: float(v) for q, v in run.scores[theirs].items()}
    return out


def _mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return float(np.mean(vals)) if vals else None


def _first_rank(rows: list[dict], key: str) -> int | None:
    return next((r["rank"] for r in rows if r[key]), None)


def summarise(records: list[dict], k: int) -> dict[str, Any]:
    """Metrics overall and per language, the recall curve, latency, unanswerable questions,
    and the questions (new dicts: ranks and scores added, ``records`` left as they were)."""
    names = metric_names(k)
    curve_names = [f"recall@{i}" for i in range(1, CURVE_K + 1)]
    per_q = ranx_scores(records, sorted(set(names + curve_names)))
    questions = [
        rec
        | {
            "file_rank": _first_rank(rec["results"], "from_gold"),
            "answer_rank": _first_rank(rec["results"], "has_answer"),
            "scores": {m: per_q[m][rec["id"]] for m in names} if rec["answerable"] else {},
        }
        for rec in records
    ]
    langs = ["all"] + [g for g in LANGS if any(r["lang"] == g for r in records)]
    langs += sorted({r["lang"] for r in records} - set(langs))
    metrics: dict[str, dict] = {}
    curve: dict[str, list] = {}
    for lang in langs:
        ids = [r["id"] for r in records if r["answerable"] and lang in ("all", r["lang"])]
        metrics[lang] = {"n": len(ids)} | {m: _mean(per_q[m][i] for i in ids) for m in names}
        wanted = set(ids)
        metrics[lang][SHARE] = _span_share(r for r in records if r["id"] in wanted)
        curve[lang] = [_mean(per_q[m][i] for i in ids) for m in curve_names]
    lat = np.array([r["latency_ms"] for r in records], dtype=float)
    latency = {"n": int(lat.size)} | (
        {f"p{p}": float(np.percentile(lat, p)) for p in (50, 95, 99)}
        | {"mean": float(lat.mean()), "max": float(lat.max())}
        if lat.size
        else {}
    )
    return {
        "k": k,
        "n_questions": len(records),
        "n_answerable": sum(r["answerable"] for r in records),
        "metrics": metrics,
        "recall_curve": curve,
        "latency_ms": latency,
        "unanswerable": _unanswerable(records),
        "questions": questions,
    }


def _span_share(records: Iterable[dict]) -> float | None:
    """Among questions whose first result holds the answer, the share whose answer span
    does too (None: no first result holds it)."""
    firsts = [r["results"][0] for r in records if r["results"] and r["results"][0]["has_answer"]]
    return _mean(float(r.get("has_span", False)) for r in firsts)


def _top(rec: dict) -> float | None:
    return rec["results"][0]["score"] if rec["results"] else None


def _unanswerable(records: list[dict]) -> dict[str, Any]:
    """What questions without an answer got, against the top scores of answerable ones.

    A retriever that cannot say "no answer" is only as good as this gap: if unanswerable
    questions score like answerable ones, no score threshold will separate them.
    """
    tops = [s for r in records if r["answerable"] if (s := _top(r)) is not None]
    rows = [
        {
            "id": r["id"],
            "question": r["question"],
            "lang": r["lang"],
            "top_score": _top(r),
            "top_source": r["results"][0]["source"] if r["results"] else None,
        }
        for r in records
        if not r["answerable"]
    ]
    scores = [r["top_score"] for r in rows if r["top_score"] is not None]
    return {
        "n": len(rows),
        "questions": rows,
        "top_score_mean": _mean(scores),
        "top_score_max": max(scores, default=None),
        "answerable_top_score_median": float(np.median(tops)) if tops else None,
        "answerable_top_score_min": min(tops, default=None),
    }


def failed(result: dict) -> list[dict]:
    """Answerable questions with no passage of the gold file, or none with the answer, in top 5."""
    return [
        r
        for r in result["questions"]
        if r["answerable"]
        and (r["scores"].get("hit@5", 0) < 1 or r["scores"].get("answer@5", 0) < 1)
    ]


def parse_floor(spec: str) -> tuple[str, str, float]:
    """``hit@5=0.9`` or ``en:hit@5=0.8`` -> (group, metric, floor)."""
    try:
        left, value = spec.split("=", 1)
        group, _, metric = left.rpartition(":")
        name, cut = metric.strip().split("@")
        if name not in FLOOR_METRICS or not cut.isdigit():
            raise ValueError
        return (group.strip() or "all", metric.strip(), float(value))
    except ValueError as exc:
        raise ValueError(
            f"bad floor {spec!r}: expected METRIC=VALUE, e.g. hit@5=0.9 or en:answer@5=0.8"
        ) from exc


def check_floors(result: dict, floors: list[tuple[str, str, float]]) -> list[str]:
    """One message per floor the result falls below (or cannot show it meets)."""
    failures = []
    for group, metric, floor in floors:
        value = result["metrics"].get(group, {}).get(metric)
        if value is None:
            failures.append(f"{group}:{metric} is not in the results (floor {floor})")
        elif value < floor:
            failures.append(f"{group}:{metric} = {value:.3f} is below the floor {floor}")
    return failures


def compare_results(a: dict, b: dict, stat_test: str = "fisher") -> dict[str, Any]:
    """Paired significance test (ranx.compare) of two results.json files on shared questions."""
    from ranx import Qrels, Run, compare

    names = metric_names(min(a["k"], b["k"]))
    by_id = {r["id"]: r for r in b["questions"] if r["answerable"]}
    shared = [r for r in a["questions"] if r["answerable"] and r["id"] in by_id]
    if not shared:
        raise ValueError("the two results have no answerable question in common")
    name_a, name_b = a.get("name") or "A", b.get("name") or "B"
    if name_a == name_b:
        name_a, name_b = f"A: {name_a}", f"B: {name_b}"
    pairs_a = qrels_and_runs(shared)
    pairs_b = qrels_and_runs([by_id[r["id"]] for r in shared])
    rows: dict[str, dict] = {}
    for which, wanted in _by_run(names).items():
        qrels, run_a = pairs_a[which]
        with _quiet():
            report = compare(
                Qrels(qrels),
                [Run(run_a, name=name_a), Run(pairs_b[which][1], name=name_b)],
                sorted(set(wanted.values())),
                stat_test=stat_test,
                rounding_digits=4,
                make_comparable=True,
            ).to_dict()
        for ours, theirs in wanted.items():
            va = report[name_a]["scores"][theirs]
            vb = report[name_b]["scores"][theirs]
            p = float(report[name_a]["comparisons"][name_b][theirs])
            # a t-test on identical scores is nan: no difference to test
            rows[ours] = {"a": va, "b": vb, "delta": vb - va, "p": None if p != p else p}
    return {
        "a": name_a,
        "b": name_b,
        "n": len(shared),
        "test": stat_test,
        "rows": {m: rows[m] for m in names},
    }
