"""What the answer span adds to a query's latency, each method against none, one process.

    python eval/span_latency.py --index INDEX --gold GOLD [--n 150]

Single ``Retriever.search`` calls (k=5, as the API's default) after a warm-up, each method
in turn over the same questions, the rounds interleaved so that load from elsewhere on the
machine falls on every method alike; prints p50 and p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.config import Settings  # noqa: E402
from qa.embedding import load_embedder  # noqa: E402
from qa.retriever import Retriever  # noqa: E402

METHODS = ("none", "first", "words", "vectors", "query")
#: --methods default: the query-time embedding is seconds a query on a busy 2-core machine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--gold", type=Path, required=True)
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--methods", default="none,first,words,vectors", help=f"of {METHODS}")
    args = ap.parse_args()
    base = Settings(index_dir=args.index)
    embedder = load_embedder(base)
    lines = args.gold.read_text("utf-8").splitlines()[: args.n]
    questions = [json.loads(line)["question"] for line in lines if line.strip()]
    methods = ["none", *(m for m in args.methods.split(",") if m in METHODS and m != "none")]
    retrievers = {}
    for method in methods:
        s = base.model_copy(update={"answer_span": "first" if method == "none" else method})
        retrievers[method] = Retriever.load(args.index, s, embedder)
    retrievers["none"]._answer_spans = lambda *a: None  # type: ignore[method-assign]
    times: dict[str, list[float]] = {m: [] for m in methods}
    for r in retrievers.values():
        r.search(questions[0], 5)  # warm-up
    for _ in range(args.rounds):
        for q in questions:
            for method, r in retrievers.items():
                t0 = time.perf_counter()
                r.search(q, 5)
                times[method].append((time.perf_counter() - t0) * 1000)
    none = float(np.percentile(times["none"], 50))
    for method, ms in times.items():
        p50 = float(np.percentile(ms, 50))
        print(
            f"{method:8} p50 {p50:7.1f} ms  p95 {np.percentile(ms, 95):7.1f} ms  "
            f"(+{100 * (p50 - none) / none:.0f} % at p50)"
        )


if __name__ == "__main__":
    main()
