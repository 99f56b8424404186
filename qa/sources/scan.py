"""Read the source folder: decode each text file, skip (and name) the ones that cannot be used.

Encodings other than UTF-8 (Windows-1252, Latin-1...) are detected by charset-normalizer,
not guessed. The decoded text is what offsets refer to: ``passage.text ==
text[start:end]``, so nothing here rewrites the text (no newline or Unicode normalisation).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
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


def _walk(root: Path, errors: list[OSError]) -> Iterator[Path]:
    """Every file under root in a stable order, hidden files and folders left out.

    Links to folders are yielded too (never entered), so they are named as skipped like
    links to files instead of vanishing silently; folders that cannot be listed land in
    ``errors`` for the same reason.
    """
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append, followlinks=False):
        here = Path(dirpath)
        links = [d for d in dirnames if (here / d).is_symlink()]
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in links)
        for name in sorted([*filenames, *links]):
            if not name.startswith("."):
                yield here / name


#: Open flags: never follow a link (a file swapped for a link after the listing is refused,
#: not read), never block (a FIFO would hang the build), no fd leak into subprocesses.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _read_bytes(file: Path, max_bytes: int) -> bytes:
    """The file's bytes, checked on the opened descriptor so the file cannot change between
    the checks and the read (swapped for a link, replaced by a FIFO, grown past the limit)."""
    try:
        before = os.lstat(file)
        if stat.S_ISLNK(before.st_mode):
            # Never followed: a link could point anywhere, and its target may be indexed already.
            raise ValueError("symbolic link (links are not followed)")
        if not stat.S_ISREG(before.st_mode):
            raise ValueError("not a regular file")  # before open(): a device may react to it
        fd = os.open(file, _OPEN_FLAGS)
    except FileNotFoundError as exc:
        raise ValueError("file vanished while indexing") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError("symbolic link (links are not followed)") from exc
        raise ValueError(f"unreadable ({exc.strerror or exc})") from exc
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        too_large = f"too large ({{:,}} bytes; the limit is {max_bytes:,}, QA_MAX_FILE_BYTES)"
        if st.st_size > max_bytes:
            raise ValueError(too_large.format(st.st_size))
        try:
            data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise ValueError(f"unreadable ({exc.strerror or exc})") from exc
    if len(data) > max_bytes:
        raise ValueError(too_large.format(len(data)) + " (it grew while being read)")
    if not data:
        raise ValueError("empty file")
    return data


def read_source(root: Path, file: Path, max_bytes: int) -> SourceDoc:
    """Read and decode one file; raises ValueError with a short reason when it is unusable."""
    rel = file.relative_to(root).as_posix()
    data = _read_bytes(file, max_bytes)
    if not _bom(data) and _looks_binary(data[:_SNIFF]):
        raise ValueError("binary file")
    text, encoding = decode(data)
    if not text.strip():
        raise ValueError("no text (only whitespace)")
    digest = hashlib.sha256(data).hexdigest()
    return SourceDoc(rel, text, encoding, digest, make_title(text, file.stem))


def _shown(rel: str) -> str:
    """A path that can be printed and written as UTF-8 JSON (undecodable bytes as \\xNN)."""
    return os.fsencode(rel).decode("utf-8", "backslashreplace")


def scan_sources(root: Path, max_bytes: int = 20_000_000) -> tuple[list[SourceDoc], list[Skipped]]:
    """Read every text file under ``root``; the unusable ones come back as ``Skipped``.

    One bad file never stops the scan: whatever goes wrong with it, it is skipped and named.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"sources folder not found: {root}")
    docs: list[SourceDoc] = []
    skipped: list[Skipped] = []
    errors: list[OSError] = []

    def skip(rel: str, reason: str) -> None:
        skipped.append(Skipped(_shown(rel), reason))
        log.info("skipped %s: %s", _shown(rel), reason)  # callers name them (qa index does)

    for file in _walk(root, errors):
        rel = file.relative_to(root).as_posix()
        if _shown(rel) != rel:
            # The index and the API are UTF-8 JSON: such a name could not be written or cited.
            skip(rel, "file name is not valid UTF-8 (rename the file)")
            continue
        try:
            docs.append(read_source(root, file, max_bytes))
        except (ValueError, UnicodeError) as exc:
            skip(rel, str(exc))
        except Exception as exc:  # a library bug on one odd file must not stop the build
            skip(rel, f"could not be read ({type(exc).__name__}: {exc})")
    for exc in errors:
        where = Path(exc.filename or root)
        rel = where.relative_to(root).as_posix() if where != root else "."
        skip(rel, f"folder not readable ({exc.strerror or exc})")
    return docs, skipped
