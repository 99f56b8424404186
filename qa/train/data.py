"""Training triples (question, passage holding the answer, hard negative) from NorQuAD-style data.

The passages are the service's own: the training texts are indexed with ``build_index``
(same reader, chunker and settings as ``qa index``), so a positive is exactly a passage the
service would return. Hard negatives are the highest-ranked passages of the service's own
dense and BM25 lists that do not hold the answer. A slice of the *texts* (not questions) is
held out, so the model is selected on passages it has never been trained on. Only the
folder given is read: the validation set is the judge and never seen here.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.config import Settings

if TYPE_CHECKING:
    from qa.index import LoadedIndex
    from qa.types import Embedder, Passage

#: Ranks read from each side when looking for hard negatives.
DEPTH = 20


@dataclass(frozen=True)
class Question:
    """One training question and where its answer is in its text."""

    id: str
    question: str
    source: str
    answer: str
    answer_start: int


@dataclass(frozen=True)
class Example:
    """A question with the rows (passages of the index) that hold its answer and some that
    do not: the best-ranked wrong passages of the dense and BM25 lists, alternately."""

    question: Question
    positives: tuple[int, ...]
    negatives: tuple[int, ...]


@dataclass
class Mined:
    """Training examples (training texts only) and the held-out texts' examples and rows."""

    passages: list[Passage]
    train: list[Example]
    held_out: list[Example]
    held_out_rows: list[int]
    held_out_texts: set[str] = field(default_factory=set)

    def triples(self) -> dict[str, list[str]]:
        """Columns for sentence-transformers: anchor, positive, negative (one per example)."""
        cols: dict[str, list[str]] = {"anchor": [], "positive": [], "negative": []}
        for ex in self.train:
            if not ex.negatives:
                continue
            cols["anchor"].append(ex.question.question)
            cols["positive"].append(self.passages[ex.positives[0]].text)
            cols["negative"].append(self.passages[ex.negatives[0]].text)
        return cols


def check_not_validation(data_dir: Path) -> None:
    """The validation set judges the result: training on it (by mistake) is refused."""
    if "validation" in Path(data_dir).resolve().name.lower():
        raise ValueError(f"{data_dir} looks like a validation set: train on training data only")


def load_questions(data_dir: Path) -> list[Question]:
    """``train.jsonl`` of ``data_dir`` (fields as in the NorQuAD gold files)."""
    check_not_validation(data_dir)
    out = []
    with (Path(data_dir) / "train.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                out.append(
                    Question(
                        str(row["id"]),
                        row["question"],
                        row["source"],
                        row["answer"],
                        int(row["answer_start"]),
                    )
                )
    return out


def held_out_texts(sources: list[str], share: float, seed: int) -> set[str]:
    """A seeded ``share`` of the texts (at least one when there are two or more)."""
    names = sorted(set(sources))
    n = min(len(names) - 1, max(1, round(len(names) * share))) if len(names) > 1 else 0
    return set(random.Random(seed).sample(names, n))


def holds(p: Passage, q: Question) -> bool:
    """Whether passage ``p`` holds the answer of ``q`` where the annotator found it."""
    end = q.answer_start + len(q.answer)
    return p.source == q.source and p.start <= q.answer_start and end <= p.end


def index_texts(
    data_dir: Path, work_dir: Path, settings: Settings, embedder: Embedder
) -> LoadedIndex:
    """Index ``data_dir/sources`` exactly as ``qa index`` would, into ``work_dir/index``."""
    from qa.index import build_index, load_index

    check_not_validation(data_dir)
    own = settings.model_copy(
        update={"sources_dir": Path(data_dir) / "sources", "index_dir": Path(work_dir) / "index"}
    )
    build_index(own, embedder, progress=False)
    return load_index(own.index_dir, own, embedder)


def _interleave(a: list[int], b: list[int]) -> list[int]:
    seen: set[int] = set()
    out = []
    for pair in zip(a, b, strict=False):
        for row in pair:
            if row not in seen:
                seen.add(row)
                out.append(row)
    for row in a[len(b) :] + b[len(a) :]:
        if row not in seen:
            seen.add(row)
            out.append(row)
    return out


def mine(
    index: LoadedIndex,
    questions: list[Question],
    embedder: Embedder,
    held_out: set[str],
    negatives: int = 1,
) -> Mined:
    """Positives and hard negatives for every question whose answer a passage holds.

    A negative never holds the answer text anywhere (case-folded), so a passage that
    answers in other places of the text is not taught as wrong; training questions only
    get passages of training texts, held-out ones passages of held-out texts.
    """
    from qa.index import dense

    passages = index.passages
    if index.dense is None or index.lexical is None:
        raise ValueError("the index was loaded without its search halves")
    vectors = embedder.embed_queries([q.question for q in questions])
    ids, _ = dense.search(index.dense, np.asarray(vectors, np.float32), DEPTH * 4)
    train: list[Example] = []
    kept_out: list[Example] = []
    for q, row_ids in zip(questions, ids, strict=True):
        positives = tuple(i for i, p in enumerate(passages) if holds(p, q))
        if not positives:
            continue
        side = q.source in held_out
        answer = q.answer.casefold()

        def usable(row: int, side: bool = side, answer: str = answer) -> bool:
            p = passages[row]
            return (p.source in held_out) == side and answer not in p.text.casefold()

        dense_rows = [int(i) for i in row_ids if i >= 0 and usable(int(i))][:DEPTH]
        lex_rows = [int(i) for i in index.lexical.search(q.question, DEPTH * 4)[0]]
        lex_rows = [i for i in lex_rows if usable(i)][:DEPTH]
        wrong = tuple(_interleave(dense_rows, lex_rows)[:negatives])
        (kept_out if side else train).append(Example(q, positives, wrong))
    rows = [i for i, p in enumerate(passages) if p.source in held_out]
    return Mined(list(passages), train, kept_out, rows, set(held_out))


def prepare(
    data_dir: Path,
    work_dir: Path,
    settings: Settings,
    embedder: Embedder,
    share: float = 0.1,
    seed: int = 13,
    limit: int | None = None,
) -> Mined:
    """Questions, index, held-out split and mining in one call (``limit``: first questions)."""
    questions = load_questions(data_dir)[:limit]
    index = index_texts(data_dir, work_dir, settings, embedder)
    out = held_out_texts([q.source for q in questions], share, seed)
    return mine(index, questions, embedder, out)
