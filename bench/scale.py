"""Scale: FAISS search latency, recall@10 against flat, memory and build time by corpus size.

Synthetic corpora, built the way the service builds its dense index (``qa.index.dense.build``).
Uniform random vectors have no neighbourhoods and make every ANN index look bad, so the
vectors are perturbations of real ones: each is a real NorQuAD passage embedding plus
Gaussian noise shaped like the passage embeddings' own covariance (their principal
directions and spread), times ``NOISE``, then L2-normalised. Queries are the real NorQuAD
question embeddings (``query:`` prompt), so no query is in the data.

Latency is one query per ``search`` call (what the service does), median over 100 queries,
with FAISS limited to 1 and to 2 threads; recall@10 is over 200 queries (50 with --quick).
Memory is the serialised index size (what the index holds in memory: codes, links or
lists, ids). Build time is ``qa.index.dense.build`` with FAISS on 2 threads.
"""

from __future__ import annotations

import time

import numpy as np

from bench.common import Context, median, ms

NOISE = 0.5  # times the corpus' own spread: median cosine to the seed passage ~0.9
CHUNK = 100_000
LATENCY_QUERIES = 100  # timed one by one (flat at 1M: ~0.1-0.2 s each); recall uses all
TYPES = ("flat", "hnsw", "ivf")


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def synthetic(seeds: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` normalised vectors around ``seeds`` with noise along their principal axes."""
    mean = seeds.mean(axis=0)
    _, s, vt = np.linalg.svd(seeds - mean, full_matrices=False)
    shape = ((s / np.sqrt(len(seeds)))[:, None] * vt).astype(np.float32)  # axes times spread
    out = np.empty((n, seeds.shape[1]), dtype=np.float32)
    for lo in range(0, n, CHUNK):
        m = min(CHUNK, n - lo)
        centre = seeds[rng.integers(0, len(seeds), m)]
        noise = rng.standard_normal((m, len(s)), dtype=np.float32) @ shape
        out[lo : lo + m] = _normalise(centre + NOISE * noise)
    return out


def _latency(index, queries: np.ndarray, k: int, threads: int) -> float:  # type: ignore[no-untyped-def]
    import faiss

    faiss.omp_set_num_threads(threads)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q[None, :], k)
        times.append(time.perf_counter() - t0)
    return median(times)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth, strict=True)]))


def measure(
    data: np.ndarray, queries: np.ndarray, types: tuple[str, ...], k: int = 10
) -> list[dict]:
    """One row per index type: build time, memory, latency at 1 and 2 threads, recall@k."""
    import faiss

    from qa.index import dense

    rows = []
    truth = None
    for kind in ("flat", *[t for t in types if t != "flat"]):
        faiss.omp_set_num_threads(2)
        t0 = time.perf_counter()
        index = dense.build(data, kind)
        build_s = time.perf_counter() - t0
        _, found = index.search(queries, k)
        if kind == "flat":
            truth = found
        row = {
            "n": len(data),
            "type": kind,
            "params": dense.describe(index),
            "build_s": round(build_s, 2),
            "memory_mb": round(len(faiss.serialize_index(index)) / 2**20, 1),
            "search_ms_1t": ms(_latency(index, queries[:LATENCY_QUERIES], k, 1)),
            "search_ms_2t": ms(_latency(index, queries[:LATENCY_QUERIES], k, 2)),
            "recall@10": round(_recall(found, truth), 4),
        }
        faiss.omp_set_num_threads(2)
        if kind in types:
            rows.append(row)
        print(f"  scale {row}", flush=True)
        del index
    return rows


def seeds_and_queries(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """Real passage embeddings (from the NorQuAD index) and question embeddings."""
    index_dir = ctx.norquad_index()
    seeds = np.load(index_dir / "current" / "embeddings.npy").astype(np.float32)
    questions = [q["question"] for q in ctx.questions()]
    return seeds, ctx.embedder.embed_queries(questions).astype(np.float32)


def run(ctx: Context, sizes: tuple[int, ...] | None = None, types: tuple[str, ...] = TYPES) -> dict:
    """Rows for every size and type; the data of each size is made fresh (seeded)."""
    sizes = sizes or ((2_000, 20_000) if ctx.quick else (10_000, 100_000, 1_000_000))
    seeds, queries = seeds_and_queries(ctx)
    n_queries = 50 if ctx.quick else 200
    queries = queries[:n_queries]
    rng = np.random.default_rng(0)
    rows: list[dict] = []
    stats = {}
    for n in sizes:
        data = synthetic(seeds, n, rng)
        if not stats:
            sample = data[:2000]
            top = np.sort(queries @ data.T, axis=1)[:, ::-1]
            stats = {
                "noise": NOISE,
                "seed_passages": len(seeds),
                "queries": len(queries),
                "query_top1_cos_median": round(float(np.median(top[:, 0])), 3),
                "query_top10_cos_median": round(float(np.median(top[:, 9])), 3),
                "pairwise_cos_median": round(float(np.median(sample[:200] @ sample.T)), 3),
            }
        rows += measure(data, queries, types)
        del data
    return {"data": stats, "rows": rows}
