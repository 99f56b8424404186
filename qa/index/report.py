"""What a build did (``BuildReport``): its own module, so ``qa index`` can report an
unchanged index (``qa.index.quick``) without importing the build's libraries."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.sources.base import Skipped

if TYPE_CHECKING:
    from qa.sources.base import SourceDoc


@dataclass
class BuildReport:
    """What a build did; ``changed`` is False when the index was already up to date."""

    build_id: str
    path: Path
    sources: int
    passages: int
    embedded: int
    reused: int
    removed: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    changed: bool = True
    formats: dict[str, int] = field(default_factory=dict)  # indexed files per format
    scanned: dict[str, tuple[int, ...]] = field(default_factory=dict)  # path -> scanned pages
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (path, warning)
    unmatched: int = 0  # files no access rule matches: visible to nobody
    sentences: int = 0  # sentences embedded for answer spans (reused ones not counted)
    sentence_seconds: float = 0.0  # of ``seconds``, spent cutting and embedding them
    access_file: str | None = None  # the rules file; None: everything public

    def describe(self, docs: list[SourceDoc], access: dict[str, Any]) -> BuildReport:
        """This report with what the files say (formats, scans, warnings) and the access."""
        self.unmatched = int(access.get("unmatched") or 0)
        self.access_file = access.get("file")
        for d in docs:
            self.formats[d.format] = self.formats.get(d.format, 0) + 1
            if d.scanned_pages:
                self.scanned[d.path] = d.scanned_pages
            self.warnings.extend((d.path, w) for w in d.warnings)
        return self
