"""Asking a gold question file: through the same Retriever the API serves, or ``--url``.

The records it makes (what came back for each question, marked against the gold answer) are
judged in ``metrics`` and printed in ``report``; they are never changed after this step.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from qa.eval.metrics import CURVE_K, summarise
from qa.types import Hit, SearchResult

if TYPE_CHECKING:
    from qa.access import Caller, Filters
    from qa.retriever import Retriever

log = logging.getLogger(__name__)


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
    """What evaluation needs: a Retriever or ``http.HttpSearcher``."""

    def search(self, query: str, k: int = 5) -> SearchResult: ...


@dataclass(frozen=True)
class Scoped:
    """A Retriever searched as one caller with filters (``qa eval --groups``): quality for
    what that caller may see."""

    retriever: Retriever
    caller: Caller | None
    filters: Filters

    def search(self, query: str, k: int = 5) -> SearchResult:
        return self.retriever.search(query, k, self.caller, self.filters)


def _norm(text: str) -> str:
    return " ".join(text.split())


def _result_rows(q: GoldQuestion, hits: list[Hit]) -> list[dict]:
    """One row a result: the passage, its answer span, and whether each holds the answer."""
    want = _norm(q.answer) if q.answerable and q.answer else None
    rows = []
    for pos, h in enumerate(hits, 1):
        p = h.passage
        gold = q.answerable and p.source == q.source
        has = bool(gold and want and want in _norm(p.text))
        a = p.start if h.answer_start is None else h.answer_start
        b = p.end if h.answer_end is None else h.answer_end
        in_span = bool(has and want and want in _norm(p.text[a - p.start : b - p.start]))
        info = {"from_gold": gold, "has_answer": has, "has_span": in_span}
        span = {"answer_start": a, "answer_end": b}
        rows.append({"rank": pos, "score": float(h.score)} | asdict(p) | span | info)
    return rows


def run_questions(
    searcher: Searcher,
    questions: list[GoldQuestion],
    depth: int,
    progress: Callable[[int], None] | None = None,
) -> list[dict]:
    """Ask every question, one timed ``search`` each (after one warm-up query), as a user of
    the API asks: its results are scored and its time is the question's latency.
    """
    texts = [q.question for q in questions]
    if texts:
        searcher.search(texts[0], depth)  # warm-up: lazy loads, caches
    results: list[SearchResult] = []
    latencies: list[float] = []
    for text in texts:
        t0 = time.perf_counter()
        results.append(searcher.search(text, depth))
        latencies.append((time.perf_counter() - t0) * 1000)
        if progress:
            progress(1)
    records = []
    for q, res, ms in zip(questions, results, latencies, strict=True):
        records.append(
            {k: v for k, v in asdict(q).items() if k != "answer_start"}
            | {
                "detected_language": res.language,
                "latency_ms": round(ms, 3),
                "results": _result_rows(q, res.hits[:depth]),
            }
        )
    return records


def evaluate_searcher(
    searcher: Searcher,
    questions: list[GoldQuestion],
    k: int = 10,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run the gold questions and summarise; the dict is what ``results.json`` holds.

    ranx (import, numba's cached and uncacheable code: about 9 s in a fresh process) is
    made ready on another thread while the questions run, which mostly wait in the model.
    """
    ready = threading.Thread(target=_metrics_ready, name="ranx-warm", daemon=True)
    ready.start()
    records = run_questions(searcher, questions, max(k, CURVE_K), progress)
    ready.join()
    return summarise(records, k)


def _metrics_ready() -> None:
    """Load and compile what ``summarise`` runs, on a few made-up questions."""
    try:
        from qa.eval.warm import warm

        warm(questions=8)
    except Exception:  # the real summary will say what is wrong
        log.debug("ranx warm-up failed", exc_info=True)
