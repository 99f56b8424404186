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

Two types exist only here, for docs/scaling.md (what a corpus of 10M passages would need):
``ivfpq`` is ``IVF<n/1000>,PQ48`` (48 bytes a vector instead of SQ8's 384, same lists and
nprobe as ``ivf``); ``ivfpq_rr`` is the same index asked for ``RERANK`` candidates that are
then re-scored exactly against the float vectors, which the service already keeps on disk
(``embeddings.npy``, mmap-able), so its memory row counts the PQ index only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import Context, median, ms

NOISE = 0.5  # times the corpus' own spread: median cosine to the seed passage ~0.9
CHUNK = 100_000
LATENCY_QUERIES = 100  # timed one by one (flat at 1M: ~0.1-0.2 s each); recall uses all
TYPES = ("flat", "hnsw", "ivf")
PQ_BYTES = 48  # PQ sub-quantisers of 8 bits: 384 / 48 = 8 dimensions each
PQ_TRAIN_MIN = 20_000  # PQ's k-means wants >= 39 * 256 points per sub-quantiser
RERANK = 100  # ivfpq_rr: candidates re-scored exactly


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


def _build(data: np.ndarray, kind: str):  # type: ignore[no-untyped-def]
    """The service's index for ``kind`` (``qa.index.dense.build``), or the IVF-PQ one."""
    import faiss

    from qa.index import dense

    if kind not in ("ivfpq", "ivfpq_rr"):
        return dense.build(data, kind)
    nlist = dense.ivf_lists(len(data))
    index = faiss.index_factory(
        data.shape[1], f"IVF{nlist},PQ{PQ_BYTES}", faiss.METRIC_INNER_PRODUCT
    )
    sample = max(nlist * dense.IVF_TRAIN_PER_LIST, PQ_TRAIN_MIN)
    index.do_polysemous_training = False  # type: ignore[attr-defined]  # an IndexIVFPQ; polysemous codes take minutes
    index.train(dense._sample(data, sample))
    index.add(data)
    dense.tune(index)
    return index


def _search(index, data: np.ndarray, queries: np.ndarray, k: int, rerank: bool):  # type: ignore[no-untyped-def]
    """(scores, ids) of the top ``k``; with ``rerank``, ``RERANK`` candidates re-scored
    against the float vectors (what a PQ index with vectors on disk would do)."""
    if not rerank:
        return index.search(queries, k)
    _, cand = index.search(queries, RERANK)
    out = np.empty((len(queries), k), dtype=np.int64)
    scores = np.empty((len(queries), k), dtype=np.float32)
    for i, (q, c) in enumerate(zip(queries, cand, strict=True)):
        c = c[c >= 0]
        sims = data[c] @ q
        top = np.argsort(-sims, kind="stable")[:k]
        out[i, : len(top)], scores[i, : len(top)] = c[top], sims[top]
    return scores, out


def _latency(
    index: Any, data: np.ndarray, queries: np.ndarray, k: int, threads: int, rerank: bool
) -> float:
    import faiss

    faiss.omp_set_num_threads(threads)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        _search(index, data, q[None, :], k, rerank)
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

    rows = []
    truth: Any = None
    pq: tuple = ()  # (index, build seconds): ivfpq_rr searches the ivfpq index
    for kind in ("flat", *[t for t in types if t != "flat"]):
        faiss.omp_set_num_threads(2)
        rerank = kind == "ivfpq_rr"
        t0 = time.perf_counter()
        index = pq[0] if rerank and pq else _build(data, kind)
        build_s = pq[1] if rerank and pq else time.perf_counter() - t0
        pq = (index, build_s) if kind == "ivfpq" else pq
        _, found = _search(index, data, queries, k, rerank)
        if kind == "flat":
            truth = found
        row = {
            "n": len(data),
            "type": kind,
            "params": _describe(index, kind),
            "build_s": round(build_s, 2),
            "memory_mb": round(len(faiss.serialize_index(index)) / 2**20, 1),
            "search_ms_1t": ms(_latency(index, data, queries[:LATENCY_QUERIES], k, 1, rerank)),
            "search_ms_2t": ms(_latency(index, data, queries[:LATENCY_QUERIES], k, 2, rerank)),
            "recall@10": round(_recall(found, truth), 4),
        }
        faiss.omp_set_num_threads(2)
        if kind in types:
            rows.append(row)
        print(f"  scale {row}", flush=True)
        del index
    return rows


