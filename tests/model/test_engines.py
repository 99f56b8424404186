"""An engine per job (qa.embedding.engines): the ONNX float32 query engine, PyTorch for large
passage jobs, bfloat16 passages where the CPU has the units; all one fingerprint."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.embedding import engines, light, load_embedder
from qa.embedding.cpu import cpu_info
from qa.embedding.engines import EngineEmbedder
from qa.embedding.onnx import ALIGN, WEIGHTS_FILE
from qa.embedding.torch import MIN_BF16_COSINE, TorchEmbedder
from tests.model.fidelity import fidelity_texts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def torch_e5() -> TorchEmbedder:
    model = load_embedder(Settings(query_engine="model", precision="float32", _env_file=None))
    assert isinstance(model, TorchEmbedder)
    return model


@pytest.fixture(scope="module")
def engine() -> EngineEmbedder:
    model = load_embedder(Settings(_env_file=None))
    assert isinstance(model, EngineEmbedder)
    return model


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return fidelity_texts()


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_query_engine_gives_pytorchs_vectors(engine, torch_e5, texts) -> None:
    """Same fingerprint only because the vectors are the same: every fidelity text, as a
    query and as a passage, within cosine 0.9999 of PyTorch float32."""
    assert engine.fingerprint == torch_e5.fingerprint
    assert (engine.dim, engine.max_tokens) == (torch_e5.dim, torch_e5.max_tokens)
    queries = _cos(engine.embed_queries(texts), torch_e5.embed_queries(texts))
    passages = _cos(engine.embed_passages(texts[:120]), torch_e5.embed_passages(texts[:120]))
    print(f"light vs torch: queries min {queries.min():.7f}, passages min {passages.min():.7f}")
    assert queries.min() >= light.MIN_COSINE and passages.min() >= light.MIN_COSINE
    for text in [*texts[:40], "", "x " * 700]:  # the same tokenizer, never truncated counts
        assert engine.count_tokens(text) == torch_e5.count_tokens(text)
    folder = light.engine_folder(Settings(_env_file=None), engine.fingerprint)
    assert json.loads((folder / "engine.json").read_text())["min_cosine"] >= light.MIN_COSINE
    report = engine.engines
    assert report["queries"] == "onnxruntime float32"
    assert report["matrix units"] == (", ".join(cpu_info().units) or "none")


def test_small_jobs_stay_light_and_large_ones_load_pytorch(engine, torch_e5, monkeypatch) -> None:
    few = ["Kommunen har ansvar for skole.", "Fylket har ansvar for vegene."]
    assert engine.large_on_heavy == (cpu_info().bf16 is not None)  # PyTorch for bfloat16 only
    with engine.passage_job(len(few)):
        small = engine.embed_passages(few)
    assert engine.last_passages is not None and engine.last_passages.startswith("onnxruntime")
    monkeypatch.setattr(engines, "SMALL_JOB", 1)
    monkeypatch.setattr(engine, "large_on_heavy", False)  # a CPU without bfloat16 units
    with engine.passage_job(500):
        engine.embed_passages(few)
    assert engine.last_passages == "onnxruntime float32 (no bfloat16 units)"
    assert engine.engines["passages"] == engine.last_passages
    monkeypatch.setattr(engine, "large_on_heavy", True)  # one with them
    with engine.passage_job(500):  # a build of 500 texts, embedded a batch at a time
        large = engine.embed_passages(few)
    assert engine.last_passages is not None and engine.last_passages.startswith("torch")
    assert isinstance(engine.heavy(), TorchEmbedder)
    assert _cos(small, large).min() >= light.MIN_COSINE
    assert engine.heavy().fingerprint == engine.fingerprint


def test_a_process_that_only_asks_never_imports_torch(engine) -> None:
    code = (
        "import sys; from qa.config import Settings; from qa.embedding import load_embedder;"
        "e = load_embedder(Settings(_env_file=None)); v = e.embed_queries(['Hva er KS?']);"
        "print(type(e).__name__, v.shape, 'torch' in sys.modules, 'sentence_transformers' in "
        "sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["EngineEmbedder", "(1,", "384)", "False", "False"]


def test_an_export_that_disagrees_or_is_damaged_is_not_used(
    engine, tmp_path, monkeypatch, caplog
) -> None:
    """The export is checked against PyTorch before it is kept (the fused graph, then the
    plain one); a damaged cache is removed and made again, never served."""
    caplog.set_level(logging.INFO, logger="qa.embedding")
    user = Settings(_env_file=None)
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    for model in (Path(user.cache_dir) / "models").iterdir():  # the converted model, shared
        (cache / "models" / model.name).symlink_to(model)
    settings = Settings(cache_dir=cache, _env_file=None)
    folder = light.engine_folder(settings, engine.fingerprint)

    with monkeypatch.context() as m:
        m.setattr(light, "MIN_COSINE", 1.01)  # no export can agree this well
        refused = load_embedder(settings)
    assert isinstance(refused, TorchEmbedder) and not folder.exists()
    said = caplog.text
    assert "the fused ONNX export agrees with PyTorch only" in said
    assert "the plain ONNX export agrees with PyTorch only" in said
    assert "queries run on PyTorch" in said
    assert not [p for p in folder.parent.glob(".fp32-*")]  # no half-written export left

    exports: list[bool] = []
    real_export = light._export

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        exports.append(args[-1])
        return real_export(*args, **kwargs)

    caplog.clear()
    with monkeypatch.context() as m:  # a layout the optimizer does not know: one export
        m.setattr(light, "MIN_COSINE", 1.01)
        m.setattr(light, "fuse_graph", lambda graph, config: (graph, {}))
        m.setattr(light, "_export", counted)
        assert isinstance(load_embedder(settings), TorchEmbedder)
    assert exports == [True] and "the plain ONNX export agrees" in caplog.text
    assert "fused ONNX" not in caplog.text and not folder.exists()

    shutil.copytree(light.engine_folder(user, engine.fingerprint), folder)
    (folder / "model.onnx").write_bytes(b"not an onnx graph")
    older = folder.parent / "fp32_v1"  # an export of an older recipe, never loaded again
    older.mkdir()
    (older / "model.onnx").write_bytes(b"old")
    again = load_embedder(settings)  # damaged: removed, PyTorch loaded, exported again
    assert isinstance(again, EngineEmbedder)
    assert (folder / "model.onnx").stat().st_size > 20_000  # the graph alone (57 KB fused)
    assert (folder / WEIGHTS_FILE).stat().st_size > 400_000_000
    assert not older.exists()
    probe = ["Hvem vedtar budsjettet?"]
    assert _cos(again.embed_queries(probe), engine.embed_queries(probe)).min() >= 0.99999

    with open(folder / WEIGHTS_FILE, "r+b") as fh:  # a weights file cut short: not served
        fh.truncate(1 << 20)
    assert light.load_light(settings, engine.fingerprint) is None and not folder.exists()


def test_the_weights_are_mapped_not_parsed(engine) -> None:
    """The graph file holds no weights: they lie in one file beside it, each at an aligned
    offset, which ONNX Runtime maps into memory (start-up: bench/README)."""
    import onnx

    folder = light.engine_folder(Settings(_env_file=None), engine.fingerprint)
    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    outside = [t for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert sum(int(dict((e.key, e.value) for e in t.external_data)["length"]) for t in outside) > (
        400_000_000
    )
    for tensor in outside:
        where = {e.key: e.value for e in tensor.external_data}
        assert where["location"] == WEIGHTS_FILE and int(where["offset"]) % ALIGN == 0
    assert (folder / "model.onnx").stat().st_size < 1_000_000


def test_the_graph_runs_fused_transformer_kernels(engine, torch_e5) -> None:
    """Attention, the residual layer norms and the embeddings run as ONNX Runtime's fused
    kernels, one per layer (the eager trace ``fuse_graph`` recognises); the export records
    it, and the model PyTorch keeps still runs its own attention (SDPA)."""
    from collections import Counter

    import onnx

    folder = light.engine_folder(Settings(_env_file=None), engine.fingerprint)
    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    ops = Counter(node.op_type for node in graph.node)
    config = torch_e5.st[0].auto_model.config
    layers = config.num_hidden_layers
    assert ops["Attention"] == layers and ops["SkipLayerNormalization"] == 2 * layers
    assert ops["EmbedLayerNormalization"] == 1 and ops["Softmax"] == 0
    info = json.loads((folder / "engine.json").read_text(encoding="utf-8"))
    assert info["fused"]["Attention"] == layers and info["min_cosine"] >= light.MIN_COSINE
    assert config._attn_implementation != "eager"


def test_a_passage_session_is_made_in_the_background(engine) -> None:
    """``prepare`` starts the session in a thread; the first passage job then finds it and
    gives the vectors the engine always gave."""
    fresh = light.load_light(Settings(_env_file=None), engine.fingerprint)
    assert fresh is not None
    fresh.prepare(interactive=False)
    fresh.prepare(interactive=False)  # once only
    assert list(fresh._preparing) == [False]
    fresh._preparing[False].join(120)
    assert list(fresh._sessions) == [False]  # the query session is still not made
    probe = [
        "Kommunen har ansvar for skole.",
        "Fylket har ansvar for vegene og kollektivtrafikken.",
    ]
    np.testing.assert_allclose(
        fresh.embed_passages(probe), engine.light.embed_passages(probe), atol=1e-6
    )


def test_bfloat16_passages_agree_with_float32(torch_e5, texts) -> None:
    """Forced here (emulated where the CPU has no bfloat16 unit): passages within the
    fingerprint's bound of float32, queries untouched."""
    bf16 = load_embedder(Settings(query_engine="model", precision="bfloat16", _env_file=None))
    assert isinstance(bf16, TorchEmbedder)
    assert bf16.bf16_active and bf16.precision.startswith("bfloat16")
    assert bf16.bf16_cosine is not None and bf16.bf16_cosine >= MIN_BF16_COSINE
    assert bf16.fingerprint == torch_e5.fingerprint
    sample = texts[::5]
    cos = _cos(bf16.embed_passages(sample), torch_e5.embed_passages(sample))
    print(f"bfloat16 vs float32 passages: min {cos.min():.6f}, median {np.median(cos):.6f}")
    assert cos.min() >= MIN_BF16_COSINE
    np.testing.assert_allclose(
        bf16.embed_queries(sample[:8]), torch_e5.embed_queries(sample[:8]), atol=1e-4
    )
    auto = load_embedder(Settings(query_engine="model", _env_file=None))
    assert isinstance(auto, TorchEmbedder)
    assert auto.bf16_active == (cpu_info().bf16 is not None)  # chosen by this CPU's flags
