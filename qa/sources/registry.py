"""Which reader takes a file: chosen by its suffix, plain text for everything else.

A new format is one module with a reader (see ``qa.sources.base.Reader``) and one
``register`` call below; scanning, chunking and citations need no change.
"""

from __future__ import annotations

from pathlib import Path

from qa.sources.base import Reader
from qa.sources.text import TextReader

#: Reader by lower-case suffix (".txt").
READERS: dict[str, Reader] = {}
#: For a file whose suffix no reader takes (or that has none): tried as text, as always.
FALLBACK: Reader = TextReader()


def register(reader: Reader) -> None:
    """Make ``reader`` the one for each of its suffixes (a later one wins)."""
    for suffix in reader.suffixes:
        READERS[suffix.lower()] = reader


def reader_for(path: Path) -> Reader:
    """The reader of the file at ``path``, by its suffix."""
    return READERS.get(path.suffix.lower(), FALLBACK)


register(FALLBACK)
