"""The index folder on disk: durable writes, the writer's lock, the atomic swap, old builds.

Every write here is on disk (fsync) before the step that depends on it, so a crash or a
power cut at any point leaves the previous build whole and ``current`` pointing at it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from qa.index.manifest import IndexProblem
from qa.sources import SourceDoc

#: Builds kept: the current one and the one before it (a reader may still be loading it).
KEEP_BUILDS = 2


class IndexBusy(IndexProblem):
    """Another build holds the lock on this index folder."""


def _durable_write(path: Path, lines: Iterable[str]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def write_json(path: Path, obj: Any) -> None:
    """``obj`` as indented UTF-8 JSON, on disk when this returns."""
    _durable_write(path, [json.dumps(obj, ensure_ascii=False, indent=2), "\n"])


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """One JSON object a line, on disk when this returns."""
    _durable_write(path, (json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def fsync(path: Path) -> None:
    """fsync one file or folder (a folder: so the names in it are on disk)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder``, so a power cut after the swap cannot
    leave a build whose manifest is on disk but whose data is not."""
    for path in [*sorted(folder.rglob("*"), reverse=True), folder]:
        fsync(path)


@contextlib.contextmanager
def lock(index_dir: Path) -> Iterator[None]:
    """Hold the folder's write lock (an flock: it dies with the process), or IndexBusy."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexBusy(f"another `qa index` is writing {index_dir}; wait for it") from exc
        yield


def current_version(index_dir: Path) -> str | None:
    """The build id ``current`` points at (cheap: one readlink), or None without an index."""
    try:
        return Path(os.readlink(Path(index_dir) / "current")).name
    except OSError:
        return None


def swap(index_dir: Path, build_id: str) -> None:
    """Point ``current`` at the new build with one atomic rename."""
    link = index_dir / f".current-{build_id}"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    try:
        os.symlink(Path("builds") / build_id, link)
        os.replace(link, index_dir / "current")
    except OSError as exc:
        with contextlib.suppress(OSError):
            link.unlink()
        raise IndexProblem(
            f"could not switch {index_dir} to the new build ({exc.strerror or exc}); "
            "the previous index is unchanged"
        ) from exc
    fsync(index_dir)


def _made(build: Path) -> tuple[str, int, str]:
    """Oldest first: by the id's second, then by the folder's time, since two builds made in
    one second have random suffixes that do not sort by age."""
    try:
        made = build.stat().st_mtime_ns
    except OSError:  # removed meanwhile
        made = 0
    return (build.name.split("-")[0], made, build.name)


def collect(index_dir: Path) -> None:
    """Drop old builds (keeping the previous one for readers mid-swap) and crash leftovers."""
    keep = current_version(index_dir)
    builds = sorted((index_dir / "builds").iterdir(), key=_made)
    done = [b for b in builds if not b.name.startswith(".") and b.name != keep]
    for old in done[: max(0, len(done) - (KEEP_BUILDS - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    for tmp in builds:
        if tmp.name.startswith(".tmp-"):
            shutil.rmtree(tmp, ignore_errors=True)


def source_row(doc: SourceDoc) -> dict[str, Any]:
    """A line of ``sources.jsonl``: the text citations point into, with its page starts and
    headings where it has them (so an unchanged file need not be read again)."""
    row: dict[str, Any] = {"path": doc.path, "text": doc.text}
    if doc.pages:
        row["pages"] = list(doc.pages)
    if doc.headings:
        row["headings"] = [[h.start, h.level, h.text] for h in doc.headings]
    return row
