"""The dense side: a FAISS index over L2-normalised passage vectors (inner product = cosine).

Flat search is exact and fast enough for small corpora; past ``FLAT_MAX`` passages the
service switches to HNSW over 8-bit scalar-quantised vectors, which keeps search in
milliseconds and memory near a byte per dimension.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

FLAT_MAX = 50_000
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 64
IVF_NPROBE = 16


def choose_type(n: int, wanted: str = "auto") -> str:
    """The index type for ``n`` passages: the configured one, or by corpus size."""
    if wanted != "auto":
        return wanted
    return "flat" if n <= FLAT_MAX else "hnsw"


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
        index.train(vectors)
    elif kind == "ivf":
        nlist = max(1, min(65536, int(4 * np.sqrt(max(n, 1)))))
        index = faiss.index_factory(dim, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
    else:
        raise ValueError(f"unknown index type {kind!r}: use auto, flat, hnsw or ivf")
    if n:
        index.add(vectors)
    tune(index)
    return index


def tune(index: faiss.Index) -> None:
    """Search-time parameters (not stored in the file by FAISS for every type)."""
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = HNSW_EF_SEARCH
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = IVF_NPROBE


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
