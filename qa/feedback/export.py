"""Votes → gold questions in the JSON Lines format ``qa eval --gold`` reads.

- An up-voted span becomes a question with that source, the span's text (as the index
  served it) as the answer and its offset as ``answer_start``.
- A "none" becomes an unanswerable candidate (``"answerable": false``, no source).
- The same question asked again (same normalised text) merges: one line per (question,
  span), one "none" line per question, with the number of votes behind it.
- Contradictions are left out and counted: a span voted both up and down for the same
  question, and a "none" for a question where some span was voted up.
- "opened" and "down" alone never make a line.

Ids are stable (a hash of the normalised question and the span), so the export of a later
day keeps the ids of the questions it shares with an earlier one. User names are never
exported.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.feedback.store import Entry

SpanKey = tuple[str, str, int, int]  # (normalised question, source, start, end)


def normalise(query: str) -> str:
    """The form under which questions merge: NFKC, case folded, one space between words,
    no question mark or full stop at the end."""
    text = " ".join(unicodedata.normalize("NFKC", query).casefold().split())
    return text.rstrip(" ?.!？")


def _id(*parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return f"fb-{digest[:16]}"


@dataclass
class ExportReport:
    """What was written and what was skipped (each reason counted)."""

    answerable: int = 0
    unanswerable: int = 0
    votes_used: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def written(self) -> int:
        return self.answerable + self.unanswerable

    def lines(self) -> list[str]:
        """Human summary, one fact a line."""
        out = [
            f"wrote {self.written} questions ({self.answerable} answerable, "
            f"{self.unanswerable} unanswerable) from {self.votes_used} votes"
        ]
        reasons = {
            "contradicting": "(question, span) pairs voted both up and down",
            "none_contradicted": '"none" questions where a span was also voted up',
            "down_only": "(question, span) pairs only voted down",
            "opened_only": "(question, span) pairs only opened",
        }
        for key, text in reasons.items():
            if self.skipped[key]:
                out.append(f"skipped {self.skipped[key]} {text}")
        return out


@dataclass
class _Span:
    up: int = 0
    down: int = 0
    opened: int = 0
    questions: Counter[str] = field(default_factory=Counter)
    text: str = ""
    version: str = ""


def spelling(forms: Counter[str]) -> str:
    """The most frequent spelling of a merged question (on a tie the first in text order:
    the export does not depend on the order of the votes)."""
    return min(forms, key=lambda q: (-forms[q], q))


def gold_lines(entries: Iterable[Entry]) -> tuple[list[dict[str, Any]], ExportReport]:
    """The gold records (answerable first, each group in a stable order) and the report."""
    from qa.language import detect

    spans: dict[SpanKey, _Span] = defaultdict(_Span)
    nones: dict[str, Counter[str]] = defaultdict(Counter)
    for e in entries:
        norm = normalise(e.query)
        if e.vote == "none":
            nones[norm][e.query] += 1
            continue
        if e.source is None or e.start is None or e.end is None:
            continue
        span = spans[(norm, e.source, e.start, e.end)]
        setattr(span, e.vote, getattr(span, e.vote) + 1)
        span.questions[e.query] += 1
        span.text, span.version = e.text or span.text, e.index_version

    report = ExportReport()
    records: list[dict[str, Any]] = []
    answered: set[str] = set()
    for (norm, source, start, end), span in sorted(spans.items()):
        if span.up and span.down:
            report.skipped["contradicting"] += 1
        elif span.up and span.text:
            answered.add(norm)
            question = spelling(span.questions)
            records.append(
                {
                    "id": _id(norm, source, start, end),
                    "question": question,
                    "lang": detect(question),
                    "source": source,
                    "answer": span.text,
                    "answer_start": start,
                    "answerable": True,
                    "votes": span.up,
                    "index_version": span.version,
                }
            )
            report.answerable += 1
            report.votes_used += span.up + span.opened
        elif span.down:
            report.skipped["down_only"] += 1
        else:
            report.skipped["opened_only"] += 1
    for norm, forms in sorted(nones.items()):
        if norm in answered:
            report.skipped["none_contradicted"] += 1
            continue
        question = spelling(forms)
        records.append(
            {
                "id": _id(norm, "none"),
                "question": question,
                "lang": detect(question),
                "source": None,
                "answer": None,
                "answerable": False,
                "votes": sum(forms.values()),
            }
        )
        report.unanswerable += 1
        report.votes_used += sum(forms.values())
    return records, report


def write_gold(entries: Iterable[Entry], out: Path) -> ExportReport:
    """Write the gold JSON Lines to ``out`` (through a temporary file: never half written)."""
    records, report = gold_lines(entries)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(out)
    return report
