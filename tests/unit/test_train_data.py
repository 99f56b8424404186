"""Mining training triples for the adapter (qa.train.data), on a tiny corpus, fake embedder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.config import Settings
from qa.train import data
from tests.support.fake import FakeEmbedder

TEXTS = {
    f"tekst{i}.txt": "\n\n".join(
        [
            f"Kommune {i} har et nytt rådhus bygget i år {1990 + i}.",
            f"Ordføreren i kommune {i} heter Person{i} og kommer fra {by}.",
            f"Skolen i kommune {i} har {100 + i} elever og mange lærere.",
            f"Veien til kommune {i} ble asfaltert av firmaet Vei{i} AS.",
        ]
    )
    for i, by in enumerate(["Oslo", "Bergen", "Molde", "Tromsø", "Bodø", "Hamar", "Skien"])
}
ASKED = [("Hvem er ordfører i kommune {i}?", "Person{i}"), ("Hvor mange elever i {i}?", "{n}")]


@pytest.fixture
def train_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "norquad-train"
    (folder / "sources").mkdir(parents=True)
    rows = []
    for i, (name, text) in enumerate(TEXTS.items()):
        (folder / "sources" / name).write_text(text, encoding="utf-8")
        for question, answer in ASKED:
            ans = answer.format(i=i, n=100 + i)
            rows.append(
                {
                    "id": f"q{len(rows)}",
                    "question": question.format(i=i),
                    "source": name,
                    "answer": ans,
                    "answer_start": text.index(ans),
                }
            )
    (folder / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return folder


@pytest.fixture
def tiny_settings(tmp_path: Path) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", chunk_size=80, chunk_overlap=10, _env_file=None)


def test_mined_triples_hold_the_answer_and_negatives_do_not(
    train_dir: Path, tmp_path: Path, tiny_settings: Settings
) -> None:
    mined = data.prepare(train_dir, tmp_path / "work", tiny_settings, FakeEmbedder(), share=0.3)
    assert len(mined.passages) > len(TEXTS)  # several passages a text: a real choice
    examples = mined.train + mined.held_out
    assert len(examples) == len(TEXTS) * len(ASKED)
    for ex in examples:
        q = ex.question
        for row in ex.positives:
            p = mined.passages[row]
            assert p.source == q.source
            assert p.start <= q.answer_start < q.answer_start + len(q.answer) <= p.end
            assert q.answer in p.text
        assert ex.negatives, q  # every question here has wrong passages to learn from
        for row in ex.negatives:
            assert q.answer.casefold() not in mined.passages[row].text.casefold()
    cols = mined.triples()
    assert len(cols["anchor"]) == len(mined.train) == len(cols["positive"])
    assert all(a in p for a, p in zip(_answers(mined.train), cols["positive"], strict=True))


def _answers(examples: list[data.Example]) -> list[str]:
    return [ex.question.answer for ex in examples]


def test_held_out_split_is_by_text(
    train_dir: Path, tmp_path: Path, tiny_settings: Settings
) -> None:
    mined = data.prepare(train_dir, tmp_path / "work", tiny_settings, FakeEmbedder(), share=0.3)
    out = mined.held_out_texts
    assert 0 < len(out) < len(TEXTS)
    assert {ex.question.source for ex in mined.held_out} <= out
    assert not {ex.question.source for ex in mined.train} & out
    # training questions never meet a held-out passage, as positive or negative
    for ex in mined.train:
        assert all(mined.passages[r].source not in out for r in ex.positives + ex.negatives)
    assert {mined.passages[r].source for r in mined.held_out_rows} == out
    # seeded: the same texts again; another seed may pick others
    assert data.held_out_texts(list(TEXTS), 0.3, 13) == out
    assert data.held_out_texts(list(TEXTS), 0.3, 13) == data.held_out_texts(list(TEXTS), 0.3, 13)


def test_nothing_of_the_judge_set_is_read(
    train_dir: Path, tmp_path: Path, tiny_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    validation = tmp_path / "norquad-validation"
    (validation / "sources").mkdir(parents=True)
    (validation / "gold.jsonl").write_text("{}\n")
    opened: list[str] = []
    real_open = Path.open

    def spy(self: Path, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        opened.append(str(self.resolve()))
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", spy)
    data.prepare(train_dir, tmp_path / "work", tiny_settings, FakeEmbedder())
    assert opened and not [p for p in opened if str(validation) in p]
    with pytest.raises(ValueError, match="validation"):
        data.load_questions(validation)
    with pytest.raises(ValueError, match="validation"):
        data.index_texts(validation, tmp_path / "w2", tiny_settings, FakeEmbedder())
