"""The widget's pure text functions (answer span, keyword marks, excerpt), run in Node.

widget.js is a browser module; with two stubs (HTMLElement, customElements) Node can import
it and call its exported helpers, which is much faster than a browser for the edge cases.
The browser tests (tests/system/test_widget_*.py) cover the same code through the real page.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path

import pytest

WIDGET = Path(__file__).resolve().parents[2] / "qa" / "static" / "widget.js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node.js")

HARNESS = """
globalThis.HTMLElement = class {};
globalThis.customElements = { get: () => true, define() {} };
const w = await import(process.argv[2]);
const cases = JSON.parse(process.argv[3]);
const out = cases.map(([fn, args]) => {
  try { return w[fn](...args); } catch (e) { return { error: String(e) }; }
});
process.stdout.write(JSON.stringify(out));
"""


def call(tmp_path: Path, *cases: tuple[str, list]) -> list:  # type: ignore[type-arg]
    """Results of calling widget.js's exported functions: one (name, args) per case."""
    script = tmp_path / "harness.mjs"
    script.write_text(HARNESS, encoding="utf-8")
    done = subprocess.run(
        [str(NODE), str(script), WIDGET.as_uri(), json.dumps(list(cases))],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def runs_as_tuples(runs: list[dict]) -> list[tuple[int, int, bool, bool]]:
    return [(r["from"], r["to"], r["mark"], r["answer"]) for r in runs]


def test_keyword_crossing_the_answer_edges_is_split(tmp_path: Path) -> None:
    [runs] = call(tmp_path, ("highlightRuns", [20, [[2, 5], [8, 12], [14, 16]], [4, 15]]))
    assert runs_as_tuples(runs) == [
        (0, 2, False, False),
        (2, 4, True, False),
        (4, 5, True, True),  # the keyword's part inside the answer
        (5, 8, False, True),
        (8, 12, True, True),
        (12, 14, False, True),
        (14, 15, True, True),
        (15, 16, True, False),
        (16, 20, False, False),
    ]


def test_runs_without_answer_overlapping_and_out_of_range_spans(tmp_path: Path) -> None:
    no_answer, overlapping, outside, bad_answer = call(
        tmp_path,
        ("highlightRuns", [6, [[1, 3]], None]),
        ("highlightRuns", [10, [[5, 8], [1, 4], [3, 6]], None]),
        ("highlightRuns", [5, [[-3, 2], [4, 99]], [3, 99]]),
        ("highlightRuns", [5, [], [4, 2]]),
    )
    assert runs_as_tuples(no_answer) == [
        (0, 1, False, False),
        (1, 3, True, False),
        (3, 6, False, False),
    ]
    assert runs_as_tuples(overlapping) == [
        (0, 1, False, False),
        (1, 8, True, False),
        (8, 10, False, False),
    ]
    assert runs_as_tuples(outside) == [
        (0, 2, True, False),
        (2, 3, False, False),
        (3, 4, False, True),
        (4, 5, True, True),
    ]
    assert runs_as_tuples(bad_answer) == [(0, 5, False, False)]


def test_runs_cover_the_text_and_agree_with_the_spans(tmp_path: Path) -> None:
    """Many random cases: the runs tile [0, n), and each flag is exactly the membership."""
    import random

    rng = random.Random(14)
    cases = []
    for _ in range(300):
        n = rng.randint(0, 40)
        spans = []
        for _ in range(rng.randint(0, 5)):
            a = rng.randint(-2, n + 2)
            spans.append([a, a + rng.randint(-1, 8)])
        answer = None
        if rng.random() < 0.8:
            a = rng.randint(-2, n + 2)
            answer = [a, a + rng.randint(-1, 15)]
        cases.append((n, spans, answer))
    results = call(tmp_path, *[("highlightRuns", list(c)) for c in cases])
    for (n, spans, answer), runs in zip(cases, results, strict=True):
        pos = 0
        for r in runs:
            assert r["from"] == pos and r["to"] > r["from"], (n, spans, answer, runs)
            pos = r["to"]
            for i in range(r["from"], r["to"]):
                assert r["mark"] == any(a <= i < b for a, b in spans)
                assert r["answer"] == bool(answer and answer[0] <= i < answer[1])
        assert pos == n
        starts = [b for a, b in itertools.pairwise(runs) if b["answer"] and not a["answer"]]
        assert len(starts) <= 1  # the answer is one element


def test_excerpt_keeps_the_answer_whole_and_exact(tmp_path: Path) -> None:
    words = "ord " * 200
    sentence = "Svaret står her, i denne\nsetningen."
    text = words + sentence + " mer" * 200
    a = len(words)
    b = a + len(sentence)
    short = "  Første setning.\nKari Nordmann ledet møtet.\n\nTredje.  "
    s_a = short.index("Kari")
    s_b = short.index("Tredje") - 2
    long_answer = "x" * 900
    found, small, too_long, none = call(
        tmp_path,
        ("excerpt", [text, ["svaret"], 300, [a, b]]),
        ("excerpt", [short, ["ledet"], 300, [s_a, s_b]]),
        ("excerpt", ["start " + long_answer + " slutt", [], 300, [6, 906]]),
        ("excerpt", [text, ["svaret"], 300, None]),
    )
    start, end = found["answer"]
    assert found["text"][start:end] == sentence  # the source's own characters, line break too
    assert found["text"].startswith("… ") and found["text"].endswith(" …")
    assert len(found["text"]) <= 300 + 4
    [[k0, k1]] = found["spans"]
    assert found["text"][k0:k1] == "Svaret"
    # A short passage: trimmed, not cut, the answer relative to the trimmed text.
    assert small["text"] == short.strip()
    assert small["text"][small["answer"][0] : small["answer"][1]] == short[s_a:s_b]
    # An answer longer than twice the excerpt is shown up to that length.
    assert too_long["answer"][1] - too_long["answer"][0] == 600
    # Without an answer: the keyword's neighbourhood, as before.
    assert none["answer"] is None
    assert "Svaret" in none["text"] and len(none["text"]) <= 304


def test_answer_range_validates_and_counts_code_points(tmp_path: Path) -> None:
    base = {"text": "😀 Svar her. Mer.", "start": 10, "end": 26}
    good, outside, reversed_, missing, strings = call(
        tmp_path,
        ("answerRange", [{**base, "answer_start": 12, "answer_end": 22}]),
        ("answerRange", [{**base, "answer_start": 9, "answer_end": 22}]),
        ("answerRange", [{**base, "answer_start": 20, "answer_end": 20}]),
        ("answerRange", [base]),
        ("answerRange", [{**base, "answer_start": "12", "answer_end": "22"}]),
    )
    # Python offsets count the emoji as one character, JavaScript as two UTF-16 units.
    assert good == [3, 13]
    assert outside is None and reversed_ is None and missing is None and strings is None
