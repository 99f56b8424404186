"""What reading a source gives: the document, the files skipped, and the reader interface.

One reader per file format; ``qa.sources.registry`` picks it by suffix. A reader turns a
file's bytes into an ``Extracted`` (``qa.sources.document``) and never rewrites that text
afterwards: passages' offsets point into exactly what it returns
(``passage.text == text[start:end]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from qa.sources.document import Extracted, Heading


@dataclass(frozen=True, slots=True)
class SourceDoc:
    """One read source file: its indexed text and what its reader found in it."""

    path: str  # relative to the sources folder, POSIX separators
    text: str
    encoding: str  # "utf-8", "cp1252"... for text; the format name for binary formats
    sha256: str
    title: str
    format: str = "txt"  # "txt", "md", "pdf", "docx", "odt", "html"
    reader_version: int = 1
    pages: tuple[int, ...] = ()  # offset where each page starts; () = the format has no pages
    headings: tuple[Heading, ...] = ()
    warnings: tuple[str, ...] = ()  # shown next to the file's name (the file is indexed)
    scanned_pages: tuple[int, ...] = ()  # 1-based pages without a text layer

    @property
    def key(self) -> ReadKey:
        """What its reading depends on: a file with the same key reads the same."""
        return (self.sha256, self.format, self.reader_version)


#: (sha256 of the bytes, format, reader version): equal keys, equal reading.
ReadKey = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file that was not indexed, and why (``key`` when its reader refused its bytes)."""

    path: str
    reason: str
    key: ReadKey | None = None


class Reader(Protocol):
    """Reads one format. ``read`` raises ``UnreadableFile`` with a short reason when the file
    is unusable (the reason is shown to the operator next to the file's name)."""

    @property
    def format(self) -> str:
        """The format's short name ("pdf"), recorded in the manifest."""
        ...

    @property
    def suffixes(self) -> tuple[str, ...]:
        """Lower-case file name suffixes this reader takes, dot included (".pdf")."""
        ...

    @property
    def version(self) -> int:
        """Bumped whenever its output changes: files it read are then read again."""
        ...

    @property
    def isolated(self) -> bool:
        """Whether it parses in a worker process with a time and memory limit (a parser of
        untrusted binary formats that may hang, crash or eat memory)."""
        ...

    def read(self, data: bytes, name: str) -> Extracted:
        """The text of the file called ``name`` (for messages) whose bytes are ``data``."""
        ...


def shown(name: str) -> str:
    """A file name safe to print: control, format and other invisible characters escaped
    (``\\n``, ``\\x1b``, ``\\u202e``), so a name can neither forge a log line nor carry a
    terminal escape sequence."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in name)
