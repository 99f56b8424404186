"""Two ``qa serve`` replicas over one index folder, and a build swapped under both.

How a replica learns of a build made by another process: ``LiveRetriever`` polls the
folder's ``current`` pointer every ``QA_RELOAD_INTERVAL_S`` and loads a new build in the
background while requests keep the Retriever they started with (``qa/retriever.py``). So
scaling out is N servers on one folder behind a load balancer, and ``qa index`` (or one
replica with ``--watch``) writes the builds. docs/scaling.md has the figures.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from qa.config import Settings
from qa.embedding.cpu import cpu_info
from qa.index import build_index, current_version
from qa.retriever import LiveRetriever
from tests.support.corpus import write_tiny_sources
from tests.support.fake import FakeEmbedder
from tests.support.procs import Served, index_args, qa_env, run_qa, serving

WORD = "Kvasirbrobyggingen"


class Clients:
    """A thread per replica asking ``/search`` in a loop: every status and index version."""

    def __init__(self, servers: list[Served]) -> None:
        self.statuses: Counter[tuple[int, int]] = Counter()  # (replica, HTTP status)
        self.versions: list[set[str]] = [set() for _ in servers]
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(n, s.url), daemon=True)
            for n, s in enumerate(servers)
        ]

    def __enter__(self) -> Clients:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=90)

    def _loop(self, n: int, url: str) -> None:
        queries = ["kulturskole i kommunen", "Hvem har ansvar for fylkesvegene?", WORD]
        with httpx.Client(base_url=url, timeout=60) as http:
            i = 0
            while not self._stop.is_set():
                q = queries[i % len(queries)]
                i += 1
                try:
                    r = http.post("/search", json={"query": q, "k": 3})
                except httpx.HTTPError as exc:  # a refused or dropped connection is a failure
                    self.failures.append(f"replica {n}: {type(exc).__name__}: {exc}")
                    self.statuses[(n, 0)] += 1
                    continue
                self.statuses[(n, r.status_code)] += 1
                if r.status_code != 200:
                    self.failures.append(f"replica {n}: {r.status_code} {r.text[:300]}")
                else:
                    self.versions[n].add(r.json()["index_version"])

    def served(self, n: int) -> int:
        return self.statuses[(n, 200)]


def health_version(server: Served) -> str:
    r = httpx.get(f"{server.url}/health", timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["index_version"])


def finds_word(server: Served) -> bool:
    r = httpx.post(f"{server.url}/search", json={"query": WORD, "k": 3}, timeout=60)
    assert r.status_code == 200, r.text
    return any(WORD in hit["text"] for hit in r.json()["results"])


def wait_for(check, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return bool(check())


def test_two_live_retrievers_pick_up_a_build_written_by_another_writer(
    settings: Settings, tiny_index: Path
) -> None:
    """The mechanism the replicas rely on, fast: each LiveRetriever's own poller finds a
    build another writer (its own embedder, no call to either) swapped in."""
    replicas = [LiveRetriever(settings, FakeEmbedder()) for _ in range(2)]
    for r in replicas:
        r.start()
    try:
        before = current_version(tiny_index)
        assert [r.get().version for r in replicas] == [before, before]
        (Path(settings.sources_dir) / "bru.txt").write_text(f"{WORD} over fjorden.", "utf-8")
        build_index(settings, FakeEmbedder(), progress=False)
        after = current_version(tiny_index)
        assert after != before
        for r in replicas:
            assert wait_for(lambda r=r: r.get().version == after, 30)
            assert r.get().source_text("bru.txt") == f"{WORD} over fjorden."
    finally:
        for r in replicas:
            r.stop()


def test_a_request_holding_an_old_build_survives_two_newer_builds(
    settings: Settings, tiny_index: Path, fake_embedder: FakeEmbedder
) -> None:
    """A slow replica (or a long request) keeps its Retriever while two builds are written
    and its build folder is deleted (``store.collect`` keeps two): it still answers, with
    exact offsets, from memory and its memory-mapped sentence vectors."""
    live = LiveRetriever(settings, fake_embedder)
    live.start()
    try:
        held = live.get()
        old_folder = Path(settings.index_dir) / "builds" / held.version
        src = Path(settings.sources_dir)
        for n in range(2):
            (src / f"ny{n}.txt").write_text(f"Ny fil nummer {n} om brøyting.", "utf-8")
            build_index(settings, fake_embedder, progress=False)
        # ``store.collect`` keeps two builds by name order, and two builds in one second
        # sort by their random suffix: remove the held one ourselves, as collect would.
        shutil.rmtree(old_folder, ignore_errors=True)
        assert not old_folder.exists() and current_version(tiny_index) != held.version
        hits = held.search("kulturskole i kommunen", 3).hits
        assert hits and held.source_text("ny0.txt") is None
        for h in hits:
            text = held.source_text(h.passage.source)
            assert text is not None and text[h.passage.start : h.passage.end] == h.passage.text
        assert wait_for(lambda: live.get().source_text("ny1.txt") is not None, 30)
    finally:
        live.stop()


@pytest.mark.slow
def test_two_replicas_on_one_folder_both_serve_a_build_made_by_a_third_process(
    tmp_path: Path,
) -> None:
    """Real model, two real servers on one index folder; `qa index` in a third process adds
    a file; both replicas come to serve the new build (health and a search for its word)
    and no request to either failed meanwhile."""
    src, index = write_tiny_sources(tmp_path / "src"), tmp_path / "index"
    first = run_qa(index_args(src, index, "--quiet"), tmp_path)
    assert first.returncode == 0, first.stderr
    before = current_version(index)
    env = qa_env(QA_RATE_LIMIT="off", QA_RELOAD_INTERVAL_S="0.5", QA_BUILD_IF_MISSING="false")
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(serving(index, src, tmp_path, env=env)) for _ in range(2)]
        assert servers[0].url != servers[1].url
        assert [health_version(s) for s in servers] == [before, before]
        assert not any(finds_word(s) for s in servers)
        engines = httpx.get(f"{servers[0].url}/health", timeout=10).json()["engines"]
        assert engines["queries"] == "onnxruntime float32"  # the query engine, reported
        assert engines["matrix units"] == (", ".join(cpu_info().units) or "none")

        with Clients(servers) as clients:
            assert wait_for(lambda: clients.served(0) >= 3 and clients.served(1) >= 3, 120)
            (src / "bru.txt").write_text(
                f"Brubygging\n\n{WORD} gir fylket en ny bru over fjorden i 2027.", "utf-8"
            )
            built = run_qa(index_args(src, index, "--quiet"), tmp_path)
            assert built.returncode == 0, built.stderr
            after = current_version(index)
            assert after is not None and after != before
            for s in servers:
                assert wait_for(lambda s=s: health_version(s) == after, 60), s.tail()
                assert finds_word(s), s.tail()
            counts = (clients.served(0), clients.served(1))
            assert wait_for(
                lambda: clients.served(0) > counts[0] + 2 and clients.served(1) > counts[1] + 2,
                120,
            )

        assert clients.failures == []
        assert all(status == 200 for _, status in clients.statuses)
        assert clients.versions == [{before, after}, {before, after}]
        for s in servers:
            assert "Traceback" not in s.output(), s.tail()
