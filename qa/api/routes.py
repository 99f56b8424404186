"""The JSON API: search, health and the indexed sources.

Search is CPU-bound (embedding, FAISS, BM25), so it runs in the thread pool, never on the
event loop. Every route takes its Retriever once, from ``RetrieverDep``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from qa.access import Caller, Filters
from qa.api.deps import LiveDep, RetrieverDep, SettingsDep
from qa.api.errors import ApiError, validation_error
from qa.api.feedback_state import count_search
from qa.api.filters import filters_from_query
from qa.api.identity import CallerDep, OpenCallerDep
from qa.api.schemas import (
    HealthResponse,
    LimitsResponse,
    SearchRequest,
    SearchResponse,
    SourceItem,
    SourcesResponse,
    SourceTextResponse,
    error_responses,
)
from qa.config import Settings
from qa.retriever import Retriever

health_router = APIRouter(tags=["service"])
router = APIRouter()

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")

#: What a query is stripped of at both ends: white space, control and format characters
#: (Unicode Cc, Cf: zero-width space, BOM, direction marks...) and the letters drawn as
#: blank (Hangul fillers, braille blank). A query of nothing else is blank.
_INVISIBLE = (
    r"\s\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    r"\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\u2800\u3164"
    r"\ufeff\uffa0\ufff9-\ufffb"
)
#: One visible character: the ``pattern`` of the query in the OpenAPI schema (valid in
#: Python and ECMA-262), so the schema and the check agree on "not blank".
QUERY_PATTERN = f"[^{_INVISIBLE}]"
_VISIBLE = re.compile(QUERY_PATTERN)


def strip_invisible(query: str) -> str:
    """``query`` without the invisible characters around it: what is searched and measured.
    (Two linear searches: a regex anchored at the end would backtrack on long blank runs.)"""
    first = _VISIBLE.search(query)
    if first is None:
        return ""
    last = _VISIBLE.search(query[::-1])
    assert last is not None
    return query[first.start() : len(query) - last.start()]


def _checked(query: str, k: int | None, settings: Settings, where: str) -> tuple[str, int]:
    """Apply the limits that depend on Settings; all problems are reported at once."""
    qloc, kloc = (
        (("body", "query"), ("body", "k")) if where == "body" else (("query", "q"), ("query", "k"))
    )
    errors: list[tuple[tuple[str, str], str, str]] = []
    try:
        query.encode("utf-8")
    except UnicodeEncodeError:
        errors.append((qloc, "query contains invalid Unicode (lone surrogates)", "invalid_unicode"))
    query = strip_invisible(query)  # the limit is on what is searched, not on the space around
    if not query:
        errors.append((qloc, "query must not be blank", "blank"))
    elif len(query) > settings.max_query_chars:
        msg = f"query is longer than {settings.max_query_chars} characters"
        errors.append((qloc, msg, "too_long"))
    k = settings.default_k if k is None else k
    if not 1 <= k <= settings.max_k:
        errors.append((kloc, f"k must be between 1 and {settings.max_k}", "out_of_range"))
    if errors:
        raise validation_error(errors)
    return query, k


async def _search(
    request: Request, retriever: Retriever, query: str, k: int, caller: Caller, filters: Filters
) -> SearchResponse:
    """Ranks only what ``caller`` may see and ``filters`` let through (inside the retriever);
    counted in the metrics, and its result count (and query) kept for the request log."""
    result = await run_in_threadpool(
        lambda: retriever.search(query, k, caller=caller, filters=filters)
    )
    request.state.search_results, request.state.search_query = len(result.hits), query
    metrics = getattr(request.app.state, "metrics", None)
    if metrics:
        metrics.searched(result.language, len(result.hits))
    return SearchResponse.from_result(result, retriever.version)


_SEARCH: dict[str, Any] = {
    "tags": ["search"],
    "response_model": SearchResponse,
    "responses": error_responses(400, 401, 413, 422, 429, 503),
    "dependencies": [Depends(count_search)],  # searches answered, for `qa feedback stats`
}


@router.post("/search", summary="Search the documents", **_SEARCH)
async def search_post(
    request: Request,
    body: SearchRequest,
    retriever: RetrieverDep,
    settings: SettingsDep,
    caller: CallerDep,
) -> SearchResponse:
    """Return the passages that best answer ``query``, each with its exact citation."""
    query, k = _checked(body.query, body.k, settings, "body")
    filters = body.filters.to_filters() if body.filters else Filters()
    return await _search(request, retriever, query, k, caller, filters)


@router.get("/search", summary="Search the documents (query string)", **_SEARCH)
async def search_get(
    request: Request,
    retriever: RetrieverDep,
    settings: SettingsDep,
    caller: CallerDep,
    filters: Annotated[Filters, Depends(filters_from_query)],
    q: Annotated[str, Query(min_length=1, description="The question or search words.")],
    k: Annotated[int | None, Query(ge=1, description="How many passages to return.")] = None,
) -> SearchResponse:
    """Same as ``POST /search``, for links and quick tests: ``/search?q=...&k=5``
    (filters: ``&source=hr/**&format=pdf``)."""
    query, k = _checked(q, k, settings, "query")
    return await _search(request, retriever, query, k, caller, filters)


@health_router.get(
    "/health",
    response_model=HealthResponse,
    responses=error_responses(503),
    summary="Readiness",
)
async def health(retriever: RetrieverDep, caller: OpenCallerDep, live: LiveDep) -> HealthResponse:
    """200 once an index is loaded (never needs the API key); 503 with an error body before.
    ``passages`` counts only what the caller may see: hidden files are not even a number.
    A newer build that failed to load shows as ``index_problem`` (readiness: ``/ready``)."""
    problem = live.problem if live is not None else None
    model = retriever.manifest.get("model") or {}
    sources = retriever.manifest["sources"]
    visible = retriever.visible_sources(caller)
    return HealthResponse(
        status="degraded" if problem else "ok",
        index_problem=problem,
        index_version=retriever.version,
        passages=sum(int(sources[p].get("passages", 0)) for p in visible if p in sources),
        model=str(model.get("name", "")),
        engines=getattr(retriever.embedder, "engines", None),
    )


@health_router.get("/limits", response_model=LimitsResponse, summary="Request limits")
async def limits(settings: SettingsDep) -> LimitsResponse:
    """The largest ``k`` and the longest query this server takes (open, like /health), so
    clients such as the widget need not repeat them."""
    return LimitsResponse(
        max_k=settings.max_k,
        max_query_chars=settings.max_query_chars,
        default_k=settings.default_k,
    )


@router.get(
    "/sources",
    tags=["sources"],
    response_model=SourcesResponse,
    responses=error_responses(401, 429, 503),
    summary="List the indexed sources",
)
async def list_sources(retriever: RetrieverDep, caller: CallerDep) -> SourcesResponse:
    """Every source file the caller may see, with its size and how many passages it gave."""
    items = [SourceItem.model_validate(s, from_attributes=True) for s in retriever.sources(caller)]
    return SourcesResponse(index_version=retriever.version, sources=items)


def not_found() -> ApiError:
    """The one 404 of a source that is missing, or that the caller may not see."""
    return ApiError(404, "not_found", "No such source in the index.")


def safe_source_path(path: str) -> str:
    """Reject anything that is not a plain relative POSIX path (defence in depth: lookups
    go to the index snapshot, never to the file system)."""
    problem = None
    if _CONTROL.search(path):
        problem = "control characters"
    elif "\\" in path:
        problem = "backslashes"
    elif path.startswith("/") or _DRIVE.match(path):
        problem = "an absolute path"
    elif any(part in ("", ".", "..") for part in path.split("/")):
        problem = "empty, '.' or '..' segments"
    elif len(path) > 1024:
        problem = "more than 1024 characters"
    if problem:
        raise ApiError(400, "invalid_path", f"The source path must not contain {problem}.")
    return path


_TEXT_200: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The source text (text/plain, or JSON with format=json).",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/sources/{path:path}",
    tags=["sources"],
    response_model=SourceTextResponse,
    responses={**_TEXT_200, **error_responses(400, 401, 404, 409, 422, 429, 503)},
    summary="Get a source text",
)
async def get_source(
    path: str,
    retriever: RetrieverDep,
    caller: CallerDep,
    format: Annotated[
        Literal["text", "json"], Query(description="text/plain (default) or JSON.")
    ] = "text",
    version: Annotated[
        str | None,
        Query(description="Fail with 409 unless this index version is being served."),
    ] = None,
) -> SourceTextResponse | PlainTextResponse:
    """The decoded text that search offsets refer to: ``text == source[start:end]``."""
    if not path:
        raise ApiError(404, "not_found", "No source path given.")
    safe_source_path(path)
    if version is not None and version != retriever.version:
        raise ApiError(
            409,
            "index_changed",
            f"The index is now version {retriever.version}; search again.",
        )
    text = retriever.source_text(path) if retriever.can_see(path, caller) else None
    if text is None:
        raise not_found()  # the same answer for a hidden file as for a missing one
    if format == "json":
        entry = retriever.manifest["sources"].get(path, {})
        return SourceTextResponse(
            path=path,
            title=str(entry.get("title", "")),
            index_version=retriever.version,
            chars=len(text),
            format=str(entry.get("format", "txt")),
            text=text,
        )
    return PlainTextResponse(text, headers={"X-Index-Version": retriever.version})
