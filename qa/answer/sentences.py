"""Sentences of a source text, as exact ``(start, end)`` offsets (whitespace trimmed).

sentencex (rule-based, hundreds of languages) finds the sentence ends inside a block; blocks
are cut first at blank lines and at line breaks before a bullet, a capital or a digit, so a
heading or a list item without a full stop never glues paragraphs together (sentencex alone
joined a list item to the next paragraph). Its splits after Norwegian abbreviations it does
not know ("f.eks. | kap. | 3", "1. | januar") are joined again: a sentence does not begin
with a small letter, nor with a number after a short abbreviation.
"""

from __future__ import annotations

import re
from functools import lru_cache

import sentencex

#: Rules of this module and sentencex's, recorded in the manifest: other rules, other spans.
SPLITTER = "sentencex+qa-1"
_LANGS = {"en": "en", "nn": "da", "nb": "da", "no": "da", "da": "da", "sv": "sv"}
#: A line break ends a block when the next line opens with one of these (not a small letter:
#: a wrapped line of the same sentence).
_BLOCK_BREAK = re.compile(r"\n[ \t]*\n\s*|\n(?=[ \t]*(?:[-*•–—▪◦]|\d+[.)]?\s|[^\W\d_a-zæøå]))")
_SHORT_ABBREVIATION = re.compile(r"(?:^|[\s(])[a-zæøå.]{1,5}\.$")
#: Sentences longer than this are cut at their line breaks, if they have any.
LONG = 600
#: What each sentence is embedded with (``in_context``), recorded in the manifest: other
#: context, other vectors.
CONTEXT = "title-1"
#: Characters of the title put before each sentence.
TITLE_CHARS = 150


def title_of(text: str) -> str:
    """A source's title for its sentences' context: its first line (a heading, mostly)."""
    return text.strip().split("\n", 1)[0][:TITLE_CHARS]


def in_context(title: str, sentence: str) -> str:
    """The text embedded for a sentence: alone, "Han ble valgt i 2019." says nothing of
    what it is about, so its source's title goes before it."""
    return f"{title}: {sentence}" if title else sentence


def _blocks(text: str) -> list[tuple[int, int]]:
    """``text`` cut at blank lines and at line breaks that start a new item or heading."""
    out, lo = [], 0
    for m in _BLOCK_BREAK.finditer(text):
        out.append((lo, m.start()))
        lo = m.end()
    out.append((lo, len(text)))
    return out


@lru_cache(maxsize=8)
def _language(lang: str) -> str:
    return _LANGS.get(lang, "da")


def _pieces(text: str, lo: int, hi: int, lang: str) -> list[tuple[int, int]]:
    """sentencex's sentences of ``text[lo:hi]``, as offsets into ``text``."""
    block = text[lo:hi]
    out, cursor = [], 0
    for b in sentencex.get_sentence_boundaries(_language(lang), block):
        piece = str(b["text"])
        start = int(b["start_index"])
        if block[start : start + len(piece)] != piece:  # never trust offsets blindly
            start = block.find(piece, cursor)
            if start < 0:
                continue
        out.append((lo + start, lo + start + len(piece)))
        cursor = start + len(piece)
    return out or [(lo, hi)]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _joins(text: str, prev: tuple[int, int], nxt: tuple[int, int]) -> bool:
    """Whether ``nxt`` continues ``prev``: sentencex split after an abbreviation."""
    first = text[nxt[0]]
    if first.islower():
        return True
    return first.isdigit() and bool(_SHORT_ABBREVIATION.search(text[prev[0] : prev[1]]))


def _cut_long(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A very long "sentence" (a table, a list without marks) cut at its line breaks."""
    if end - start <= LONG or "\n" not in text[start:end]:
        return [(start, end)]
    out, lo = [], start
    for m in re.finditer(r"\n", text[start:end]):
        out.append((lo, start + m.start()))
        lo = start + m.end()
    out.append((lo, end))
    return out


def split(text: str, lang: str = "nb") -> list[tuple[int, int]]:
    """The sentences of ``text`` in order: ``(start, end)`` with no whitespace at either end;
    every non-space character lies in exactly one of them."""
    spans: list[tuple[int, int]] = []
    for lo, hi in _blocks(text):
        merged: list[tuple[int, int]] = []
        for s, e in _pieces(text, lo, hi, lang):
            s, e = _trim(text, s, e)
            if s >= e:
                continue
            if merged and _joins(text, merged[-1], (s, e)):
                merged[-1] = (merged[-1][0], e)
            else:
                merged.append((s, e))
        for s, e in merged:
            spans.extend(p for p in (_trim(text, *c) for c in _cut_long(text, s, e)) if p[0] < p[1])
    return spans
