"""The dense side: a FAISS index over L2-normalised passage vectors (inner product = cosine).

Which index, by corpus size (bench/README.md has the measurements behind each number):

* up to ``FLAT_MAX`` passages, flat: exact, and a query scans every vector in a few ms;
* above, IVF over 8-bit scalar-quantised vectors (``IVF<nlist>,SQ8``): a byte per
  dimension, a query scans ``nprobe`` of ``nlist`` lists, and it builds in minutes on
  two cores, which matters because every ``qa index`` run rebuilds the dense index.

HNSW (also over SQ8) can be chosen with ``QA_INDEX_TYPE=hnsw``: fast searches, but its
graph takes far longer to build on two cores than IVF's k-means.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

FLAT_MAX = 50_000
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
IVF_LIST_SIZE = 1_000  # about this many vectors per list: nlist = n / IVF_LIST_SIZE ...
IVF_MIN_LISTS = 64  # ... but never fewer lists than this (a small corpus is flat anyway)
IVF_TRAIN_PER_LIST = 64  # k-means sees this many vectors per list (FAISS wants >= 39)
IVF_NPROBE = 64
TYPES = ("flat", "hnsw", "ivf")


def choose_type(n: int, wanted: str = "auto") -> str:
    """The index type for ``n`` passages: the configured one, or by corpus size."""
    if wanted != "auto":
        return wanted
    return "flat" if n <= FLAT_MAX else "ivf"


def ivf_lists(n: int) -> int:
    """Lists for an IVF index of ``n`` vectors (each list can be trained: n >= 39 * nlist)."""
    return max(1, min(max(IVF_MIN_LISTS, n // IVF_LIST_SIZE), n // 39))


def build(vectors: np.ndarray, index_type: str = "auto") -> faiss.Index:
    """A FAISS index holding ``vectors`` as rows 0..n-1."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    kind = choose_type(n, index_type)
    if kind == "flat":
        index: faiss.Index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWSQ(
            dim, faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT
        )
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.train(_sample(vectors, 100_000))
    elif kind == "ivf":
        nlist = ivf_lists(n)
        index = faiss.index_factory(dim, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        index.train(_sample(vectors, nlist * IVF_TRAIN_PER_LIST))
    else:
        raise ValueError(f"unknown index type {kind!r}: use auto, {', '.join(TYPES)}")
    if n:
        index.add(vectors)
    tune(index)
    return index


def _sample(vectors: np.ndarray, m: int) -> np.ndarray:
    """``m`` rows picked at random (seeded: the same corpus gives the same index)."""
    if len(vectors) <= m:
        return vectors
    rows = np.random.default_rng(0).choice(len(vectors), m, replace=False)
    return vectors[np.sort(rows)]


def tune(index: faiss.Index) -> None:
    """Search-time parameters (not stored in the file by FAISS for every type)."""
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = HNSW_EF_SEARCH
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = min(IVF_NPROBE, ivf.nlist)


def describe(index: faiss.Index) -> str:
    """Type and search parameters, e.g. ``IVF1000,SQ8 nprobe=16`` (for logs and the bench)."""
    if isinstance(index, faiss.IndexHNSW):
        return f"HNSW{index.hnsw.nb_neighbors(1)},SQ8 efSearch={index.hnsw.efSearch}"
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        return f"IVF{ivf.nlist},SQ8 nprobe={ivf.nprobe}"
    return "Flat"


def save(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load(path: Path) -> faiss.Index:
    index = faiss.read_index(str(path))
    tune(index)
    return index


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, scores) of shape (n_queries, k'), k' = min(k, size); -1 ids dropped by callers."""
    k = min(k, index.ntotal)
    if k == 0:
        empty = np.empty((len(queries), 0))
        return empty.astype(np.int64), empty.astype(np.float32)
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return ids, scores
