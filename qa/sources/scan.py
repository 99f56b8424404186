"""Walk the sources folder: read each file with its format's reader, skip (and name) the rest.

One bad file never stops a scan: whatever goes wrong with it, it is skipped with a reason
the operator can act on. The bytes are read here, once, on a descriptor checked not to be
a link or a device; readers (``qa.sources.registry``) only turn bytes into text, those of
binary formats in worker processes with limits (``qa.sources.isolate``).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath

from qa.sources.base import Reader, ReadKey, Skipped, SourceDoc, shown
from qa.sources.document import Extracted, UnreadableFile
from qa.sources.isolate import extract_many
from qa.sources.registry import reader_for
from qa.sources.text import make_title

log = logging.getLogger(__name__)
#: Bytes of files waiting for a worker before they are read: bounds the memory they hold.
BATCH_BYTES = 256 * 1024 * 1024
MAX_WORKERS = 4


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


def read_bytes(file: Path, max_bytes: int) -> bytes:
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


def _bad_name(rel: str) -> str | None:
    """Why a file name cannot be indexed, or None. The index and the API are UTF-8 JSON, and
    a citation must open through a URL: ``safe_source_path`` refuses control characters."""
    if os.fsencode(rel).decode("utf-8", "backslashreplace") != rel:
        return "file name is not valid UTF-8 (rename the file)"
    if any(unicodedata.category(ch) == "Cc" for ch in rel):
        return "file name holds a control character (rename the file)"
    if "\\" in rel:  # a citation's path could never be opened: the API refuses backslashes
        return "file name holds a backslash (rename the file)"
    return None


def _read_here(reader: Reader, rel: str, data: bytes) -> Extracted | str:
    """Read one file in this process: its text, or why not."""
    try:
        return reader.read(data, rel)
    except UnreadableFile as exc:
        return str(exc) or "unreadable file"
    except (ValueError, UnicodeError) as exc:
        return str(exc)
    except Exception as exc:  # a library bug on one odd file must not stop the build
        return f"could not be read ({type(exc).__name__}: {exc})"


def _document(rel: str, key: ReadKey, result: Extracted | str) -> SourceDoc | Skipped:
    """The document a reading gives, or the file skipped with its reason."""
    if isinstance(result, str):
        return Skipped(rel, result, key)
    if not result.text.strip():
        return Skipped(rel, "no text (only whitespace)", key)
    sha256, fmt, version = key
    return SourceDoc(
        rel,
        result.text,
        result.encoding,
        sha256,
        result.title or make_title(result.text, PurePosixPath(rel).stem),
        fmt,
        version,
        tuple(result.pages),
        tuple(result.headings),
        tuple(result.warnings),
        tuple(result.scanned_pages),
    )


class _Scan:
    """The files of one scan in walk order; isolated formats read in batches of workers."""

    def __init__(self, timeout_s: float, memory_mb: int, cache: Mapping[ReadKey, Extracted | str]):
        self.timeout_s, self.memory_mb, self.cache = timeout_s, memory_mb, cache
        self.found: list[SourceDoc | Skipped | None] = []
        self.pending: dict[str, tuple[int, ReadKey, bytes]] = {}
        self.pending_bytes = 0

    def skip(self, rel: str, reason: str) -> None:
        self.found.append(Skipped(rel, reason))

    def add(self, rel: str, data: bytes) -> None:
        reader = reader_for(rel)
        key = (hashlib.sha256(data).hexdigest(), reader.format, reader.version)
        known = self.cache.get(key)
        if known is not None:
            self.found.append(_document(rel, key, known))
        elif reader.isolated:
            self.pending[rel] = (len(self.found), key, data)
            self.found.append(None)
            self.pending_bytes += len(data)
            if self.pending_bytes > BATCH_BYTES:
                self.flush()
        else:
            self.found.append(_document(rel, key, _read_here(reader, rel, data)))

    def flush(self) -> None:
        """Read the files waiting for a worker."""
        jobs: list[tuple[str, bytes | Path]] = [(rel, job[2]) for rel, job in self.pending.items()]
        if jobs:
            workers = min(MAX_WORKERS, os.cpu_count() or 1, len(jobs))
            results = extract_many(jobs, self.timeout_s, self.memory_mb, workers)
            for rel, (slot, key, _) in self.pending.items():
                self.found[slot] = _document(rel, key, results.get(rel, "not read"))
        self.pending, self.pending_bytes = {}, 0

    def results(self) -> tuple[list[SourceDoc], list[Skipped]]:
        self.flush()
        docs = [d for d in self.found if isinstance(d, SourceDoc)]
        skipped = [s for s in self.found if isinstance(s, Skipped)]
        for s in skipped:
            log.info("skipped %s: %s", shown(s.path), s.reason)  # callers name them (qa index)
        return docs, skipped


def scan_sources(
    root: Path,
    max_bytes: int = 20_000_000,
    *,
    timeout_s: float = 60.0,
    memory_mb: int = 1024,
    cache: Mapping[ReadKey, Extracted | str] | None = None,
) -> tuple[list[SourceDoc], list[Skipped]]:
    """Read every file under ``root``; the unusable ones come back as ``Skipped``.

    Parsers of binary formats run in worker processes stopped after ``timeout_s`` seconds or
    ``memory_mb`` MB. ``cache`` (the previous build's readings, by ``ReadKey``) spares reading
    a file again whose bytes and reader are unchanged. One bad file never stops the scan:
    whatever goes wrong with it, it is skipped and named.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"sources folder not found: {root}")
    scan = _Scan(timeout_s, memory_mb, cache or {})
    errors: list[OSError] = []
    for file in _walk(root, errors):
        rel = file.relative_to(root).as_posix()
        problem = _bad_name(rel)
        if problem is None:
            try:
                scan.add(rel, read_bytes(file, max_bytes))
                continue
            except ValueError as exc:
                problem = str(exc)
        scan.skip(os.fsencode(rel).decode("utf-8", "backslashreplace"), problem)
    for error in errors:
        where = Path(error.filename or root)
        rel = where.relative_to(root).as_posix() if where != root else "."
        scan.skip(rel, f"folder not readable ({error.strerror or error})")
    return scan.results()
