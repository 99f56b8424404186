"""Request and response bodies of the HTTP API.

They are the public contract (and the OpenAPI docs), so every field carries a description
and each model an example. Limits that depend on Settings (query length, largest k) are
checked in the routes and patched into the schema by ``app.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from qa.api.filters import SearchFilters
from qa.types import Hit, SearchResult

_EXAMPLE_TEXT = "Søknaden må sendes innen 1. mars."

#: The query languages an answer may name. The detector also knows Danish, Swedish and
#: German (to weigh BM25 for Nordic queries); the API reports those as "und".
QueryLanguage = Literal["nb", "nn", "en", "und"]
_QUERY_LANGUAGES: dict[str, QueryLanguage] = {code: code for code in get_args(QueryLanguage)}


def query_language(code: str) -> QueryLanguage:
    """``code`` when the API promises it, else "und"."""
    return _QUERY_LANGUAGES.get(code, "und")


def _example(example: dict[str, Any]) -> ConfigDict:
    """A model's config with one example for the OpenAPI docs."""
    return ConfigDict(json_schema_extra={"examples": [example]})


def _whole_float_to_int(value: Any) -> Any:
    """JSON Schema counts 2.0 as an integer; accept it, still reject 2.5, "2" and true."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class SearchRequest(BaseModel):
    """Body of ``POST /search``. Strict types: ``"k": "5"`` or ``"k": true`` is an error."""

    model_config = ConfigDict(
        strict=True,
        json_schema_extra={"examples": [{"query": "Når er søknadsfristen?", "k": 5}]},
    )

    query: str = Field(
        min_length=1,
        description="The question or search words, in Norwegian (bokmål or nynorsk) or English.",
    )
    k: Annotated[int | None, BeforeValidator(_whole_float_to_int)] = Field(
        None, ge=1, description="How many passages to return; the server default when absent."
    )
    filters: SearchFilters | None = Field(None, description="Rank only files that match these.")


class ResultItem(BaseModel):
    """One ranked passage. ``text == source_text[start:end]`` of ``GET /sources/{source}``."""

    rank: int = Field(description="1-based rank after fusion.")
    score: float = Field(description="Fused score; higher is better, only comparable per query.")
    text: str = Field(description="The passage text, exactly as in the source.")
    source: str = Field(description="Path of the source file, relative to the sources folder.")
    start: int = Field(description="Character offset of the passage start in the source text.")
    end: int = Field(description="Character offset just past the passage end.")
    line_start: int = Field(description="1-based line the passage starts on.")
    line_end: int = Field(description="1-based line the passage ends on (inclusive).")
    title: str = Field(description="Title of the source document.")
    page_start: int | None = Field(
        description="1-based page the passage starts on; null where the format has no pages."
    )
    page_end: int | None = Field(
        description="1-based page the passage ends on (inclusive); null without pages."
    )
    section: str = Field(
        description='Heading path above the passage, " › " between levels; "" when none.'
    )
    answer_start: int = Field(
        description="Offset of the answer span (the sentence, or two, most likely to answer) "
        "in the source text; start <= answer_start < answer_end <= end."
    )
    answer_end: int = Field(description="Offset just past the answer span's end.")

    @classmethod
    def from_hit(cls, hit: Hit) -> ResultItem:
        """Flatten a retriever Hit into the wire shape (no span set: the whole passage)."""
        p = hit.passage  # every field of the passage that the wire shape has, by name
        shared = {name: getattr(p, name) for name in cls.model_fields if hasattr(p, name)}
        a, b = hit.answer_start, hit.answer_end
        if a is None or b is None:
            a, b = p.start, p.end
        return cls(rank=hit.rank, score=float(hit.score), answer_start=a, answer_end=b, **shared)


class SearchResponse(BaseModel):
    """Answer to a search: the detected query language and the ranked passages."""

    model_config = _example(
        {
            "query": "Når er søknadsfristen?",
            "language": "nb",
            "index_version": "20250101T120000-3f2a",
            "results": [
                {
                    "rank": 1,
                    "score": 0.0328,
                    "text": _EXAMPLE_TEXT,
                    "source": "nav/stonad.txt",
                    "start": 120,
                    "end": 153,
                    "line_start": 4,
                    "line_end": 4,
                    "title": "Stønad",
                    "page_start": 3,
                    "page_end": 3,
                    "section": "Stønad › Frister",
                    "answer_start": 120,
                    "answer_end": 153,
                }
            ],
        }
    )

    query: str = Field(description="The query as received.")
    language: QueryLanguage = Field(
        description='Detected language, ISO 639-1 ("nb", "nn", "en") or "und" (any other).'
    )
    index_version: str = Field(description="Index build the offsets refer to.")
    results: list[ResultItem]

    @classmethod
    def from_result(cls, result: SearchResult, index_version: str) -> SearchResponse:
        """Build the wire shape from a retriever SearchResult."""
        return cls(
            query=result.query,
            language=query_language(result.language),
            index_version=index_version,
            results=[ResultItem.from_hit(h) for h in result.hits],
        )


class HealthResponse(BaseModel):
    """Liveness and readiness in one: 200 only once an index is loaded."""

    model_config = _example(
        {
            "status": "ok",
            "index_version": "20250101T120000-3f2a",
            "passages": 1234,
            "model": "bundled:multilingual-e5-small",
        }
    )

    status: str = Field(description='"ok", or "degraded" while ``index_problem`` is set.')
    index_version: str = Field(description="Build id of the index being served.")
    passages: int = Field(description="Number of passages in the index.")
    model: str = Field(description="Embedding model the index was built with.")
    index_problem: str | None = Field(
        None, description="Set when the newest build on disk could not be loaded."
    )
    engines: dict[str, str] | None = Field(
        None, description="Which engine embeds queries and passages, on which matrix units."
    )


class ReadyResponse(BaseModel):
    """200 only while the service can answer searches with the newest build (``/ready``)."""

    model_config = _example({"status": "ready", "index_version": "20250101T120000-3f2a"})

    status: str = Field(description='"ready".')
    index_version: str = Field(description="Build id of the index being served.")


class LimitsResponse(BaseModel):
    """The limits of this deployment (``QA_MAX_K``, ``QA_MAX_QUERY_CHARS``, ``QA_DEFAULT_K``)."""

    model_config = _example({"max_k": 50, "max_query_chars": 2000, "default_k": 5})

    max_k: int = Field(description="Largest k a search takes.")
    max_query_chars: int = Field(
        description="Longest query, in characters, once surrounding white space is removed."
    )
    default_k: int = Field(description="k of a search that gives none.")


class SourceItem(BaseModel):
    """One indexed source file."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    path: str
    """Path relative to the sources folder (POSIX separators)."""
    title: str
    """Document title."""
    passages: int
    """Passages cut from it."""
    chars: int
    """Length of the decoded text in characters."""
    encoding: str
    """Encoding the file was decoded from."""
    language: str = "und"
    """Detected language of the text (ISO 639-1)."""
    format: str = "txt"
    """How the file was read: "txt", "md", "pdf", "docx", "odt" or "html"."""
    pages: int = 0
    """Number of pages (0 where the format has none)."""


