"""The answer span: sentences with exact offsets, the choice of a sentence, spans on hits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.answer.evidence import answer_type, prefix_overlap
from qa.answer.locate import locate
from qa.answer.sentences import split
from qa.answer.span import Weights, choose, pick, scores
from qa.config import Settings
from qa.index.lexical import tokenize
from qa.index.sentences import SentenceTable
from qa.retriever import Retriever
from qa.types import Hit, Passage

NORWEGIAN = (
    "Kommunen skal bl.a. sørge for tilbud. Se f.eks. kap. 3 og nr. 5 i forskriften. "
    "Dette gjelder fra 1. januar 2024.\nOverskrift uten punktum\n- punkt en\n- punkt to\n"
    "Dr. Hansen sa at det kostet 3,2 mrd. kroner. Det var mye! Var det nok? Ja.\n\n"
    "Nytt avsnitt her. Og en linje\nsom fortsetter på neste linje."
)


def _texts(text: str) -> list[str]:
    return [text[s:e] for s, e in split(text)]


def test_norwegian_abbreviations_headings_bullets_and_blank_lines() -> None:
    assert _texts(NORWEGIAN) == [
        "Kommunen skal bl.a. sørge for tilbud.",
        "Se f.eks. kap. 3 og nr. 5 i forskriften.",
        "Dette gjelder fra 1. januar 2024.",
        "Overskrift uten punktum",
        "- punkt en",
        "- punkt to",
        "Dr. Hansen sa at det kostet 3,2 mrd. kroner.",
        "Det var mye!",
        "Var det nok?",
        "Ja.",
        "Nytt avsnitt her.",
        "Og en linje\nsom fortsetter på neste linje.",  # a wrapped line: one sentence
    ]


def test_a_heading_never_glues_two_paragraphs() -> None:
    text = "Frister\nSøknaden sendes innen 1. mars. Svar kommer i april.\n\nKlage\nDu kan klage."
    assert _texts(text) == [
        "Frister",
        "Søknaden sendes innen 1. mars.",
        "Svar kommer i april.",
        "Klage",
        "Du kan klage.",
    ]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([*"ab.Æø \n\t-1!?", "f.eks. ", "Nr. ", "\n\n"])).map("".join))
def test_offsets_are_exact_trimmed_and_cover_every_character(text: str) -> None:
    spans = split(text)
    covered = [0] * len(text)
    last = 0
    for s, e in spans:
        assert last <= s < e <= len(text)
        assert not text[s].isspace() and not text[e - 1].isspace()
        for i in range(s, e):
            covered[i] += 1
        last = e
    assert all(c == 1 for i, c in enumerate(covered) if not text[i].isspace())


TERMS = {"fylkesveg": 2.0, "ansvar": 1.0}
TEXT = "Innledning. Fylkeskommunen har ansvar for fylkesvegene. Bruer inspiseres. Det koster mye."
SPANS = split(TEXT)


def test_the_baselines_pick_the_first_sentence_and_the_one_with_most_query_words() -> None:
    assert choose("first", TEXT, SPANS, TERMS, tokenize) == SPANS[0]
    assert choose("words", TEXT, SPANS, TERMS, tokenize) == SPANS[1]
    assert choose("vectors", TEXT, [], TERMS, tokenize, np.zeros(0)) is None


def test_the_cosine_and_the_evidence_are_combined_by_a_fixed_rule() -> None:
    question = "Hvem har ansvar for fylkesvegene?"
    sims = np.array([0.8, 0.8, 0.8, 0.9])  # the last sentence is the closest by vector
    w = Weights(terms=0.1, prefixes=0.2, kind=0.3, neighbour=0.4)
    values = scores("vectors", TEXT, SPANS, TERMS, tokenize, sims, question, w)
    terms = np.array([0, 2 / 3, 0, 0])  # the second holds "fylkesveg": 2 of the idf's 3
    prefixes = np.array([0, 2 / 3, 0, 0])  # "ansva", "fylke" of "hvem", "ansva", "fylke"
    neighbours = np.array([0.8, 0.8, 0.9, 0.9])  # the better neighbour's (own at the edge)
    expected = sims + 0.1 * terms + 0.2 * prefixes + 0.4 * neighbours  # no name: kind 0
    assert np.allclose(values, expected)
    # at weight 0 (the shipped one) the sentences are not even tokenized for the terms
    calls: list[str] = []

    def counting(text: str) -> list[str]:
        calls.append(text)
        return tokenize(text)

    unweighted = Weights(terms=0.0, prefixes=0.2, kind=0.3, neighbour=0.4)
    values = scores("vectors", TEXT, SPANS, TERMS, counting, sims, question, unweighted)
    assert np.allclose(values, expected - 0.1 * terms) and calls == []
    # with the shipped weights the words outweigh the last sentence's closer vector
    closer = np.array([0.8, 0.8, 0.8, 0.84])
    assert choose("vectors", TEXT, SPANS, TERMS, tokenize, closer, question) == SPANS[1]
    # without them the closest wins (short: its neighbour comes along)
    assert choose("vectors", TEXT, SPANS, {}, tokenize, closer) == (SPANS[2][0], SPANS[3][1])


def test_the_question_word_asks_for_a_time_an_amount_or_a_name() -> None:
    two = ["Loven ble vedtatt i 2019 av 300 representanter.", "Den gjelder alle i Norge."]
    assert answer_type("Når ble loven vedtatt?", two).tolist() == [1, 0]
    assert answer_type("Hvor mange stemte for loven?", two).tolist() == [1, 0]
    assert answer_type("How many voted for the law?", two).tolist() == [1, 0]
    assert answer_type("Hvor gjelder loven?", two).tolist() == [0, 1]  # a name: "Norge"
    assert answer_type("Hvem gjelder loven i Norge?", two).tolist() == [0, 0]  # asked already
    assert answer_type("Hva sier loven?", two).tolist() == [0, 0]
    found = prefix_overlap("Hvem har ansvar for fylkesvegene?", ["Fylket har ansvaret.", "Nei."])
    assert found.tolist() == [2 / 3, 0]
    assert prefix_overlap("Hva er det?", ["Ja."]).tolist() == [0]  # no word over 3 letters


def test_a_short_or_tied_winner_takes_its_neighbour_along() -> None:
    spans = [(0, 10), (11, 60), (61, 70), (71, 120)]
    values = np.array([0.1, 0.9, 0.2, 0.3])
    assert pick(spans, values) == (11, 60)
    assert pick(spans, np.array([0.1, 0.2, 0.9, 0.3])) == (61, 120)  # (61, 70) is short
    # the answer across a sentence end: both sentences score alike
    assert pick(spans, np.array([0.1, 0.9, 0.2, 0.89]), pair_margin=0.0) == (11, 60)
    assert pick(spans, np.array([0.1, 0.9, 0.89, 0.2]), pair_margin=0.02) == (11, 70)
    assert pick(spans, values, pairs=False) == (11, 60)


def _table(text: str, path: str = "a.txt", dim: int = 4) -> SentenceTable:
    spans = np.array(split(text), dtype=np.int64)
    vectors = np.eye(len(spans), dim, dtype=np.float16)
    return SentenceTable(spans, vectors, {path: (0, len(spans))})


def test_locate_clips_to_the_passage_and_uses_stored_vectors() -> None:
    table = _table(TEXT)
    start, end = 5, len(TEXT) - 3  # a passage cut inside the first and the last sentence
    hit = Hit(Passage("a.txt", start, end, TEXT[start:end], 1, 1), 1.0, 1)
    query = np.array([0, 0, 0, 1], dtype=np.float32)  # the vector of the fourth sentence
    locate([hit], "vectors", query, table, {"a.txt": TEXT}, {}, tokenize)
    # the fourth sentence, clipped at the passage end, is short: its neighbour comes along
    assert (hit.answer_start, hit.answer_end) == (SPANS[2][0], end)
    first = Hit(Passage("a.txt", start, end, TEXT[start:end], 1, 1), 1.0, 1)
    locate([first], "first", query, table, {"a.txt": TEXT}, {}, tokenize)
    assert (first.answer_start, first.answer_end) == (start, SPANS[0][1])
    missing = Hit(Passage("b.txt", 0, 5, "Hei.", 1, 1), 1.0, 1)  # no sentences: the passage
    locate([missing], "vectors", query, table, {}, {}, tokenize)
    assert (missing.answer_start, missing.answer_end) == (0, 5)


@pytest.mark.parametrize("method", ["vectors", "query", "words", "first"])
def test_every_hit_of_every_method_has_a_valid_span(
    method: str, tiny_index: object, settings: Settings, fake_embedder: object
) -> None:
    s = settings.model_copy(update={"answer_span": method})
    retriever = Retriever.load(s.index_dir, s, fake_embedder)  # type: ignore[arg-type]
    for query in ("Hvem har ansvar for fylkesvegene?", "kulturskole", "sykehjem kommuner"):
        hits = retriever.search(query, 4).hits
        assert hits
        for h in hits:
            p = h.passage
            assert h.answer_start is not None and h.answer_end is not None
            assert p.start <= h.answer_start < h.answer_end <= p.end
            span = (retriever.source_text(p.source) or "")[h.answer_start : h.answer_end]
            assert span == span.strip() and span in p.text


def test_the_answering_sentence_is_chosen_in_the_tiny_corpus(
    tiny_index: object, settings: Settings, fake_embedder: object
) -> None:
    retriever = Retriever.load(settings.index_dir, settings, fake_embedder)  # type: ignore[arg-type]
    hit = retriever.search("Hvor mye koster vedlikeholdet av vegene?", 1).hits[0]
    text = retriever.source_text(hit.passage.source) or ""
    assert text[hit.answer_start : hit.answer_end] == (
        "Vedlikeholdet av vegene koster 3,2 milliarder kroner i 2024."
    )


def test_query_time_sentences_are_embedded_in_one_call(
    tiny_index: object, settings: Settings, fake_embedder: object
) -> None:
    s = settings.model_copy(update={"answer_span": "query"})
    retriever = Retriever.load(s.index_dir, s, fake_embedder)  # type: ignore[arg-type]
    calls = fake_embedder.calls  # type: ignore[attr-defined]
    retriever.search("Hvor mye koster vedlikeholdet av vegene?", 3)
    assert fake_embedder.calls == calls + 2  # type: ignore[attr-defined]  # query + sentences
