"""Tune the answer span's fixed rule on NorQuAD's training split (never on validation).

    python eval/tune_span.py [--index /tmp/qa-train-index]

Builds (or reuses) an index of ../shared/norquad-train/sources with the configured model,
asks every training question once, and for each first result that holds the answer scores
the sentence choice for a grid of the evidence ``Weights`` and ``PAIR_MARGIN``: the share
whose span holds the answer, and the mean span length (a span as long as the passage would
hold it always, and help nobody). Prints the baselines, the shipped rule and the best
settings of the grid; pick by hand (the share at a like span length), set in
qa/answer/span.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import itertools  # noqa: E402

from qa.answer.span import PAIR_MARGIN, WEIGHTS, Weights, pick, scores, trimmed  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.embedding import load_embedder  # noqa: E402
from qa.index import build_index  # noqa: E402
from qa.index.lexical import tokenize  # noqa: E402
from qa.retriever import Retriever  # noqa: E402

TRAIN = ROOT.parent / "shared" / "norquad-train"


def _norm(text: str) -> str:
    return " ".join(text.split())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, default=Path("/tmp/qa-train-index"))
    ap.add_argument("--limit", type=int, default=0, help="first N questions only")
    ap.add_argument("--top", type=int, default=15, help="grid settings printed")
    args = ap.parse_args()
    settings = Settings(sources_dir=TRAIN / "sources", index_dir=args.index)
    embedder = load_embedder(settings)
    report = build_index(settings, embedder, progress=True)
    print(
        f"index: {report.passages} passages, {report.sentences} sentences embedded, "
        f"{report.seconds:.1f} s of which sentences {report.sentence_seconds:.1f} s",
        file=sys.stderr,
    )
    retriever = Retriever.load(settings.index_dir, settings, embedder)
    table = retriever._index.sentences
    assert table is not None
    rows = [json.loads(line) for line in (TRAIN / "train.jsonl").read_text().splitlines()]
    rows = rows[: args.limit] if args.limit else rows
    vectors = embedder.embed_queries([r["question"] for r in rows])
    cases = []  # (text, spans, sims, terms, answer, question)
    for row, vector in zip(rows, vectors, strict=True):
        result = retriever.search_vector(row["question"], vector, 5)
        if not result.hits:
            continue
        p = result.hits[0].passage
        answer = _norm(row["answer"])
        if p.source != row["source"] or answer not in _norm(p.text):
            continue
        text = retriever.source_text(p.source) or ""
        ids, clipped = table.within(p.source, p.start, p.end)
        kept = [(int(i), sp) for i, sp in zip(ids, clipped, strict=True) if trimmed(text, [sp])]
        spans = [trimmed(text, [sp])[0] for _, sp in kept]
        sims = np.asarray(table.vectors[[i for i, _ in kept]], np.float32) @ vector
        terms = retriever._lexical.idf(row["question"])
        cases.append((text, spans, sims, terms, answer, row["question"]))
    print(f"{len(cases)} first results hold the answer (of {len(rows)} questions)")

    def judge(method: str, weights: Weights, margin: float) -> tuple[float, float]:
        held, length = 0, 0
        for text, spans, sims, terms, answer, question in cases:
            values = scores(method, text, spans, terms, tokenize, sims, question, weights)
            s, e = pick(spans, values, margin, pairs=margin >= 0)
            held += answer in _norm(text[s:e])
            length += e - s
        return held / len(cases), length / len(cases)

    for method, weights, margin in (
        ("first", WEIGHTS, -1.0),
        ("words", WEIGHTS, -1.0),
        ("vectors", WEIGHTS, PAIR_MARGIN),
    ):
        share, chars = judge(method, weights, margin)
        print(f"{method:8} (shipped) share {share:.3f}  mean chars {chars:.0f}")
    grid = []
    for t, p, k, n, m in itertools.product(
        (0.0, 0.05, 0.1), (0.0, 0.1, 0.2, 0.3), (0.0, 0.05, 0.1), (0.0, 0.2), (0.0, 0.02, 0.03)
    ):
        share, chars = judge("vectors", Weights(t, p, k, n), m)
        grid.append((share, chars, f"terms={t} prefixes={p} kind={k} neighbour={n} margin={m}"))
    for share, chars, name in sorted(grid, reverse=True)[: args.top]:
        print(f"vectors {name:55} share {share:.3f}  chars {chars:.0f}")


if __name__ == "__main__":
    main()
