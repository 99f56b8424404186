"""Walk the sources folder: read each file with its format's reader, skip (and name) the rest.

One bad file never stops a scan: whatever goes wrong with it, it is skipped with a reason
the operator can act on. The bytes are read here, once, on a descriptor checked not to be
a link or a device; readers (``qa.sources.registry``) only turn bytes into text.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from qa.sources.base import Skipped, SourceDoc
from qa.sources.registry import reader_for
from qa.sources.text import make_title

log = logging.getLogger(__name__)


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
    decoded = reader_for(file).read(file, data)
    if not decoded.text.strip():
        raise ValueError("no text (only whitespace)")
    digest = hashlib.sha256(data).hexdigest()
    title = make_title(decoded.text, file.stem)
    return SourceDoc(rel, decoded.text, decoded.encoding, digest, title)


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
    for error in errors:
        where = Path(error.filename or root)
        rel = where.relative_to(root).as_posix() if where != root else "."
        skip(rel, f"folder not readable ({error.strerror or error})")
    return docs, skipped
