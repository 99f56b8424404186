"""Is the index up to date? Answered from file times where they allow, from bytes where not.

``qa index`` on an unchanged folder of 1,000 files used to load the previous build, read and
hash every file and import FAISS, bm25s and lingua to say "already up to date". A build now
records each file's ``lstat`` (size, mtime_ns, ctime_ns, inode, type) under ``"stat"`` in
its manifest; when every file under the sources folder still has the same, along with the
rules file and the settings that decide what a file becomes, nothing is read but the
manifest. A file whose times differ is hashed and compared with its ``sha256`` (a touched
file is still unchanged); anything else (a new, removed or re-typed file, a skipped file
that changed, other settings) falls back to the full test (``qa.index.build.up_to_date``).

Content that changed while size, mtime and ctime stayed the same is not seen: ctime cannot
be set back by a program (``os.utime`` moves it), so that takes a clock set backwards or a
file system without ctime; ``qa index --rebuild`` reads everything. A file changed within
``RACY_S`` seconds of the scan that recorded it is not recorded (its time may not show a
change made just after it was read): it is hashed the next time, as git does.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.index import manifest as manifest_mod
from qa.index.report import BuildReport
from qa.sources.base import Skipped

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.sources.base import SourceDoc

#: A file changed this close to (or after) the start of the scan that read it is not
#: recorded: its times might not differ from those of a change made just after the read.
RACY_S = 1.0
#: The files of a build folder that must be as written for "up to date" to be worth giving.
BUILD_FILES = (
    "passages.jsonl",
    "sources.jsonl",
    "embeddings.npy",
    "dense.faiss",
    "lexical",
    "sentences.npy",
    "sentence_vectors.npy",
)

Stat = list[int]


def _lstat(path: Path) -> Stat | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, stat.S_IFMT(st.st_mode)]


def _rules(settings: Settings) -> Path:
    from qa.access.rules import RULES_FILE

    root = Path(settings.sources_dir)
    return Path(settings.access_file) if settings.access_file else root / RULES_FILE


def _settings(settings: Settings) -> dict[str, Any]:
    """What, beside the files, decides what a scan makes of them."""
    return {
        "root": str(Path(settings.sources_dir).resolve()),
        "max_file_bytes": settings.max_file_bytes,
        "access_file": str(settings.access_file) if settings.access_file else None,
        "chunking": manifest_mod.chunking(settings),
    }


def stat_entry(
    settings: Settings, docs: list[SourceDoc], skipped: list[Skipped], since_ns: int
) -> dict[str, Any]:
    """The manifest's ``"stat"`` block for files read by a scan that began at ``since_ns``
    (``time.time_ns()``); files changed within ``RACY_S`` of it are left out."""
    root = Path(settings.sources_dir)
    limit = since_ns - int(RACY_S * 1e9)

    def settled(path: Path) -> Stat | None:
        st = _lstat(path)
        return st if st is not None and max(st[1], st[2]) < limit else None

    files = {d.path: settled(root / d.path) for d in docs}
    others = {s.path: settled(root / s.path) for s in skipped}
    return {
        "settings": _settings(settings),
        "files": {path: st for path, st in files.items() if st is not None},
        "skipped": {path: st for path, st in others.items() if st is not None},
        "rules": _lstat(_rules(settings)),  # a later change is seen: the full test re-reads
    }


def build_stat(build: Path) -> dict[str, list[int]]:
    """Size and mtime_ns of each file of a build folder (a truncated or rewritten one then
    differs, and the full test, which loads them, says what is wrong)."""
    out = {}
    for name in BUILD_FILES:
        path = build / name
        for file in sorted(path.rglob("*")) if path.is_dir() else [path] * path.exists():
            st = os.stat(file)
            if stat.S_ISREG(st.st_mode):
                out[file.relative_to(build).as_posix()] = [st.st_size, st.st_mtime_ns]
    return out


def _build_intact(build: Path, recorded: dict[str, list[int]]) -> bool:
    """Every file of the build is as it was written (sizes and times)."""
    try:
        return bool(recorded) and build_stat(build) == recorded
    except OSError:
        return False


def _walk(root: Path) -> list[str] | None:
    """What ``qa.sources.scan`` walks (hidden names left out, links to folders listed, not
    entered), as relative POSIX paths; None when a folder cannot be listed."""
    errors: list[OSError] = []
    found = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append, followlinks=False):
        here = Path(dirpath)
        links = [d for d in dirnames if (here / d).is_symlink()]
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in links]
        found += [
            (here / name).relative_to(root).as_posix()
            for name in [*filenames, *links]
            if not name.startswith(".")
        ]
    return None if errors else found


def _same_bytes(path: Path, sha256: str, max_bytes: int) -> bool:
    """The file (a regular file, not a link) still holds the bytes the build hashed."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
            return False
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest() == sha256
    except OSError:
        return False


