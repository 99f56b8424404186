"""What ``qa feedback stats`` prints: votes, searches without a click, unanswered questions.

Searches are counted per day without their text, and votes carry no search id, so "clicked"
is estimated: a search counts as clicked once per (normalised question, UTC day) with an
"opened" or "up" vote. The share without a click is 1 − clicked / searches over the days
kept (``QA_FEEDBACK_DAYS``), never below 0.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from qa.feedback.export import normalise, spelling
from qa.feedback.store import VOTES, Entry

TOP = 10


@dataclass
class Stats:
    """The figures; ``unanswered`` is (question, votes) for the most frequent ones."""

    votes: dict[str, int]
    searches: int
    clicked: int
    unanswered: list[tuple[str, int]] = field(default_factory=list)

    @property
    def no_click_share(self) -> float | None:
        """Share of searches with no click, or None before any search was counted."""
        if not self.searches:
            return None
        return max(0.0, 1.0 - self.clicked / self.searches)

    def lines(self) -> list[str]:
        out = ["votes: " + ", ".join(f"{v} {self.votes.get(v, 0)}" for v in VOTES)]
        share = self.no_click_share
        shown = "n/a (no searches counted)" if share is None else f"{share:.1%}"
        out.append(f"searches counted: {self.searches}")
        out.append(f"searches with no click (estimate): {shown} ({self.clicked} clicked)")
        if self.unanswered:
            out.append(f"most frequent questions with no good answer (top {TOP}):")
            width = max(len(str(n)) for _, n in self.unanswered)
            out += [f"  {n:>{width}}  {question}" for question, n in self.unanswered]
        else:
            out.append("no questions without a good answer")
        return out


def compute(entries: Iterable[Entry], searches: dict[str, int], top: int = TOP) -> Stats:
    """Counts per vote; clicks; questions that got "none" or only "down" votes."""
    votes: Counter[str] = Counter()
    clicks: set[tuple[str, str]] = set()
    bad: Counter[str] = Counter()
    good: set[str] = set()
    forms: dict[str, Counter[str]] = defaultdict(Counter)
    for e in entries:
        votes[e.vote] += 1
        norm = normalise(e.query)
        forms[norm][e.query] += 1
        if e.vote in ("opened", "up"):
            clicks.add((norm, e.at[:10]))
        if e.vote == "up":
            good.add(norm)
        elif e.vote in ("none", "down"):
            bad[norm] += 1
    unanswered = [
        (spelling(forms[norm]), n)
        for norm, n in sorted(bad.items(), key=lambda item: (-item[1], item[0]))
        if norm not in good
    ][:top]
    return Stats(dict(votes), sum(searches.values()), len(clicks), unanswered)
