"""The dense side: a FAISS index over L2-normalised passage vectors (inner product = cosine).

Which index, by corpus size (measured in bench/README.md, 384-d, 2 cores):

* up to ``FLAT_MAX`` passages, flat: exact, and one query scans every vector (about
  3 ms at 50k on one thread, 5-6 ms at 100k, 50-60 ms and 1.5 GB at 1M);
* above, IVF over 8-bit scalar-quantised residuals (``IVF<n/1000>,SQ8``, ``nprobe=64``):
  a byte per dimension (375 MB at 1M), 3 ms a query and recall@10 0.96 against flat at
  1M, and it builds in under a minute, which matters: every ``qa index`` run rebuilds the
  dense index from the stored vectors.

HNSW over SQ8 (``QA_INDEX_TYPE=hnsw``) searches in under a millisecond, but on clustered
embeddings its recall@10 was 0.93 at 100k and 0.65 at 1M (8-bit codes of whole vectors,
where IVF codes the smaller residuals), and it took 2.5 minutes to build at 1M, so ``auto``
never picks it.
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
SEARCH_BATCH_THREADS = 16  # fewer queries than this are searched on one thread
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
            dim,
            faiss.ScalarQuantizer.QT_8bit,  # type: ignore[arg-type]  # stubs want a ScalarQuantizer; the C++ signature takes this QuantizerType code
            HNSW_M,
            faiss.METRIC_INNER_PRODUCT,
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
        m = index.hnsw.nb_neighbors(1)  # type: ignore[attr-defined]  # in the SWIG wrapper, not in the stubs
        return f"HNSW{m},SQ8 efSearch={index.hnsw.efSearch}"
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


def search(
    index: faiss.Index, queries: np.ndarray, k: int, allowed: Allowed | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, scores) of shape (n_queries, k'), k' = min(k, size); -1 ids dropped by callers.

    ``allowed`` restricts the search to those rows inside FAISS (an ID selector), so the
    best ``k`` allowed rows come back however many better ones are hidden.

    A few queries are searched on one thread: splitting one query's scan over both cores
    of a busy 2-core machine made flat search twice as slow (bench/README.md). The thread
    count is per calling thread in OpenMP, so it is restored for whatever runs next.
    """
    k = min(k, index.ntotal if allowed is None else allowed.count)
    if k == 0:
        empty = np.empty((len(queries), 0))
        return empty.astype(np.int64), empty.astype(np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if len(queries) >= SEARCH_BATCH_THREADS:
        return _search(index, queries, k, allowed)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return _search(index, queries, k, allowed)
    finally:
        faiss.omp_set_num_threads(threads)


class Allowed:
    """The rows a search may return, as a FAISS ID selector (a bitmap: one test per
    candidate, whatever the number of rows allowed)."""

    def __init__(self, mask: np.ndarray) -> None:
        self.count = int(np.count_nonzero(mask))
        self.bits = np.packbits(mask.astype(bool), bitorder="little")  # kept alive for FAISS
        self.selector = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(self.bits))
        self.ids = np.flatnonzero(mask).astype(np.int64)


def _search(
    index: faiss.Index, queries: np.ndarray, k: int, allowed: Allowed | None
) -> tuple[np.ndarray, np.ndarray]:
    if allowed is None:
        scores, ids = index.search(queries, k)
        return ids, scores
    scores, ids = index.search(queries, k, params=_params(index, allowed, wide=False))
    if (ids < 0).any():  # an approximate index found fewer than k allowed rows: widen
        scores, ids = _exhaustive(index, queries, k, allowed)
    return ids, scores


def _params(index: faiss.Index, allowed: Allowed, wide: bool) -> faiss.SearchParameters:
    """Search parameters with the selector; each type's own tuning kept (FAISS replaces
    the index's nprobe or efSearch by the parameters' defaults otherwise)."""
    params: faiss.SearchParameters
    if isinstance(index, faiss.IndexHNSW):
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing in the stubs
        params.efSearch = index.hnsw.efSearch  # type: ignore[attr-defined]  # SWIG attribute, not in the stubs
    elif (ivf := faiss.try_extract_index_ivf(index)) is not None:
        params = faiss.SearchParametersIVF()
        params.nprobe = ivf.nlist if wide else ivf.nprobe
    else:
        params = faiss.SearchParameters()
    params.sel = allowed.selector
    return params


def _exhaustive(
    index: faiss.Index, queries: np.ndarray, k: int, allowed: Allowed
) -> tuple[np.ndarray, np.ndarray]:
    """Every allowed row considered: IVF probes all its lists; HNSW (whose graph walk can
    miss rows when few are allowed) scores the allowed rows' stored vectors directly."""
    if not isinstance(index, faiss.IndexHNSW):
        return index.search(queries, k, params=_params(index, allowed, wide=True))
    vectors = index.reconstruct_batch(allowed.ids)
    sims = queries @ vectors.T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, top, axis=1), allowed.ids[top]
