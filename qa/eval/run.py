"""Retrieval quality over a gold question file, through the same Retriever the API serves.

Every figure comes from ranx, fed with one qrels/run pair per question: the "documents" are
source files (hit, MRR, nDCG, recall) or answer-bearing passages (answer@k). A file's rank is
the rank of its first passage in the hit list; later passages of the same file become
non-relevant fillers so that ranks stay the passage ranks the user sees.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.types import Hit, SearchResult

CURVE_K = 10  # recall@1..CURVE_K is plotted; MRR and nDCG are cut at 10 too
BATCH = 64
LANGS = ("nb", "nn", "en")


def metric_names(k: int) -> list[str]:
    """The reported metrics, in display order (``recall@k`` follows ``--k``)."""
    return ["hit@1", "hit@5", "mrr@10", "ndcg@10", f"recall@{k}", "answer@1", "answer@5"]


@dataclass(frozen=True, slots=True)
class GoldQuestion:
    """One line of a gold file; ``answerable`` is False when the sources hold no answer."""

    id: str
    question: str
    lang: str
    source: str | None
    answer: str | None
    answer_start: int | None = None
    answerable: bool = True


def load_gold(path: Path) -> list[GoldQuestion]:
    """Read a JSON Lines gold file; ``answerable: false`` or no source marks unanswerable.

    A repeated id (NorQuAD's validation split has ten) becomes ``id#2``... with a warning:
    the question is kept, and ranx needs unique query ids.
    """
    out: list[GoldQuestion] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            qid, question = str(row["id"]), str(row["question"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a gold question ({exc})") from exc
        seen[qid] = seen.get(qid, 0) + 1
        if seen[qid] > 1:
            warnings.warn(
                f"{path}:{n}: id {qid!r} repeated, renamed {qid}#{seen[qid]}", stacklevel=2
            )
            qid = f"{qid}#{seen[qid]}"
        source, answer = row.get("source") or None, row.get("answer") or None
        answerable = bool(row.get("answerable", True)) and source is not None
        if answerable and answer is None:
            raise ValueError(f"{path}:{n}: answerable question {qid!r} has no answer")
        out.append(
            GoldQuestion(
                qid,
                question,
                str(row.get("lang", "und")),
                source,
                answer,
                row.get("answer_start"),
                answerable,
            )
        )
    return out


class Searcher(Protocol):
    """What evaluation needs: a Retriever, or the HTTP client below. ``search_batch`` optional."""

    def search(self, query: str, k: int = 5) -> SearchResult: ...


def _norm(text: str) -> str:
    return " ".join(text.split())


def _result_rows(q: GoldQuestion, hits: list[Hit]) -> list[dict]:
    want = _norm(q.answer) if q.answerable and q.answer else None
    rows = []
    for pos, h in enumerate(hits, 1):
        gold = q.answerable and h.passage.source == q.source
        has = bool(gold and want and want in _norm(h.passage.text))
        info = {"from_gold": gold, "has_answer": has}
        rows.append({"rank": pos, "score": float(h.score)} | asdict(h.passage) | info)
    return rows


def run_questions(
    searcher: Searcher,
    questions: list[GoldQuestion],
    depth: int,
    progress: Callable[[int], None] | None = None,
) -> list[dict]:
    """Ask every question; results from ``search_batch`` when there is one, latency from singles.

    A single ``search`` per question is always timed (after one warm-up query), since a batch
    hides the per-request cost a user of the API pays.
    """
    texts = [q.question for q in questions]
    if texts:
        searcher.search(texts[0], depth)  # warm-up: lazy loads, caches
    batch = getattr(searcher, "search_batch", None)
    results: list[SearchResult | None] = [None] * len(texts)
    if batch is not None:
        for lo in range(0, len(texts), BATCH):
            results[lo : lo + BATCH] = batch(texts[lo : lo + BATCH], depth)
    latencies: list[float] = []
    for i, text in enumerate(texts):
        t0 = time.perf_counter()
        single = searcher.search(text, depth)
        latencies.append((time.perf_counter() - t0) * 1000)
        if results[i] is None:
            results[i] = single
        if progress:
            progress(1)
    records = []
    for q, res, ms in zip(questions, results, latencies, strict=True):
        assert res is not None
        records.append(
            {k: v for k, v in asdict(q).items() if k != "answer_start"}
            | {
                "detected_language": res.language,
                "latency_ms": round(ms, 3),
                "results": _result_rows(q, res.hits[:depth]),
            }
        )
    return records


def _first_rank(rows: list[dict], key: str) -> int | None:
    return next((r["rank"] for r in rows if r[key]), None)


def qrels_and_runs(records: list[dict]) -> tuple[dict, dict, dict, dict]:
    """File-level and answer-level qrels/runs (ranx dicts) for the answerable records."""
    fq: dict = {}
    fr: dict = {}
    aq: dict = {}
    ar: dict = {}
    for rec in records:
        qid, rows, n = rec["id"], rec["results"], len(rec["results"])
        fq[qid], aq[qid] = {rec["source"]: 1}, {"ANSWER": 1}
        files: dict[str, float] = {}
        answers: dict[str, float] = {}
        for r in rows:
            score = float(n - r["rank"] + 1)  # distinct, decreasing: ranx keeps our order
            doc = r["source"] if r["source"] not in files else f"#{r['rank']}"
            files[doc] = score
            first = r["has_answer"] and "ANSWER" not in answers
            answers["ANSWER" if first else f"#{r['rank']}"] = score
        fr[qid], ar[qid] = files, answers
    return fq, fr, aq, ar


def ranx_metric(metric: str) -> tuple[str, str]:
    """Our metric name -> (which run, ranx metric)."""
    name, cut = metric.split("@")
    if name == "answer":
        return "answer", f"hit_rate@{cut}"
    return "file", {"hit": "hit_rate", "mrr": "mrr", "ndcg": "ndcg", "recall": "recall"}[
        name
    ] + f"@{cut}"


def ranx_scores(records: list[dict], metrics: list[str]) -> dict[str, dict[str, float]]:
    """Per-question scores {metric: {qid: value}} computed by ranx (answerable records only)."""
    from ranx import Qrels, Run, evaluate

    recs = [r for r in records if r["answerable"]]
    out: dict[str, dict[str, float]] = {m: {} for m in metrics}
    if not recs:
        return out
    fq, fr, aq, ar = qrels_and_runs(recs)
    pairs = {"file": (fq, fr), "answer": (aq, ar)}
    for which, (qrels, run_dict) in pairs.items():
        wanted = {m: ranx_metric(m)[1] for m in metrics if ranx_metric(m)[0] == which}
        if not wanted:
            continue
        run = Run(run_dict)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numba's uint64 -> int64 cast notice
            # two metrics at least: with one, ranx returns a bare float
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


def summarise(records: list[dict], k: int) -> dict[str, Any]:
    """Metrics overall and per language, the recall curve, latency, unanswerable questions."""
    names = metric_names(k)
    curve_names = [f"recall@{i}" for i in range(1, CURVE_K + 1)]
    per_q = ranx_scores(records, sorted(set(names + curve_names)))
    for rec in records:
        rec["file_rank"] = _first_rank(rec["results"], "from_gold")
        rec["answer_rank"] = _first_rank(rec["results"], "has_answer")
        rec["scores"] = {m: per_q[m][rec["id"]] for m in names} if rec["answerable"] else {}
    langs = ["all"] + [g for g in LANGS if any(r["lang"] == g for r in records)]
    langs += sorted({r["lang"] for r in records} - set(langs))
    metrics: dict[str, dict] = {}
    curve: dict[str, list] = {}
    for lang in langs:
        ids = [r["id"] for r in records if r["answerable"] and lang in ("all", r["lang"])]
        metrics[lang] = {"n": len(ids)} | {m: _mean(per_q[m][i] for i in ids) for m in names}
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
    }


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


def evaluate_searcher(
    searcher: Searcher,
    questions: list[GoldQuestion],
    k: int = 10,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run the gold questions and summarise; the dict is what ``results.json`` holds."""
    records = run_questions(searcher, questions, max(k, CURVE_K), progress)
    return summarise(records, k) | {"questions": records}
