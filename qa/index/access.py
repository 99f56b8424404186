"""The access side of a build: each file's groups (``access.toml``) and modification time.

Recorded in the manifest per file, so a changed rules file (or a touched file) makes a new
build that re-uses every vector: only the groups and times in the manifest change.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qa.access import RULES_FILE, AccessRules, AccessRulesError
from qa.config import Settings
from qa.index.manifest import IndexProblem
from qa.sources import Skipped, SourceDoc

#: Per file: {"groups": [...], "modified": "ISO datetime, UTC" or None}
FileMeta = dict[str, Any]


def load_rules(settings: Settings) -> AccessRules:
    """The rules for the sources folder; a bad rules file is an IndexProblem naming it, so
    ``qa index`` exits 1 and ``--watch`` keeps serving the previous build."""
    try:
        return AccessRules.for_sources(Path(settings.sources_dir), settings.access_file)
    except AccessRulesError as exc:
        raise IndexProblem(f"access rules: {exc}; the previous index is unchanged") from exc


def rules_path(settings: Settings) -> str | None:
    """The rules file's path relative to the sources folder when it lies in it (it is
    never indexed: it says who may see what, not something to find)."""
    root = Path(settings.sources_dir).resolve()
    file = Path(settings.access_file) if settings.access_file else root / RULES_FILE
    try:
        return file.resolve().relative_to(root).as_posix()
    except ValueError:
        return None


def without_rules(
    settings: Settings, docs: list[SourceDoc], skipped: list[Skipped]
) -> tuple[list[SourceDoc], list[Skipped]]:
    """``docs`` and ``skipped`` less the rules file."""
    rel = rules_path(settings)
    if rel is None:
        return docs, skipped
    return [d for d in docs if d.path != rel], [s for s in skipped if s.path != rel]


def modified(path: Path) -> str | None:
    """The file's modification time as an ISO datetime in UTC (None if it vanished)."""
    try:
        mtime = os.stat(path, follow_symlinks=False).st_mtime
    except OSError:
        return None
    return datetime.fromtimestamp(int(mtime), UTC).isoformat()


def file_meta(settings: Settings, rules: AccessRules, docs: list[SourceDoc]) -> dict[str, FileMeta]:
    """Groups and modification time of every indexed file."""
    root = Path(settings.sources_dir)
    return {
        d.path: {"groups": list(rules.groups_for(d.path)), "modified": modified(root / d.path)}
        for d in docs
    }


def unmatched(meta: dict[str, FileMeta]) -> int:
    """Files no rule matched: visible to nobody."""
    return sum(1 for m in meta.values() if not m["groups"])


def access_of(settings: Settings, docs: list[SourceDoc]) -> tuple[dict[str, FileMeta], dict]:
    """Each file's groups and time, and the manifest's ``access`` entry: the rules file and
    how many files no rule matches (IndexProblem for a bad rules file)."""
    rules = load_rules(settings)
    meta = file_meta(settings, rules, docs)
    file = str(rules.file) if rules.file is not None else None
    return meta, {"file": file, "unmatched": unmatched(meta)}
