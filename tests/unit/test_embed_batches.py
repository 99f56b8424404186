"""BaseEmbedder's model calls: batches by padded tokens, longest first, rows back in order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qa.config import Settings
from qa.embedding.base import BaseEmbedder, batches_of


@given(
    st.lists(st.integers(1, 600), min_size=1, max_size=80),
    st.integers(1, 40),
    st.integers(16, 4096),
)
def test_batches_cover_every_row_once_within_both_limits(lengths, most, tokens) -> None:
    batches = batches_of(np.array(lengths), most, tokens)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    assert [lengths[i] for i in rows] == sorted(lengths, reverse=True)  # longest first
    for batch in batches:
        assert 1 <= len(batch) <= most
        padded = len(batch) * max(lengths[i] for i in batch)
        assert padded <= tokens or len(batch) == 1  # a text longer than the budget: alone


def test_short_texts_share_a_call_and_long_ones_go_few_at_a_time() -> None:
    lengths = np.array([40] * 30 + [200] * 10)
    sizes = [len(b) for b in batches_of(lengths, 32, 1024)]
    assert sizes == [5, 5, 25, 5]  # 200 x 5 = 1000 tokens; 40 x 25; the 5 left


class Recording(BaseEmbedder):
    """A BaseEmbedder whose "model" returns each text's length, recording every call."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.dim, self.max_tokens, self.fingerprint = 2, 512, "recording-v1"
        self.calls: list[list[str]] = []

    def _lengths(self, texts: list[str], prompt: str) -> list[int]:
        return [len(t.split()) for t in texts]

    def _run(self, batch: list[str], prompt: str, interactive: bool) -> np.ndarray:
        self.calls.append(batch)
        return np.array([[len(t.split()), 1.0] for t in batch], np.float32)


@pytest.fixture
def recording() -> Recording:
    return Recording(Settings(batch_size=8, batch_tokens=64, _env_file=None))


def test_embed_returns_rows_in_input_order_whatever_the_calls(recording) -> None:
    texts = ["ord " * n for n in (3, 60, 1, 30, 30, 2, 700, 5)]
    vectors = recording.embed_passages(texts)
    words = [len(t.split()) for t in texts]
    expected = np.array([[w, 1.0] for w in words]) / np.hypot(words, 1.0)[:, None]
    np.testing.assert_allclose(vectors, expected, rtol=1e-6)
    assert [len(c) for c in recording.calls] == [1, 1, 2, 4]  # 700 and 60 alone; 30 x 2
    assert sum(len(c) for c in recording.calls) == len(texts)


def test_one_text_is_not_counted_first(recording, monkeypatch) -> None:
    """A single question skips the length pass (a tokenizer run saved on every query)."""

    def counted(texts: list[str], prompt: str) -> list[int]:
        raise AssertionError("a lone text needs no lengths")

    monkeypatch.setattr(recording, "_lengths", counted)
    assert recording.embed_queries(["hvem vedtar budsjettet"]).shape == (1, 2)


def test_repr_names_the_model_and_fingerprint(recording) -> None:
    assert repr(recording) == (
        f"Recording({Settings(_env_file=None).model!r}, dim=2, fp='recording-v1')"
    )


def test_batch_tokens_is_a_checked_setting() -> None:
    assert Settings(_env_file=None).batch_tokens == 1024
    with pytest.raises(ValueError, match="batch_tokens"):
        Settings(batch_tokens=0, _env_file=None)
