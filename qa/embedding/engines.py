"""One model, an engine per job: a question is not the same workload as a build.

- Queries, and small passage jobs (a re-index after one file changed), run on the light
  engine (``qa.embedding.light``: ONNX Runtime, float32, no PyTorch import), so a query
  costs what the bare model costs and a command starts in a fraction of a second.
- Large passage jobs run on PyTorch, loaded on first need, with all threads, in bfloat16,
  where the CPU has bfloat16 matrix units (``qa.embedding.cpu``) or ``QA_PRECISION`` asks
  for it, and the vectors agree with float32 (``qa.embedding.torch.choose_precision``).
  Elsewhere they stay on the light engine too: float32 either way, and ONNX Runtime
  embedded NorQuAD's passages 24 % faster than PyTorch's oneDNN float32 here, without the
  seconds of importing and loading PyTorch (``python -m bench.batches``, bench/README).
All engines give the same vectors (cosine ≥ 0.9999 float32, ≥ 0.999 bfloat16, checked at
load), so they share one fingerprint and an index built by one is served by another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from qa.config import Settings
from qa.embedding.cpu import cpu_info
from qa.embedding.light import LightEmbedder

#: Passage jobs up to this many texts run on the light engine (one thread, no load).
SMALL_JOB = 256


class EngineEmbedder:
    """An Embedder that hands each job to the engine made for it (module docstring)."""

    concurrent_queries = True  # the light engine's runs are re-entrant, one thread each

    def __init__(
        self,
        settings: Settings,
        light: LightEmbedder,
        *,
        heavy: Any = None,
        load_heavy: Callable[[], Any] | None = None,
    ) -> None:
        """``heavy``: the PyTorch embedder, already loaded; else ``load_heavy`` loads it on
        the first large job."""
        if (heavy is None) == (load_heavy is None):
            raise ValueError("give the heavy engine or its loader, one of them")
        self.light = light
        self.name, self.backend = settings.model, settings.backend
        self.dim, self.max_tokens = light.dim, light.max_tokens
        self.fingerprint = light.fingerprint
        self.query_prompt, self.passage_prompt = light.query_prompt, light.passage_prompt
        self._heavy = heavy
        self._load_heavy = load_heavy
        self._heavy_lock = threading.Lock()
        self._job: int | None = None  # texts the current build will embed, when it said
        self.large_on_heavy = heavy_pays(settings)  # else every passage job stays light
        self.last_passages: str | None = None  # the engine that ran the last passage job

    @contextmanager
    def passage_job(self, count: int) -> Iterator[None]:
        """A build says how many texts it is about to embed, so all of them go to one engine
        (a build embeds in batches; each batch alone would look small)."""
        self._job = count
        try:
            yield
        finally:
            self._job = None

    def prepare_passages(self) -> None:
        """A build is coming: make the light engine's passage session meanwhile (where a
        large job loads PyTorch instead, that session goes unused: 0.3 s of a spare core)."""
        if not (self.large_on_heavy and self._heavy is not None):
            self.light.prepare(interactive=False)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self.light.embed_queries(texts)

    def embed_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        job = self._job if self._job is not None else len(texts)
        if not self.large_on_heavy or (self._heavy is None and job <= SMALL_JOB):
            why = "a small job" if job <= SMALL_JOB else "no bfloat16 units"
            self.last_passages = f"onnxruntime float32 ({why})"
            return self.light.embed_passages(texts, show_progress=show_progress)
        heavy = self.heavy()
        self.last_passages = describe_heavy(heavy)
        return heavy.embed_passages(texts, show_progress=show_progress)

    def count_tokens(self, text: str) -> int:
        return self.light.count_tokens(text)

    def heavy(self) -> Any:
        """The PyTorch embedder, loaded the first time a large job needs it."""
        with self._heavy_lock:
            if self._heavy is None:
                assert self._load_heavy is not None
                heavy = self._load_heavy()
                if heavy.fingerprint != self.fingerprint:  # never mix vectors
                    raise RuntimeError(
                        f"the passage engine's fingerprint {heavy.fingerprint} differs from "
                        f"the query engine's {self.fingerprint}"
                    )
                self._heavy = heavy
            return self._heavy

    def __repr__(self) -> str:
        return f"EngineEmbedder({self.name!r}, dim={self.dim}, fp={self.fingerprint!r})"

    @property
    def engines(self) -> dict[str, str]:
        """What runs which job, for ``qa index`` and ``/health``."""
        return {
            "queries": "onnxruntime float32",
            "passages": self.last_passages or self._planned(),
            "small passage jobs": f"onnxruntime float32 (up to {SMALL_JOB} texts)",
            "matrix units": ", ".join(cpu_info().units) or "none",
            "cpu": cpu_info().model,
        }

    def _planned(self) -> str:
        if not self.large_on_heavy:
            return "onnxruntime float32 (no bfloat16 units)"
        return describe_heavy(self._heavy)


def prepare_passages(embedder: Any) -> None:
    """Lets an embedder that loads its passage engine lazily start now, in another thread,
    while the caller imports and reads its sources (``EngineEmbedder.prepare_passages``);
    other embedders have nothing to start."""
    prepare = getattr(embedder, "prepare_passages", None)
    if prepare is not None:
        prepare()


def heavy_pays(settings: Settings) -> bool:
    """Whether large passage jobs should load PyTorch: only for bfloat16, which the light
    engine does not run (``QA_PRECISION=bfloat16``, or ``auto`` on a CPU with the units)."""
    if settings.precision == "bfloat16":
        return True
    return settings.precision == "auto" and cpu_info().bf16 is not None


def describe_heavy(heavy: Any) -> str:
    """The PyTorch engine as loaded, or what it will be when it is not loaded yet."""
    if heavy is None:
        unit = cpu_info().bf16
        planned = f"bfloat16 on {unit}" if unit else "float32"
        return f"torch {planned} (loaded on first large job)"
    return str(getattr(heavy, "engines", {}).get("passages", "torch"))
