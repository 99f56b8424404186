"""FAISS side: flat is exact, the approximate types find the true neighbours, sizes pick types.

The approximate indexes are checked on clustered data (a Gaussian mixture): uniform random
vectors have no neighbourhoods, which is not what passage embeddings look like.
"""

from __future__ import annotations

import numpy as np
import pytest

from qa.index import dense


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, dim: int, seed: int, centres: int = 50) -> np.ndarray:
    """``n`` unit vectors around ``centres`` fixed centres (the same for every ``seed``)."""
    c = np.random.default_rng(1234).standard_normal((centres, dim))
    rng = np.random.default_rng(seed)
    return _normalise(c[rng.integers(0, centres, n)] + 0.35 * rng.standard_normal((n, dim)))


def recall_at_10(index, data: np.ndarray, queries: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    truth = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    ids, _ = dense.search(index, queries, 10)
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth, strict=True)]))


def test_flat_top_k_equals_numpy_dot_product_top_k() -> None:
    rng = np.random.default_rng(0)
    data = _normalise(rng.standard_normal((3000, 48)))
    queries = _normalise(rng.standard_normal((25, 48)))
    index = dense.build(data, "flat")
    ids, scores = dense.search(index, queries, 10)
    sims = queries @ data.T
    expected = np.argsort(-sims, axis=1)[:, :10]
    assert np.array_equal(ids, expected)
    assert np.allclose(scores, np.take_along_axis(sims, expected, axis=1), atol=1e-5)


def test_hnsw_recall_on_clustered_data() -> None:
    data, queries = clustered(6000, 32, seed=1), clustered(60, 32, seed=2)
    index = dense.build(data, "hnsw")
    assert dense.describe(index).startswith(f"HNSW{dense.HNSW_M},SQ8")
    assert recall_at_10(index, data, queries) >= 0.9


def test_ivf_recall_on_clustered_data_when_probing_part_of_the_lists() -> None:
    n = 4 * dense.IVF_LIST_SIZE * max(dense.IVF_NPROBE, dense.IVF_MIN_LISTS)
    nlist = dense.ivf_lists(n)
    assert nlist >= 4 * dense.IVF_NPROBE  # a quarter of the lists is scanned, or less
    data, queries = clustered(n, 32, seed=3), clustered(60, 32, seed=4)
    index = dense.build(data, "ivf")
    assert dense.describe(index) == f"IVF{nlist},SQ8 nprobe={dense.IVF_NPROBE}"
    assert recall_at_10(index, data, queries) >= 0.9


def test_choose_type_by_corpus_size() -> None:
    assert dense.choose_type(0) == "flat"
    assert dense.choose_type(dense.FLAT_MAX) == "flat"
    assert dense.choose_type(dense.FLAT_MAX + 1) == "ivf"
    assert dense.choose_type(1_000_000) == "ivf"
    for kind in dense.TYPES:  # a configured type wins whatever the size
        assert dense.choose_type(10, kind) == kind
        assert dense.choose_type(10_000_000, kind) == kind


@pytest.mark.parametrize("n", [1, 40, 1000, 64_000, 1_000_000, 50_000_000])
def test_ivf_lists_are_trainable_and_grow_with_the_corpus(n: int) -> None:
    nlist = dense.ivf_lists(n)
    assert 1 <= nlist <= max(1, n // 39)  # FAISS wants 39 training points per list
    if n >= 1_000_000:
        assert nlist == n // dense.IVF_LIST_SIZE


def test_saved_index_keeps_its_search_parameters(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = clustered(4000, 16, seed=5)
    for kind in ("ivf", "hnsw"):
        built = dense.build(data, kind)
        dense.save(built, tmp_path / f"{kind}.faiss")
        loaded = dense.load(tmp_path / f"{kind}.faiss")
        assert dense.describe(loaded) == dense.describe(built)
        assert loaded.ntotal == len(data)


def test_k_larger_than_the_index_and_an_empty_index() -> None:
    data = clustered(5, 8, seed=6)
    ids, scores = dense.search(dense.build(data, "flat"), data[:2], 10)
    assert ids.shape == scores.shape == (2, 5)
    empty = dense.build(np.zeros((0, 8), np.float32), "flat")
    ids, scores = dense.search(empty, data[:2], 10)
    assert ids.shape == (2, 0) and scores.shape == (2, 0)
