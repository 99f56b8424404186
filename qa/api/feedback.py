"""``POST /feedback``: whether a cited passage answered the question, or that none did.

Checked like ``/search`` (the same query rules and error codes, the caller's access, the
rate limit and body-size guard of every route), and the span like ``/sources/{path}``: a
source the caller may not see is the same 404 as a missing one. The span's text is read
from the served index, never taken from the client. A vote on another index version than
the one served is refused with 409 (its offsets may point elsewhere now): the widget asks
again with the current version. Stored: the query, the span, the vote, the time and the
signed-in user name; nothing else about the client.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from qa.access import Caller
from qa.api.deps import RetrieverDep, SettingsDep
from qa.api.errors import ApiError, validation_error
from qa.api.feedback_state import feedback_lifespan, feedback_of
from qa.api.identity import CallerDep
from qa.api.routes import QUERY_PATTERN, not_found, safe_source_path, strip_invisible
from qa.api.schemas import error_responses
from qa.config import Settings
from qa.feedback import Entry, FeedbackError
from qa.retriever import Retriever

log = logging.getLogger("qa.api")
router = APIRouter(lifespan=feedback_lifespan)

#: The longest span a vote may cite (a passage is at most a few thousand characters): the
#: file cannot be filled with whole documents by one request.
MAX_SPAN_CHARS = 10_000
_UNAVAILABLE = "No index loaded yet, or the feedback file cannot be written (search still works)."


def _whole_float_to_int(value: Any) -> Any:
    """JSON Schema counts 2.0 as an integer; accept it, still reject 2.5, "2" and true."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Offset = Annotated[int | None, BeforeValidator(_whole_float_to_int)]


class FeedbackRequest(BaseModel):
    """Body of ``POST /feedback``: a vote on one cited span, or ``"none"`` for the list."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "query": "Når er søknadsfristen?",
                    "index_version": "20250101T120000-3f2a",
                    "source": "nav/stonad.txt",
                    "start": 120,
                    "end": 153,
                    "vote": "up",
                },
                {
                    "query": "Når er søknadsfristen?",
                    "index_version": "20250101T120000-3f2a",
                    "vote": "none",
                },
            ]
        },
    )

    query: str = Field(
        min_length=1,
        json_schema_extra={"pattern": QUERY_PATTERN},
        description="The question as it was searched (the same limits as /search).",
    )
    index_version: str = Field(
        min_length=1,
        max_length=200,
        description="index_version of the search answer; 409 when no longer served.",
    )
    vote: Literal["up", "down", "opened", "none"] = Field(
        description='"up"/"down": the span answered or not; "opened": its citation was '
        'opened; "none": no result answered (then no source, start or end).'
    )
    source: str | None = Field(None, description="The result's source path (not with none).")
    start: Offset = Field(None, ge=0, description="Span start, an offset into the source text.")
    end: Offset = Field(None, ge=1, description="Span end (exclusive), greater than start.")


class FeedbackResponse(BaseModel):
    """The vote was stored."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"stored": True}]})

    stored: bool = Field(description="Always true: a vote that is not stored is an error.")


def _checked(body: FeedbackRequest, settings: Settings) -> str:
    """The query as /search takes it and the shape of the span; all problems at once."""
    errors: list[tuple[tuple[str, str], str, str]] = []  # (lone surrogates: pydantic's 422)
    query = strip_invisible(body.query)
    if not query:
        errors.append((("body", "query"), "query must not be blank", "blank"))
    elif len(query) > settings.max_query_chars:
        msg = f"query is longer than {settings.max_query_chars} characters"
        errors.append((("body", "query"), msg, "too_long"))
    span = {"source": body.source, "start": body.start, "end": body.end}
    if body.vote == "none":
        for name, value in span.items():
            if value is not None:
                errors.append((("body", name), f'a "none" vote has no {name}', "not_allowed"))
    else:
        for name, value in span.items():
            if value is None:
                errors.append((("body", name), f'a "{body.vote}" vote needs {name}', "missing"))
        if body.start is not None and body.end is not None and body.start >= body.end:
            errors.append((("body", "end"), "end must be greater than start", "out_of_range"))
    if errors:
        raise validation_error(errors)
    return query


def _span(body: FeedbackRequest, retriever: Retriever, caller: Caller) -> str:
    """The served text of the span; 404 for a hidden or unknown source (as /sources does),
    422 for offsets outside its text."""
    assert body.source is not None and body.start is not None and body.end is not None
    text = retriever.source_text(body.source) if retriever.can_see(body.source, caller) else None
    if text is None:
        raise not_found()
    if body.end > len(text):
        loc = ("body", "end")
        raise validation_error([(loc, "end is past the end of the source text", "out_of_range")])
    if body.end - body.start > MAX_SPAN_CHARS:
        msg = f"the span is longer than {MAX_SPAN_CHARS} characters"
        raise validation_error([(("body", "end"), msg, "too_long")])
    return text[body.start : body.end]


@router.post(
    "/feedback",
    tags=["feedback"],
    status_code=201,
    response_model=FeedbackResponse,
    responses=error_responses(400, 401, 404, 409, 413, 422, 429)
    | {503: error_responses(503)[503] | {"description": _UNAVAILABLE}},
    summary="Say whether a result answered the question",
)
async def post_feedback(
    body: FeedbackRequest,
    request: Request,
    retriever: RetrieverDep,
    settings: SettingsDep,
    caller: CallerDep,
) -> FeedbackResponse:
    """Store one vote: ``up``/``down`` on a cited span, ``opened`` when its citation was
    opened, or ``none`` when no result answered. Kept ``QA_FEEDBACK_DAYS`` days; becomes a
    gold set with ``qa feedback export``."""
    query = _checked(body, settings)
    text = None
    if body.source is not None:
        safe_source_path(body.source)
    if body.index_version != retriever.version:
        raise ApiError(
            409, "index_changed", f"The index is now version {retriever.version}; search again."
        )
    if body.vote != "none":
        text = _span(body, retriever, caller)
    entry = Entry(
        query=query,
        vote=body.vote,
        index_version=retriever.version,
        source=body.source,
        start=body.start,
        end=body.end,
        text=text,
        user=caller.user,
    )
    try:
        await run_in_threadpool(feedback_of(request.app).record, entry)
    except FeedbackError as exc:
        log.error("feedback not stored: %s", exc)
        raise ApiError(
            503,
            "feedback_unavailable",
            "The vote could not be stored; try again later (search still works).",
            headers={"Retry-After": "60"},
        ) from exc
    metrics = getattr(request.app.state, "metrics", None)
    if metrics:
        metrics.feedback(body.vote)
    return FeedbackResponse(stored=True)
