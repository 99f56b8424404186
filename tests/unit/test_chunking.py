"""Chunking keeps exact offsets and line numbers, and respects the model's token limit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from qa.chunking import chunk_document
from qa.sources import SourceDoc


def _doc(text: str) -> SourceDoc:
    return SourceDoc("a/b.txt", text, "utf-8", "0" * 64, "title")


def _check(text: str, size: int, overlap: int) -> None:
    passages = chunk_document(_doc(text), size, overlap)
    for p in passages:
        assert text[p.start : p.end] == p.text
        assert p.line_start == text.count("\n", 0, p.start) + 1
        assert p.line_end == text.count("\n", 0, p.end - 1) + 1
        assert p.source == "a/b.txt" and p.title == "title"
        assert len(p.text) <= size
    starts = [p.start for p in passages]
    assert starts == sorted(starts)
    # every non-blank character of the text is in some passage
    covered = set()
    for p in passages:
        covered.update(range(p.start, p.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_seed_document_offsets_are_exact() -> None:
    from tests.support.corpus import SEEDS

    for path in SEEDS.glob("*.txt"):
        text = path.read_text("utf-8")
        _check(text, 800, 120)
        _check(text, 200, 40)


def test_repeated_text_gets_the_right_offsets() -> None:
    text = ("Samme setning igjen. " * 30 + "\n\n") * 4
    _check(text, 100, 20)


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("abc æøå.\n\t,«»–")), min_size=1, max_size=600),
    st.integers(min_value=20, max_value=200),
)
def test_offsets_exact_for_any_text(text: str, size: int) -> None:
    _check(text, size, size // 5)


def test_passages_that_do_not_fit_the_model_are_split() -> None:
    text = " ".join(f"ord{i}" for i in range(400))
    fits = lambda t: len(t.split()) <= 30  # noqa: E731
    passages = chunk_document(_doc(text), 800, 120, fits=fits)
    assert passages and all(fits(p.text) for p in passages)
    assert all(text[p.start : p.end] == p.text for p in passages)
