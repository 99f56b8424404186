"""Which reader takes a file: chosen by its suffix, plain text for everything else.

**To add a format, edit this module**: write a module with ``read(data, name) -> Extracted``
(see ``qa.sources.document``) and add one ``register(FormatReader(...))`` line below.
Scanning, isolation, chunking, the manifest and citations need no change. Bump a format's
``version`` whenever its reader's output changes: the manifest records it, so exactly the
files that reader read are read again.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import PurePath

from qa.sources.base import Reader
from qa.sources.document import Extracted
from qa.sources.text import TextReader


@dataclass(frozen=True)
class FormatReader:
    """A format whose reader is ``read`` in ``module`` (imported when first needed, so a
    parser's import costs nothing until a file of its format turns up)."""

    format: str
    suffixes: tuple[str, ...]
    module: str
    version: int = 1
    isolated: bool = False

    def read(self, data: bytes, name: str) -> Extracted:
        result: Extracted = importlib.import_module(self.module).read(data, name)
        return result


#: Reader by lower-case suffix (".pdf").
READERS: dict[str, Reader] = {}
#: For a file whose suffix no reader takes (or that has none): tried as text, as always.
FALLBACK: Reader = TextReader()


def register(reader: Reader) -> None:
    """Make ``reader`` the one for each of its suffixes (a later one wins). An isolated
    reader must be registered here, at import: worker processes import this module."""
    for suffix in reader.suffixes:
        READERS[suffix.lower()] = reader


def reader_for(name: str | PurePath) -> Reader:
    """The reader of the file called ``name``, by its suffix."""
    return READERS.get(PurePath(name).suffix.lower(), FALLBACK)


def read_document(data: bytes, name: str) -> Extracted:
    """Read ``data`` with the reader of ``name``'s format (plain text when none fits)."""
    return reader_for(name).read(data, name)


register(FALLBACK)
register(FormatReader("md", (".md", ".markdown"), "qa.sources.markdown"))
register(FormatReader("html", (".html", ".htm"), "qa.sources.html", isolated=True))
register(FormatReader("pdf", (".pdf",), "qa.sources.pdf", version=2, isolated=True))
register(FormatReader("docx", (".docx",), "qa.sources.docx", isolated=True))
register(FormatReader("odt", (".odt",), "qa.sources.odt", isolated=True))