def _describe(index, kind: str) -> str:  # type: ignore[no-untyped-def]
    from qa.index import dense

    if kind not in ("ivfpq", "ivfpq_rr"):
        return dense.describe(index)
    ivf = dense.faiss.extract_index_ivf(index)
    more = f" re-rank {RERANK} exact" if kind == "ivfpq_rr" else ""
    return f"IVF{ivf.nlist},PQ{PQ_BYTES} nprobe={ivf.nprobe}{more}"


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
    stats: dict[str, Any] = {}
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


def lexical(index_dir: Path, questions: list[str], sizes: tuple[int, ...]) -> list[dict]:
    """BM25 (``qa.index.lexical``'s bm25s settings) over ``n`` passages: the NorQuAD
    passages' tokens repeated to ``n`` documents (the same postings shape, each term's
    posting list n / 1,321 times longer; the idf of every term is unchanged). Median ms of
    one ``LexicalIndex.search`` (k=30) over the questions, and the index's bytes."""
    import bm25s

    from qa.index.lexical import LexicalIndex, tokenize
    from qa.index.store import read_jsonl

    base = [tokenize(r["text"]) or ["\u2205"] for r in read_jsonl(index_dir / "passages.jsonl")]
    rows = []
    for n in sizes:
        corpus = [base[i % len(base)] for i in range(n)]
        t0 = time.perf_counter()
        bm25 = bm25s.BM25()
        bm25.index(corpus, show_progress=False)
        build_s = time.perf_counter() - t0
        del corpus
        index = LexicalIndex(bm25, n)
        times = []
        for q in questions[:LATENCY_QUERIES]:
            t0 = time.perf_counter()
            index.search(q, 30)
            times.append(time.perf_counter() - t0)
        sc = bm25.scores
        size = sum(sc[key].nbytes for key in ("data", "indices", "indptr"))
        row = {
            "n": n,
            "type": "bm25",
            "build_s": round(build_s, 2),
            "memory_mb": round(size / 2**20, 1),
            "search_ms_1t": ms(median(times)),
        }
        print(f"  lexical {row}", flush=True)
        rows.append(row)
        del bm25, index
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.scale --sizes 1000000 --types ivf,ivfpq,ivfpq_rr``: this part alone,
    seeded from an existing NorQuAD index's stored vectors (``--index``, default the bench's
    cached one) without bringing that index up to date first (the vectors only seed the
    synthetic corpora, so the build's model engine does not matter)."""
    import argparse
    import json
    import tempfile

    from bench.common import ROOT, machine

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--sizes", default="1000000")
    p.add_argument("--types", default="ivf,ivfpq,ivfpq_rr")
    p.add_argument("--index", type=Path, default=None)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    p.add_argument("--lexical", action="store_true", help="BM25 at --sizes instead of FAISS")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="qa-scale-") as tmp:
        ctx = Context(quick=False, workdir=Path(tmp))
        ctx.index_dir = args.index or Path(ctx.settings().cache_dir) / "bench" / "norquad"
        sizes = tuple(int(x) for x in args.sizes.split(","))
        started = time.strftime("%Y-%m-%dT%H:%M:%S")
        if args.lexical:
            questions = [q["question"] for q in ctx.questions()]
            result = {"rows": lexical(ctx.index_dir / "current", questions, sizes)}
        else:
            result = run(ctx, sizes, tuple(args.types.split(",")))
    out: dict[str, Any] = {"command": "python -m bench.scale " + " ".join(argv or [])}
    out["started"] = started
    out |= {"machine": machine(), "scale": result}
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
