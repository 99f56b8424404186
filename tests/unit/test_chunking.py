"""Chunking keeps exact offsets and line numbers, and respects the model's token limit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from qa.chunking import chunk_document
from qa.sources import SourceDoc
from qa.sources.document import Heading


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


def test_plain_text_passages_are_what_they_were_before_formats() -> None:
    """The seeds' passages (offsets, lines, titles), as the chunker of the commit before
    formats cut them: plain .txt retrieval must not change."""
    import hashlib
    import json

    from qa.sources import scan_sources
    from tests.support.corpus import SEEDS

    docs, _ = scan_sources(SEEDS)
    digests = {}
    for size, overlap in ((800, 120), (200, 40)):
        rows = [
            [p.source, p.start, p.end, p.line_start, p.line_end, p.title]
            for d in docs
            for p in chunk_document(d, size, overlap)
            if p.page_start is None and p.section == ""
        ]
        digests[size] = hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()
    assert digests == {
        800: "2a547b0c90a68fb9e49cda1d49354630693fa9e08c2a7aed0b5ece262483e866",
        200: "5024b68f97ae099f9c4e7806403be9cf17765f8cb6fd83237066e734a5eeb3c0",
    }


def test_pages_are_chunked_apart_and_passages_carry_pages_and_sections() -> None:
    pages = ["Første side. " * 20, "Kort side.", "Tredje side handler om kulturskolen. " * 10]
    text = "\n\n".join(pages)
    starts = [0, len(pages[0]) + 2, len(pages[0]) + len(pages[1]) + 4]
    headings = (Heading(0, 1, "Meldingen"), Heading(starts[2], 2, "Kulturskolen"))
    doc = SourceDoc("r.pdf", text, "pdf", "0" * 64, "Rapport", "pdf", 1, tuple(starts), headings)
    passages = chunk_document(doc, 200, 40)
    assert all(text[p.start : p.end] == p.text for p in passages)
    assert all(p.page_start == p.page_end for p in passages)  # none straddles a page
    assert [p.text for p in passages if p.page_start == 2] == ["Kort side."]
    assert {p.page_start for p in passages} == {1, 2, 3}
    assert {p.section for p in passages if p.page_start == 1} == {"Meldingen"}
    assert {p.section for p in passages if p.page_start == 3} == {"Meldingen › Kulturskolen"}
    assert all(p.title == "Rapport" for p in passages)
