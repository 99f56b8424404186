"""Votes → gold lines: merging, contradictions left out and counted, "none" as unanswerable,
and the file loads with ``qa eval``'s own reader. Also the statistics."""

from __future__ import annotations

import json
from pathlib import Path

from qa.eval.run import load_gold
from qa.feedback import Entry
from qa.feedback.export import gold_lines, normalise, write_gold
from qa.feedback.stats import compute

FRIST = "Fylkeskommunen har ansvar for fylkesvegene."


def e(query: str, vote: str, start: int = 16, end: int = 59, **kw: object) -> Entry:
    if vote == "none":
        return Entry(query=query, vote="none", index_version="v1", at="2025-06-01T10:00:00Z")
    span = {"source": "veg.txt", "start": start, "end": end, "text": FRIST}
    return Entry(query=query, vote=vote, index_version="v1", at="2025-06-01T10:00:00Z",  # type: ignore[arg-type]
                 **{**span, **kw})  # fmt: skip


VOTES = [
    e("Hvem har ansvar for fylkesvegene?", "up", user="kari"),
    e("hvem  har ansvar for FYLKESVEGENE", "up"),  # the same question: merges
    e("Hvem har ansvar for fylkesvegene?", "opened"),
    e("Hvor mye koster vedlikeholdet?", "up", start=60, end=120),
    e("Hvor mye koster vedlikeholdet?", "down", start=60, end=120),  # contradiction
    e("Hvor mye koster vedlikeholdet?", "down", start=0, end=14),  # down alone
    e("Når inspiseres bruer?", "opened", start=121, end=170),  # opened alone
    e("Hvem eier månen?", "none"),
    e("hvem eier månen", "none"),  # merges
    e("Hvem har ansvar for fylkesvegene", "none"),  # contradicted by the up votes
]


def test_normalise_merges_spelling_not_meaning() -> None:
    assert (
        normalise("  Hvem  har ANSVAR?\u00a0") == normalise("hvem har ansvar") == "hvem har ansvar"
    )
    assert normalise("Hvem har ansvar for veg?") != normalise("Hvem har ansvar for bru?")


def test_merge_contradictions_and_unanswerable() -> None:
    records, report = gold_lines(VOTES)
    assert [(r["question"], r["answerable"], r["votes"]) for r in records] == [
        ("Hvem har ansvar for fylkesvegene?", True, 2),
        ("Hvem eier månen?", False, 2),
    ]
    up, none = records
    assert (up["source"], up["answer"], up["answer_start"]) == ("veg.txt", FRIST, 16)
    assert none["source"] is None and none["answer"] is None
    assert up["lang"] == "nb" and "user" not in json.dumps(records) and "kari" not in str(records)
    assert (report.answerable, report.unanswerable) == (1, 1)
    assert dict(report.skipped) == {
        "contradicting": 1,
        "down_only": 1,
        "opened_only": 1,
        "none_contradicted": 1,
    }
    text = "\n".join(report.lines())
    assert "wrote 2 questions (1 answerable, 1 unanswerable)" in text
    assert "skipped 1 (question, span) pairs voted both up and down" in text


def test_ids_are_stable_and_distinct() -> None:
    first, _ = gold_lines(VOTES)
    again, _ = gold_lines([*reversed(VOTES), e("Hva er nytt?", "up", start=0, end=14)])
    ids = {r["question"]: r["id"] for r in first}
    assert {r["question"]: r["id"] for r in again if r["question"] in ids} == ids
    other_span, _ = gold_lines([e("Hvem har ansvar for fylkesvegene?", "up", start=0, end=14)])
    assert other_span[0]["id"] != ids["Hvem har ansvar for fylkesvegene?"]
    assert len({r["id"] for r in again}) == len(again)


def test_the_export_loads_with_load_gold(tmp_path: Path) -> None:
    out = tmp_path / "ut" / "gull.jsonl"
    report = write_gold(VOTES, out)
    gold = load_gold(out)
    assert report.written == len(gold) == 2
    assert [(g.source, g.answer, g.answer_start, g.answerable) for g in gold] == [
        ("veg.txt", FRIST, 16, True),
        (None, None, None, False),
    ]
    assert not list(out.parent.glob(".*.tmp"))


def test_stats_counts_clicks_and_unanswered() -> None:
    stats = compute(VOTES, {"2025-06-01": 10, "2025-05-31": 2})
    assert stats.votes == {"up": 3, "opened": 2, "down": 2, "none": 3}
    # clicked: two questions with an "opened" or "up" that day, three different questions
    assert stats.clicked == 3 and stats.searches == 12
    assert stats.no_click_share == 1 - 3 / 12
    assert stats.unanswered == [("Hvem eier månen?", 2)]  # only none/down, never up
    text = "\n".join(stats.lines())
    assert "searches with no click (estimate): 75.0%" in text and "Hvem eier månen?" in text
    assert compute([], {}).no_click_share is None
