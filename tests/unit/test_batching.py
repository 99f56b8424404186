"""Concurrent query embeddings are coalesced, and each caller gets its own rows."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from qa.embedding import EmbedderClosedError
from qa.embedding.batching import BatchingEmbedder, default_workers, fair_share

MakeBatcher = Callable[..., BatchingEmbedder]


@pytest.fixture
def batcher() -> Iterator[MakeBatcher]:
    """``BatchingEmbedder(inner, ...)``, closed after the test: no worker outlives it."""
    made: list[BatchingEmbedder] = []

    def make(inner: Any, **kwargs: Any) -> BatchingEmbedder:
        made.append(BatchingEmbedder(inner, **kwargs))
        return made[-1]

    yield make
    for emb in made:
        emb.close()


class SlowEmbedder:
    """Records batch sizes; a call takes 20 ms whatever its size, like a small model."""

    name, dim, max_tokens, fingerprint = "slow", 4, 512, "slow-1"
    concurrent_queries = False

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.threads: set[str] = set()
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        if "boom" in texts:
            raise RuntimeError("model failed")
        with self.lock:
            self.batches.append(len(texts))
            self.threads.add(threading.current_thread().name)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(0.02)
        with self.lock:
            self.in_flight -= 1
        return np.array([[len(t), 0, 0, 1] for t in texts], dtype=np.float32)

    def embed_passages(self, texts, show_progress=False):  # type: ignore[no-untyped-def]
        return self.embed_queries(texts)

    def count_tokens(self, text: str) -> int:
        return len(text)


def test_concurrent_calls_share_batches_and_get_their_own_rows(batcher: MakeBatcher) -> None:
    inner = SlowEmbedder()
    emb = batcher(inner)
    texts = ["x" * i for i in range(1, 33)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda t: emb.embed_queries([t]), texts))
    for t, r in zip(texts, results, strict=True):
        assert r.shape == (1, 4) and r[0, 0] == len(t)
    assert sum(inner.batches) == 32
    assert len(inner.batches) < 32  # some calls were coalesced
    assert max(inner.batches) > 1


def test_a_single_call_is_not_delayed_and_errors_reach_the_caller(batcher: MakeBatcher) -> None:
    emb = batcher(SlowEmbedder())
    assert emb.embed_queries(["abc", "de"])[:, 0].tolist() == [3, 2]
    with pytest.raises(RuntimeError, match="model failed"):
        emb.embed_queries(["boom"])
    assert emb.embed_queries(["after"])[0, 0] == 5  # the worker survived


class ConcurrentEmbedder:
    """Re-entrant like TorchEmbedder (``concurrent_queries``): records each call's thread
    and texts, and the most calls in flight at once. With ``wait_for_overlap`` the first
    call waits (up to 5 s) for a second one to start, so two workers surely overlap while
    one worker alone never can; with ``gate`` every call waits for it."""

    name, dim, max_tokens, fingerprint = "concurrent", 4, 512, "concurrent-1"
    concurrent_queries = True

    def __init__(self, wait_for_overlap: bool = False, gate: threading.Event | None = None):
        self.lock = threading.Lock()
        self.calls: list[tuple[str, list[str]]] = []
        self.in_flight = self.most_in_flight = 0
        self.overlap = threading.Event()
        self.wait_for_overlap, self.gate = wait_for_overlap, gate

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        with self.lock:
            first = not self.calls
            self.calls.append((threading.current_thread().name, list(texts)))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            if self.in_flight >= 2:
                self.overlap.set()
        try:
            if first and self.wait_for_overlap:
                self.overlap.wait(5)
            if self.gate is not None:
                self.gate.wait(5)
            time.sleep(0.02)
            if "boom" in texts:
                raise RuntimeError("model failed")
            return np.array([_row(t) for t in texts], dtype=np.float32)
        finally:
            with self.lock:
                self.in_flight -= 1

    def embed_passages(self, texts, show_progress=False):  # type: ignore[no-untyped-def]
        return self.embed_queries(texts)

    def count_tokens(self, text: str) -> int:
        return len(text)


def _row(text: str) -> list[float]:
    """ "q<caller>-<j>" -> [caller, j, len, 1]; anything else -> [-1, -1, len, 1]."""
    if text.startswith("q") and "-" in text:
        caller, j = text[1:].split("-")
        return [int(caller), int(j), len(text), 1]
    return [-1, -1, len(text), 1]


def _questions(caller: int) -> list[str]:
    """1 to 3 texts per caller, so callers' rows sit at different offsets in a batch."""
    return [f"q{caller}-{j}" for j in range(caller % 3 + 1)]


