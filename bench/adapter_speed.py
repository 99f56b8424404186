"""Speed with and without a LoRA adapter, side by side in one process (issue 16).

Base and adapter embedders alternate: passages/s over validation passages (more than the
light engine's small-job limit, so PyTorch embeds them) and ms per single question (the
ONNX query engine). The first round is a warm-up (lazy loads) and is reported apart.

    python -m bench.adapter_speed [--adapter eval/adapters/norquad-r8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bench.common import NORQUAD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--adapter", default="eval/adapters/norquad-r8")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--passages", type=int, default=320)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from qa.chunking import chunk_document
    from qa.config import Settings
    from qa.embedding import load_embedder
    from qa.sources import scan_sources

    engines = {
        name: load_embedder(Settings(model_adapter=adapter, _env_file=None))
        for name, adapter in (("base", "none"), ("adapter", args.adapter))
    }
    s = Settings(_env_file=None)
    docs, _ = scan_sources(NORQUAD / "sources", s.max_file_bytes)
    texts = [p.text for d in docs for p in chunk_document(d, s.chunk_size, s.chunk_overlap)]
    texts = texts[: args.passages]
    rows = [json.loads(line) for line in (NORQUAD / "gold.jsonl").open(encoding="utf-8")]
    questions = [r["question"] for r in rows[: args.queries]]
    out: dict[str, dict[str, list[float]]] = {
        n: {"passages_per_s": [], "ms_per_query": []} for n in engines
    }
    for _ in range(args.rounds):
        for name, e in engines.items():
            t0 = time.perf_counter()
            e.embed_passages(texts)
            out[name]["passages_per_s"].append(round(len(texts) / (time.perf_counter() - t0), 2))
            t0 = time.perf_counter()
            for q in questions:
                e.embed_queries([q])
            ms = 1000 * (time.perf_counter() - t0) / len(questions)
            out[name]["ms_per_query"].append(round(ms, 2))
    for name, e in engines.items():
        print(name, e.fingerprint, json.dumps(out[name]), "(first round: warm-up)")
    path = Path(__file__).parent / "results" / "adapter_speed.json"
    path.write_text(json.dumps({"adapter": args.adapter, "rounds": out}, indent=2) + "\n")


if __name__ == "__main__":
    main()
