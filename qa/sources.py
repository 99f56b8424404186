"""Read the source folder: decode each text file, skip (and name) the ones that cannot be used.

Encodings other than UTF-8 (Windows-1252, Latin-1...) are detected by charset-normalizer,
not guessed. The decoded text is what offsets refer to: ``passage.text ==
text[start:end]``, so nothing here rewrites the text (no newline or Unicode normalisation).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes

log = logging.getLogger(__name__)

#: Bytes looked at to tell text from binary.
_SNIFF = 8192
#: Control characters that never occur in text files (NUL, and the C0 set minus \t\n\v\f\r, ESC).
_BINARY_BYTES = bytes(range(0, 9)) + bytes(range(14, 27)) + bytes(range(28, 32))
TITLE_CHARS = 90


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


def make_title(text: str, fallback: str) -> str:
    """The first non-empty line, cut at a word boundary: a readable label for a citation."""
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            if len(line) <= TITLE_CHARS:
                return line
            cut = line[:TITLE_CHARS].rsplit(" ", 1)[0]
            return cut.rstrip(" ,.;:–-") + "…"
    return fallback


def _looks_binary(head: bytes) -> bool:
    if b"\x00" in head:
        return True
    bad = sum(head.count(bytes([b])) for b in _BINARY_BYTES)
    return bad > max(2, len(head) // 100)


#: Encodings tried first: what Norwegian text that is not UTF-8 is almost always in. Short
#: texts are ambiguous between single-byte code pages, and these read æ, ø, å right.
WESTERN = ["cp1252", "latin_1", "iso8859_15", "mac_roman", "cp865", "cp850"]
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def _bom(data: bytes) -> str | None:
    return next((enc for bom, enc in _BOMS if data.startswith(bom)), None)


def decode(data: bytes) -> tuple[str, str]:
    """Decode bytes as UTF-8 (or the BOM's encoding), else as charset-normalizer detects.

    Raises ValueError when the bytes are not text in any encoding it knows.
    """
    bom = _bom(data)
    if bom:
        try:
            return data.decode(bom), bom
        except UnicodeDecodeError as exc:
            raise ValueError(f"undecodable (broken {bom})") from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data, cp_isolation=WESTERN).best() or from_bytes(data).best()
    if best is None or best.encoding is None:
        raise ValueError("undecodable: not text in any known encoding")
    return str(best), best.encoding


def _walk(root: Path) -> Iterator[Path]:
    """Every file under root in a stable order, hidden files and folders left out."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


def read_source(root: Path, file: Path, max_bytes: int) -> SourceDoc:
    """Read and decode one file; raises ValueError with a short reason when it is unusable."""
    rel = file.relative_to(root).as_posix()
    if file.is_symlink():
        # Never followed: a link could point anywhere, and its target may be indexed already.
        raise ValueError("symbolic link (links are not followed)")
    try:
        size = file.stat().st_size
    except FileNotFoundError as exc:
        raise ValueError("file vanished while indexing") from exc
    if not file.is_file():
        raise ValueError("not a regular file")
    if size == 0:
        raise ValueError("empty file")
    if size > max_bytes:
        raise ValueError(
            f"too large ({size:,} bytes; the limit is {max_bytes:,}, QA_MAX_FILE_BYTES)"
        )
    try:
        data = file.read_bytes()
    except FileNotFoundError as exc:
        raise ValueError("file vanished while indexing") from exc
    except OSError as exc:
        raise ValueError(f"unreadable ({exc.strerror or exc})") from exc
    if not _bom(data) and _looks_binary(data[:_SNIFF]):
        raise ValueError("binary file")
    text, encoding = decode(data)
    if not text.strip():
        raise ValueError("no text (only whitespace)")
    digest = hashlib.sha256(data).hexdigest()
    return SourceDoc(rel, text, encoding, digest, make_title(text, file.stem))


def scan_sources(root: Path, max_bytes: int = 20_000_000) -> tuple[list[SourceDoc], list[Skipped]]:
    """Read every text file under ``root``; the unusable ones come back as ``Skipped``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"sources folder not found: {root}")
    docs: list[SourceDoc] = []
    skipped: list[Skipped] = []
    for file in _walk(root):
        try:
            docs.append(read_source(root, file, max_bytes))
        except (ValueError, UnicodeDecodeError) as exc:
            rel = file.relative_to(root).as_posix()
            skipped.append(Skipped(rel, str(exc)))
            log.warning("skipped %s: %s", rel, exc)
    return docs, skipped
