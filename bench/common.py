"""What every benchmark part shares: the data, the model, timing helpers, the machine.

Parts take one ``Context`` so the model is loaded once per run and every part measures on
the same passages; a number is only compared with one taken in the same run (the machine
is shared, so its speed drifts between runs).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: The environment before the bench imported anything: what subprocesses (`qa serve`, `qa
#: index`) get, so they run with their own defaults, not settings made in this process.
ORIGINAL_ENV = dict(os.environ)

from qa.embedding.base import configure_openmp  # noqa: E402

configure_openmp()  # the OpenMP wait policy the server uses, set before torch loads

ROOT = Path(__file__).resolve().parents[1]
NORQUAD = ROOT.parent / "shared" / "norquad-validation"
SEEDS = ROOT / "sources"
QUICK_FILES = 40  # --quick: the first 40 NorQuAD files (about 150 passages)


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict:
    """What the numbers were measured on (they mean little without it)."""
    import faiss
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "faiss": faiss.__version__,
        "loadavg_start": load(),
    }


@dataclass
class Context:
    """The run's shared state: settings, the model (loaded on first use) and the data."""

    quick: bool
    workdir: Path
    sources: Path = NORQUAD / "sources"
    gold: Path = NORQUAD / "gold.jsonl"
    _embedder: Any = None
    index_dir: Path | None = None  # a NorQuAD index built in this run (indexing part)
    results: dict = field(default_factory=dict)

    def settings(self, **overrides: Any):  # type: ignore[no-untyped-def]
        """Settings as the service would read them, with the bench's folders on top."""
        from qa.config import Settings

        return Settings(**overrides)

    @property
    def embedder(self):  # type: ignore[no-untyped-def]
        if self._embedder is None:
            from qa.embedding import load_embedder

            self._embedder = load_embedder(self.settings())
        return self._embedder

    def source_dir(self) -> Path:
        """The NorQuAD sources, or (quick) a folder of symlinks to the first few files."""
        if not self.quick:
            return self.sources
        folder = self.workdir / "norquad-quick"
        if not folder.is_dir():
            folder.mkdir(parents=True)
            for f in sorted(self.sources.glob("*.txt"))[:QUICK_FILES]:
                shutil.copy(f, folder / f.name)
        return folder

    def questions(self) -> list[dict]:
        """NorQuAD gold questions whose source is in ``source_dir()``."""
        names = {p.name for p in self.source_dir().iterdir()}
        rows = [json.loads(line) for line in self.gold.open(encoding="utf-8")]
        return [r for r in rows if r["source"] in names]

    def passages(self):  # type: ignore[no-untyped-def]
        """The passages ``build_index`` makes of ``source_dir()`` (same scan, same chunker)."""
        from qa.chunking import chunk_document
        from qa.sources import scan_sources

        s = self.settings()
        docs, _ = scan_sources(self.source_dir(), s.max_file_bytes)
        fits = lambda t: self.embedder.count_tokens(t) <= self.embedder.max_tokens  # noqa: E731
        return [p for d in docs for p in chunk_document(d, s.chunk_size, s.chunk_overlap, fits)]

    def norquad_index(self) -> Path:
        """An index of ``source_dir()``: this run's, else a cached one brought up to date."""
        if self.index_dir is not None:
            return self.index_dir
        from qa.index import build_index

        name = "norquad-quick" if self.quick else "norquad"
        target = Path(self.settings().cache_dir) / "bench" / name
        s = self.settings(sources_dir=self.source_dir(), index_dir=target)
        build_index(s, self.embedder, progress=False)
        self.index_dir = target
        return target


@contextmanager
def workdir() -> Iterator[Path]:
    """A temporary folder for the run, removed at the end whatever happens."""
    path = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
