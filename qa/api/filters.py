"""Search filters on the wire: ``"filters"`` in ``POST /search`` and the same as GET parameters.

The same types check both, so a filter means the same by either method; what it becomes is
``qa.access.Filters``, applied before ranking like access itself.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from fastapi import Query
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from qa.access import Filters
from qa.access.globs import compile_glob

#: The reader formats a file can have (``GET /sources`` ``format``).
Format = Literal["txt", "md", "pdf", "docx", "odt", "html"]
#: At most this many values per filter field: a filter is a choice, not a list of files.
MAX_VALUES = 20


def _valid_glob(glob: str) -> str:
    """A glob the matcher can compile (an unclosed ``[`` or a reversed range is a 422)."""
    try:
        compile_glob(glob)
    except ValueError as exc:
        raise ValueError(f"invalid glob: {exc}") from None
    return glob


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_day(value: object) -> object:
    """Only what the schema's ``format: date`` allows: pydantic alone also takes 0 (a Unix
    time) and "2024-01-01T00:00:00", which a client reading the schema would not expect."""
    if value is None or isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DAY.fullmatch(value):
        return value
    raise ValueError("not a date in the form YYYY-MM-DD")


#: A day as the schema states it: ``YYYY-MM-DD`` and nothing else.
IsoDay = Annotated[date, BeforeValidator(_iso_day)]

#: A ``[`` opens a non-empty class that a later ``]`` closes (what ``compile_glob`` takes),
#: in the schema too, so clients and fuzzers know. A reversed range (``[z-a]``) is also a
#: 422, which no JSON-Schema pattern can state: the field's description says so.
GLOB_PATTERN = r"^(?:[^\[]|\[(?:![^\]]|[^\]!])[^\]]*\])*$"
Glob = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=GLOB_PATTERN),
    AfterValidator(_valid_glob),
]
LanguageCode = Annotated[str, StringConstraints(pattern=r"^([a-z]{2,3}|und)$")]


class SearchFilters(BaseModel):
    """Which files a search may rank, besides what the caller may see. Every given field
    must hold; within a field any value may match."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"source": ["nav/**"], "format": ["pdf"], "modified_after": "2024-01-01"}]
        },
    )

    source: list[Glob] = Field(
        default_factory=list,
        max_length=MAX_VALUES,
        description='Globs on the source path ("hr/**", "*.pdf"; "**" crosses folders; '
        'a reversed range such as "[z-a]" is refused).',
    )
    format: list[Format] = Field(default_factory=list, max_length=MAX_VALUES)
    language: list[LanguageCode] = Field(
        default_factory=list, max_length=MAX_VALUES, description='Detected language: "nb", "en"…'
    )
    modified_after: IsoDay | None = Field(
        None, description="Files last modified on or after this day (ISO date, UTC)."
    )
    modified_before: IsoDay | None = Field(
        None, description="Files last modified before this day (an empty range: no results)."
    )

    def to_filters(self) -> Filters:
        return Filters(
            sources=tuple(self.source),
            formats=tuple(self.format),
            languages=tuple(self.language),
            modified_after=self.modified_after,
            modified_before=self.modified_before,
        )


def filters_from_query(
    source: Annotated[
        list[Glob] | None,
        Query(
            max_length=MAX_VALUES,
            description='Glob on the source path (repeatable; a reversed range such as "[z-a]" '
            "is refused).",
        ),
    ] = None,
    format: Annotated[
        list[Format] | None, Query(max_length=MAX_VALUES, description="Format (repeatable).")
    ] = None,
    language: Annotated[
        list[LanguageCode] | None,
        Query(max_length=MAX_VALUES, description="Language (repeatable)."),
    ] = None,
    modified_after: Annotated[IsoDay | None, Query(description="ISO date, inclusive.")] = None,
    modified_before: Annotated[IsoDay | None, Query(description="ISO date, exclusive.")] = None,
) -> Filters:
    """The GET parameters, with the same types as ``SearchFilters`` (so the same 422s)."""
    return Filters(
        sources=tuple(source or ()),
        formats=tuple(format or ()),
        languages=tuple(language or ()),
        modified_after=modified_after,
        modified_before=modified_before,
    )