def _wait_until(condition, timeout: float = 5) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_concurrent_inner_runs_batches_on_several_workers(batcher: MakeBatcher) -> None:
    inner = ConcurrentEmbedder(wait_for_overlap=True)
    emb = batcher(inner, workers=2)
    assert emb.workers == 2
    callers = list(range(40))
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda c: emb.embed_queries(_questions(c)), callers))
    assert inner.most_in_flight == 2  # two batches ran at once, never more than two
    assert {name for name, _ in inner.calls} == {"query-batcher-0", "query-batcher-1"}
    for c, r in zip(callers, results, strict=True):
        np.testing.assert_array_equal(r, np.array([_row(t) for t in _questions(c)], np.float32))
    embedded = Counter(t for _, texts in inner.calls for t in texts)
    assert embedded == Counter(t for c in callers for t in _questions(c))  # each exactly once
    assert len(inner.calls) < len(callers)  # still coalesced


def test_fair_share_splits_the_queue_between_idle_workers() -> None:
    """ceil(queued / (1 + other idle workers)): the other idle workers get the rest."""
    assert fair_share(10, 1) == 5
    assert fair_share(10, 2) == 4
    assert fair_share(10, 0) == 10  # the last idle worker takes all that waits
    assert fair_share(1, 3) == 1  # its first job, always


def test_a_worker_takes_whole_jobs_in_order_up_to_max_batch(batcher: MakeBatcher) -> None:
    gate = threading.Event()
    inner = ConcurrentEmbedder(gate=gate)
    emb = batcher(inner, workers=1, max_batch=3)
    jobs = [[f"q{c}-0"] for c in range(7)] + [["a", "b"], ["c", "d"], ["e"], ["big"] * 5, ["f"]]
    with ThreadPoolExecutor(len(jobs) + 1) as pool:
        try:
            parked = pool.submit(emb.embed_queries, ["park"])  # the worker is busy: jobs wait
            _wait_until(lambda: inner.in_flight == 1)
            futures = []
            for i, texts in enumerate(jobs):
                futures.append(pool.submit(emb.embed_queries, texts))
                _wait_until(lambda n=i + 1: emb.waiting == n)
        finally:
            gate.set()
        assert parked.result(5).shape == (1, 4)
        for texts, future in zip(jobs, futures, strict=True):
            np.testing.assert_array_equal(future.result(5), [_row(t) for t in texts])
    q = [f"q{c}-0" for c in range(7)]
    assert (
        [texts for _, texts in inner.calls]
        == [
            ["park"],
            q[:3],  # capped by max_batch texts
            q[3:6],
            [q[6], "a", "b"],  # whole jobs only
            ["c", "d", "e"],
            ["big"] * 5,  # a job over max_batch is taken alone
            ["f"],
        ]
    )


def test_close_stops_every_worker(batcher: MakeBatcher) -> None:
    before = set(threading.enumerate())
    emb = batcher(ConcurrentEmbedder(), workers=3)
    workers = set(threading.enumerate()) - before
    assert len(workers) == 3
    assert emb.embed_queries(["q1-0"]).tolist() == [_row("q1-0")]
    emb.close()
    assert not any(thread.is_alive() for thread in workers)
    emb.close()  # a second close is harmless
    with pytest.raises(EmbedderClosedError, match="closed"):
        emb.embed_queries(["q2-0"])
    assert emb.embed_passages(["q3-0"]).shape == (1, 4)  # passages do not use the workers