#: What ``quick_up_to_date`` returns when an indexed file's bytes changed: a build is due,
#: and the full test (which reads and hashes every file) would only say so again.
EDITED = "edited"


def quick_up_to_date(settings: Settings, fingerprint: str) -> BuildReport | str | None:
    """The report of a build that would change nothing, when file times (and, for touched
    files, their bytes) show it; ``EDITED`` when a file's bytes changed; None when this
    cannot tell (the full test decides)."""
    from qa.index.access import rules_path
    from qa.sources.registry import reader_for

    t0 = time.perf_counter()
    index_dir = Path(settings.index_dir)
    build = index_dir / "current"
    try:
        manifest = json.loads((build / "manifest.json").read_text("utf-8"))
        recorded = manifest.get("stat")
        sources: dict[str, dict[str, Any]] = manifest["sources"]
        if (
            not isinstance(recorded, dict)
            or manifest.get("format") != manifest_mod.FORMAT
            or manifest["model"]["fingerprint"] != fingerprint
            or recorded.get("settings") != _settings(settings)
            or recorded.get("rules") != _lstat(_rules(settings))
            or not _build_intact(build, recorded.get("build") or {})
        ):
            return None
        files, skipped_stats = recorded["files"], recorded["skipped"]
        skipped = [
            Skipped(s["path"], s["reason"], _key(s) if "sha256" in s else None)
            for s in manifest.get("skipped") or []
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    root = Path(settings.sources_dir)
    walked = _walk(root)
    if walked is None or not sources:
        return None
    rules = rules_path(settings)
    seen, skipped_seen = 0, set()
    for rel in walked:
        path = root / rel
        if rel == rules:
            continue
        info = sources.get(rel)
        if info is None:  # a skipped file unchanged, else a new one or one that changed
            if rel not in skipped_stats or skipped_stats[rel] != _lstat(path):
                return None
            skipped_seen.add(rel)
            continue
        reader = reader_for(rel)
        if (info.get("format"), info.get("reader_version")) != (reader.format, reader.version):
            return None
        if files.get(rel) != _lstat(path) and not _same_bytes(
            path, str(info["sha256"]), settings.max_file_bytes
        ):
            return EDITED
        seen += 1
    if seen != len(sources) or skipped_seen != {s.path for s in skipped}:
        return None  # a file removed, or a skipped one gone: the full test says what changed
    return _report(manifest, index_dir, skipped, time.perf_counter() - t0)


def _key(entry: dict[str, Any]) -> tuple[str, str, int]:
    return (str(entry["sha256"]), str(entry["format"]), int(entry["reader_version"]))


def _report(
    manifest: dict[str, Any], index_dir: Path, skipped: list[Skipped], seconds: float
) -> BuildReport:
    """What ``build_index`` reports for an unchanged folder, from the manifest alone."""
    sources: dict[str, dict[str, Any]] = manifest["sources"]
    access = manifest.get("access") or {}
    report = BuildReport(
        build_id=str(manifest["build_id"]),
        path=index_dir / "current",
        sources=len(sources),
        passages=int(manifest["passages"]),
        embedded=0,
        reused=int(manifest["passages"]),
        skipped=skipped,
        seconds=seconds,
        changed=False,
        unmatched=int(access.get("unmatched") or 0),
        access_file=access.get("file"),
    )
    for path, info in sources.items():
        fmt = str(info.get("format", "txt"))
        report.formats[fmt] = report.formats.get(fmt, 0) + 1
        if info.get("scanned_pages"):
            report.scanned[path] = tuple(info["scanned_pages"])
        report.warnings.extend((path, w) for w in info.get("warnings", []))
    return report


def up_to_date(settings: Settings, fingerprint: str) -> BuildReport | None:
    """The report of a build that would change nothing, else None: from file times when
    they tell, else by the full test (which reads and hashes every file)."""
    report = quick_up_to_date(settings, fingerprint)
    if isinstance(report, BuildReport):
        return report
    if report == EDITED:  # build_index checks again anyway: nothing is skipped wrongly
        return None
    from qa.index.build import up_to_date as full_test

    return full_test(settings, fingerprint)
