"""What monitors, load balancers and API fuzzers rely on: HEAD on every GET route (D6),
``/ready`` apart from ``/health``, and the schema's pattern of a source path (D13).

``/health`` says the process is alive and what it serves (and ``index_problem`` when the
newest build on disk could not be loaded); ``/ready`` is 200 only while an index is loaded
and nothing newer is broken, so an orchestrator can tell the two apart.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from qa.api.asgi import HttpMiddleware
from qa.api.deps import LiveDep, RetrieverDep
from qa.api.errors import ApiError, error_json
from qa.api.schemas import ReadyResponse, error_responses
from qa.api.security import add_security_headers

router = APIRouter(tags=["service"])

_PLAIN = r"[^\x00-\x1f\x7f/\\]"  # any character a segment may hold
_NOT_DOT = r"[^\x00-\x1f\x7f/\\.]"
#: A segment other than "", "." and "..".
_SEGMENT = rf"(?:\.*{_NOT_DOT}{_PLAIN}*|\.\.\.+{_PLAIN}*)"
#: The first segment, which also must not start like a drive ("C:").
_FIRST = (
    rf"(?:[^A-Za-z\x00-\x1f\x7f/\\.]{_PLAIN}*|[A-Za-z](?:[^:\x00-\x1f\x7f/\\]{_PLAIN}*)?"
    rf"|\.+{_NOT_DOT}{_PLAIN}*|\.\.\.+{_PLAIN}*)"
)
#: What ``routes.safe_source_path`` lets through, as a regex valid in Python and ECMA-262:
#: relative POSIX paths without control characters, backslashes, drives or "", ".", ".."
#: segments. In the schema, so a fuzzer's "valid" path is one the route takes (D13).
SOURCE_PATH_PATTERN = rf"^{_FIRST}(?:/{_SEGMENT})*$"
MAX_SOURCE_PATH = 1024


def document_source_paths(schema: dict[str, Any]) -> None:
    """Put the pattern and length of a source path on every ``{path}`` parameter."""
    for route, item in schema["paths"].items():
        if not route.startswith("/sources/{path}"):
            continue
        for param in item.get("get", {}).get("parameters", []):
            if param["name"] == "path" and param["in"] == "path":
                param["schema"].update(pattern=SOURCE_PATH_PATTERN, maxLength=MAX_SOURCE_PATH)


class HeadMiddleware(HttpMiddleware):
    """Answers HEAD as the GET of the same URL without its body (headers, Content-Length
    included): monitors that probe with HEAD must not get 405 (D6)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, but a refused preflight is the JSON error body with the security
    headers (it runs outside ``SecurityHeadersMiddleware``), like every other error (D7)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 400:
            kept = {
                k: v
                for k, v in response.headers.items()
                if k.lower() not in ("content-type", "content-length")
            }
            message = bytes(response.body).decode() + "."
            response = error_json(400, "cors_rejected", message, headers=kept)
        add_security_headers(response.headers)
        return response


@router.get(
    "/ready",
    response_model=ReadyResponse,
    responses=error_responses(503),
    summary="Readiness: able to answer searches now",
)
async def ready(retriever: RetrieverDep, live: LiveDep) -> ReadyResponse:
    """200 while an index is loaded (the model was loaded first) and the newest build on
    disk is the one served; 503 before, and while a newer build is broken (``index_problem``)."""
    problem = live.problem if live is not None else None
    if problem is not None:
        raise ApiError(503, "index_problem", problem, headers={"Retry-After": "30"})
    return ReadyResponse(status="ready", index_version=retriever.version)