class SourcesResponse(BaseModel):
    """What the served index contains."""

    model_config = _example(
        {
            "index_version": "20250101T120000-3f2a",
            "sources": [
                {
                    "path": "nav/stonad.txt",
                    "title": "Stønad",
                    "passages": 12,
                    "chars": 9120,
                    "encoding": "utf-8",
                    "language": "nb",
                    "format": "txt",
                    "pages": 0,
                }
            ],
        }
    )

    index_version: str
    sources: list[SourceItem]


class SourceTextResponse(BaseModel):
    """``GET /sources/{path}?format=json``: the text passage offsets refer to."""

    model_config = _example(
        {
            "path": "nav/stonad.txt",
            "title": "Stønad",
            "index_version": "20250101T120000-3f2a",
            "chars": 33,
            "format": "txt",
            "text": _EXAMPLE_TEXT,
        }
    )

    path: str
    title: str
    index_version: str
    chars: int
    format: str = Field("txt", description="How the file was read (see GET /sources).")
    text: str = Field(description="Decoded text from the index snapshot.")


class ErrorDetail(BaseModel):
    """One problem with the request (validation errors list one per field)."""

    loc: list[str | int] = Field(default_factory=list, description="Where: e.g. body, query.")
    msg: str
    type: str


class ErrorInfo(BaseModel):
    """The error itself: a stable machine code and a human message."""

    code: str = Field(description="Stable code, e.g. validation_error, not_found.")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)
    request_id: str | None = Field(None, description="Set on 500s; quote it to the operators.")


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body has this shape."""

    model_config = _example(
        {
            "error": {
                "code": "validation_error",
                "message": "The request is invalid.",
                "details": [
                    {
                        "loc": ["body", "query"],
                        "msg": "query must not be blank",
                        "type": "blank",
                    }
                ],
            }
        }
    )

    error: ErrorInfo


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entry documenting the error body for the given status codes."""
    text = {
        400: "Malformed request (invalid JSON, invalid UTF-8, unsafe path).",
        401: "Missing or wrong API key.",
        403: "The server may not read the file.",
        404: "Not found.",
        409: "The index changed since the given version.",
        413: "Request body too large.",
        422: "Invalid parameters.",
        429: "Too many requests; see Retry-After.",
        503: "No index loaded yet.",
    }
    return {c: {"model": ErrorResponse, "description": text.get(c, "Error.")} for c in codes}
