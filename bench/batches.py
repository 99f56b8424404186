"""How big a model call should be: texts per call against padded tokens per call.

    python -m bench.batches [--rounds 2] [--out bench/results/batches.json]

NorQuAD's first answer-span sentences (in context, as the index embeds them: short, 10-130
tokens) and its first passages (the splitter's, about 165 tokens), embedded as passages by
the ONNX Runtime engine and by PyTorch (float32, or bfloat16 where the CPU has the units),
each with calls of at most 32 texts and no token limit (how every engine ran before
``QA_BATCH_TOKENS``) and with 512, 1024 and 2048 padded tokens a call. Settings alternate
within each round, so a neighbour's load hits all alike. Tokens per second count real
tokens, not padding.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import NORQUAD, load, machine, median

NO_LIMIT = 10**9
BUDGETS = (NO_LIMIT, 512, 1024, 2048)


def _texts(light: Any) -> dict[str, list[str]]:
    from qa.chunking import chunk_document
    from qa.config import Settings
    from qa.index.sentences import SentencePlan, in_context, title_of
    from qa.language import detect
    from qa.sources import scan_sources

    settings = Settings()
    docs, _ = scan_sources(NORQUAD / "sources", 10**8)
    sentences: list[str] = []
    for doc in docs[:12]:
        plan = SentencePlan()
        plan.add_new(doc.path, doc.text, detect(doc.text))
        title = title_of(doc.text)
        sentences += [in_context(title, doc.text[a:b]) for a, b in plan.spans[0]]

    def fits(text: str) -> bool:
        return light.count_tokens(text) <= light.max_tokens

    passages = [
        p.text
        for doc in docs[:60]
        for p in chunk_document(doc, settings.chunk_size, settings.chunk_overlap, fits)
    ]
    return {"sentences": sentences[:256], "passages": passages[:128]}


def run(rounds: int) -> dict:
    from qa.config import Settings
    from qa.embedding import load_embedder

    engine = load_embedder(Settings())
    engines = {"onnxruntime": engine.light, "torch": engine.heavy()}
    sets = _texts(engine.light)
    rates: dict[str, list[float]] = {}
    for r in range(rounds):
        for name, model in engines.items():
            model.embed_passages(sets["sentences"][:8])  # warm-up
            for kind, texts in sets.items():
                tokens = sum(model._lengths(texts, model.passage_prompt))
                for budget in BUDGETS if r % 2 == 0 else BUDGETS[::-1]:
                    model.batch_size, model.batch_tokens = 32, budget
                    t0 = time.perf_counter()
                    model.embed_passages(texts)
                    key = f"{name} {kind} {'32 texts' if budget == NO_LIMIT else budget}"
                    rates.setdefault(key, []).append(tokens / (time.perf_counter() - t0))
    return {
        "texts": {k: len(v) for k, v in sets.items()},
        "median_tokens": {
            k: float(np.median(engine.light._lengths(v, "passage: "))) for k, v in sets.items()
        },
        "tokens_per_s": {k: [round(x) for x in v] for k, v in rates.items()},
        "median_tokens_per_s": {k: round(median(v)) for k, v in rates.items()},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("bench/results/batches.json"))
    args = p.parse_args()
    started, before = time.strftime("%Y-%m-%dT%H:%M:%S"), load()
    result = run(args.rounds)
    info = machine() | {"loadavg_start": before, "loadavg_end": load()}
    out = {"command": "python -m bench.batches", "started": started, "machine": info}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out | result, indent=1) + "\n", encoding="utf-8")
    for key, rate in result["median_tokens_per_s"].items():
        print(f"{key:40s} {rate:6d} tokens/s")


if __name__ == "__main__":
    main()
