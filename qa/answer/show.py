"""The answer span shown in a terminal: bold inside the passage (``qa ask``)."""

from __future__ import annotations

import click

from qa.types import Hit


def marked_text(hit: Hit) -> str:
    """The passage text with its answer span in bold, line by line (so an indent added per
    line never falls inside the style); click drops the style where there is no colour."""
    p = hit.passage
    a = (p.start if hit.answer_start is None else hit.answer_start) - p.start
    b = (p.end if hit.answer_end is None else hit.answer_end) - p.start
    parts = ((p.text[:a], False), (p.text[a:b], True), (p.text[b:], False))
    return "".join(
        "\n".join(
            click.style(line, bold=True) if bold and line else line for line in chunk.split("\n")
        )
        for chunk, bold in parts
    )
