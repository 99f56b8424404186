"""What reading a source gives: the decoded document, the files skipped, and the reader interface.

One reader per file format; ``qa.sources.registry`` picks it by suffix. A reader turns a
file's bytes into text and never rewrites that text afterwards: passages' offsets point
into exactly what it returns (``passage.text == text[start:end]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SourceDoc:
    """One decoded source file."""

    path: str  # relative to the sources folder, POSIX separators
    text: str
    encoding: str
    sha256: str
    title: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file that was not indexed, and why."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Decoded:
    """What a reader makes of one file's bytes: its text and how it was decoded."""

    text: str
    encoding: str  # the character encoding, or what the format's reader calls its decoding


class Reader(Protocol):
    """Reads one kind of file. Raises ValueError with a short reason when the file is unusable
    (the reason is shown to the operator next to the file's name)."""

    @property
    def suffixes(self) -> tuple[str, ...]:
        """Lower-case file name suffixes this reader takes, dot included (".txt")."""
        ...

    def read(self, path: Path, data: bytes) -> Decoded:
        """The text of the file at ``path``, whose bytes are ``data`` (already read)."""
        ...