def test_close_fails_queued_calls_and_lets_a_running_batch_finish(batcher: MakeBatcher) -> None:
    gate = threading.Event()
    inner = ConcurrentEmbedder(gate=gate)
    emb = batcher(inner, workers=1)
    with ThreadPoolExecutor(3) as pool:
        try:
            running = pool.submit(emb.embed_queries, ["q1-0"])
            _wait_until(lambda: inner.in_flight == 1)
            queued = pool.submit(emb.embed_queries, ["q2-0"])
            _wait_until(lambda: emb.waiting == 1)
            closing = pool.submit(emb.close)
            with pytest.raises(EmbedderClosedError, match="closed"):
                queued.result(5)  # at once, without waiting for the running batch
            assert not closing.done()  # close() waits for the worker
        finally:
            gate.set()
        closing.result(5)
        assert running.result(5).tolist() == [_row("q1-0")]
    assert [texts for _, texts in inner.calls] == [["q1-0"]]


def _omp_policy_after(code: str) -> str:
    """OMP_WAIT_POLICY after ``code`` runs in a fresh interpreter that starts without it."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code += "; import os; print(os.environ.get('OMP_WAIT_POLICY'))"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_importing_the_batcher_leaves_the_environment_alone() -> None:
    assert _omp_policy_after("import qa.embedding.batching, qa.embedding") == "None"
    assert _omp_policy_after("import qa.embedding as e; e.configure_openmp()") == "PASSIVE"


def test_inner_without_concurrent_queries_gets_one_worker(batcher: MakeBatcher) -> None:
    inner = SlowEmbedder()
    emb = batcher(inner, workers=4)
    assert emb.workers == 1
    texts = ["x" * i for i in range(1, 41)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda t: emb.embed_queries([t]), texts))
    for t, r in zip(texts, results, strict=True):
        assert r.shape == (1, 4) and r[0, 0] == len(t)
    assert inner.most_in_flight == 1  # never two calls at once
    assert inner.threads == {"query-batcher-0"}
    assert sum(inner.batches) == 40


def test_worker_count_defaults_to_the_cores(batcher: MakeBatcher) -> None:
    assert batcher(ConcurrentEmbedder()).workers == default_workers() >= 1
    assert batcher(SlowEmbedder()).workers == 1


def test_errors_reach_only_the_failing_batch_with_two_workers(batcher: MakeBatcher) -> None:
    inner = ConcurrentEmbedder(wait_for_overlap=True)
    before = set(threading.enumerate())
    emb = batcher(inner, workers=2)
    workers = set(threading.enumerate()) - before
    jobs = [["boom"] if c % 7 == 3 else _questions(c) for c in range(42)]

    def call(texts: list[str]) -> np.ndarray | Exception:
        try:
            return emb.embed_queries(texts)
        except RuntimeError as exc:
            return exc

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, jobs))
    failed = {t for _, texts in inner.calls if "boom" in texts for t in texts}
    for texts, result in zip(jobs, results, strict=True):
        if failed & set(texts):  # its texts were in a batch that failed
            assert isinstance(result, RuntimeError) and "model failed" in str(result)
        else:
            assert isinstance(result, np.ndarray), result
            np.testing.assert_array_equal(result, np.array([_row(t) for t in texts], np.float32))
    assert any(isinstance(r, np.ndarray) for r in results)  # not everybody failed
    assert inner.most_in_flight == 2
    assert len(workers) == 2 and all(t.is_alive() for t in workers)  # no worker died
    with ThreadPoolExecutor(8) as pool:
        after = list(pool.map(lambda c: emb.embed_queries(_questions(c)), range(100, 116)))
    for c, r in zip(range(100, 116), after, strict=True):
        assert r[:, 0].tolist() == [c] * len(_questions(c))
    with pytest.raises(RuntimeError, match="model failed"):
        emb.embed_queries(["boom"])
    assert emb.embed_queries(["q7-0"])[0].tolist() == _row("q7-0")
