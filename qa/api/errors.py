"""One error shape for every failure: ``{"error": {"code", "message", "details"}}``.

Clients (the widget, scripts) branch on ``code``; nothing in a body ever echoes request
input verbatim or names a file-system path, and a 500 says nothing about internals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(Exception):
    """Raised by routes and dependencies for an expected failure with a known status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[dict[str, Any]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details)
        self.headers = headers


def clean(text: object) -> str:
    """Make any value safe to put in a UTF-8 JSON body (lone surrogates become '?')."""
    return str(text).encode("utf-8", "replace").decode("utf-8")


def error_json(
    status: int,
    code: str,
    message: str,
    details: Iterable[dict[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> JSONResponse:
    """Build the standard error response."""
    body: dict[str, Any] = {"code": code, "message": message, "details": list(details)}
    if request_id:
        body["request_id"] = request_id
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Keep loc/msg/type of pydantic errors; drop ``input`` and ``ctx`` (they echo input)."""
    out = []
    for err in errors:
        loc = [x if isinstance(x, int) else clean(x) for x in err.get("loc", ())]
        out.append({"loc": loc, "msg": clean(err.get("msg", "")), "type": clean(err.get("type"))})
    return out


def validation_error(
    problems: Sequence[tuple[Sequence[str | int], str, str]],
) -> RequestValidationError:
    """(loc, msg, type) checks done in the routes, raised so they share the 422 shape."""
    return RequestValidationError(
        [{"loc": tuple(loc), "msg": m, "type": t} for loc, m, t in problems]
    )


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_json(400, "invalid_json", "The request body is not valid JSON.")
    return error_json(
        422, "validation_error", "The request is invalid.", _validation_details(errors)
    )


_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route on this path takes (Starlette names only the first route's:
    ``Allow: POST`` on ``/search``, D14); HEAD wherever GET is (``ops.HeadMiddleware``)."""
    routes = request.app.router.routes
    methods = {
        m
        for m in _METHODS
        if any(r.matches({**request.scope, "method": m})[0] == Match.FULL for r in routes)
    }
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error" if exc.status_code >= 500 else "bad_request")
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request) or headers.get("Allow", "")
    return error_json(exc.status_code, code, clean(detail), headers=headers or None)


async def _on_api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_json(exc.status, exc.code, exc.message, exc.details, exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Route the expected exception types to the standard error body (any other exception
    is the last-resort 500 of ``qa.api.guards``)."""
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(ApiError, _on_api_error)
