"""Search filters: which files a search may rank, besides what access allows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from qa.access.globs import glob_match


@dataclass(frozen=True, slots=True)
class Filters:
    """Every given field must hold for a file; within a field any value may match.

    ``sources``: globs on the relative path (``qa.access.globs``); ``formats``: reader formats
    (``pdf``, ``docx``...); ``languages``: the detected language of the file (``nb``, ``en``...);
    ``modified_after`` (inclusive) and ``modified_before`` (exclusive): the day, in UTC, the
    file was last modified. A file whose modification time is unknown (an index built before
    filters) fails any date filter.
    """

    sources: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    modified_after: date | None = None
    modified_before: date | None = None

    @property
    def empty(self) -> bool:
        return self == Filters()

    def matches(self, path: str, info: Mapping[str, Any]) -> bool:
        """Whether the file ``path`` with manifest entry ``info`` passes."""
        if self.sources and not any(glob_match(g, path) for g in self.sources):
            return False
        if self.formats and info.get("format", "txt") not in self.formats:
            return False
        if self.languages and info.get("language") not in self.languages:
            return False
        if self.modified_after is None and self.modified_before is None:
            return True
        day = modified_day(info.get("modified"))
        if day is None:
            return False
        if self.modified_after is not None and day < self.modified_after:
            return False
        return self.modified_before is None or day < self.modified_before


def modified_day(value: object) -> date | None:
    """The UTC day of a manifest's ``modified`` (ISO datetime), None if absent or bad."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        return None
