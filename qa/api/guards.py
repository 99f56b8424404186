"""Pure-ASGI guards that run before routing: body size, UTF-8, and the last-resort 500.

The body is read here, counted while it streams (a missing or lying Content-Length does not
help), checked to be UTF-8 and replayed to the app. Bodies are small (``max_body_bytes``,
64 KiB by default), so buffering them costs nothing and keeps FastAPI's own body parsing
from ever seeing an oversized or undecodable payload.
"""

from __future__ import annotations

import logging
import uuid
from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.api.asgi import HttpMiddleware, header
from qa.api.errors import error_json
from qa.api.security import add_security_headers

log = logging.getLogger("qa.api")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class RequestGuardMiddleware(HttpMiddleware):
    """400 for non-UTF-8 URLs/bodies or a bad Content-Length, 413 for a body over the limit."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        super().__init__(app)
        self.max_body_bytes = max_body_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        query = scope.get("query_string", b"").replace(b"+", b" ")
        if not _is_utf8(unquote_to_bytes(raw_path)) or not _is_utf8(unquote_to_bytes(query)):
            await self._reject(scope, receive, send, 400, "invalid_utf8", "The URL is not UTF-8.")
            return

        length = header(scope, b"content-length")
        chunked = header(scope, b"transfer-encoding") is not None
        if length is None and not chunked:
            await self.app(scope, receive, send)
            return
        if length is not None:
            if not length.strip().isdigit():
                await self._reject(
                    scope, receive, send, 400, "bad_request", "Invalid Content-Length."
                )
                return
            if int(length) > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if not _is_utf8(body):
            await self._reject(
                scope, receive, send, 400, "invalid_utf8", "The request body is not UTF-8."
            )
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"The request body is larger than {self.max_body_bytes} bytes."
        await self._reject(scope, receive, send, 413, "body_too_large", message)

    @staticmethod
    async def _reject(
        scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str
    ) -> None:
        # Connection: close — the unread rest of the body must not be taken as a new request.
        response = error_json(status, code, message, headers={"Connection": "close"})
        await response(scope, receive, send)


def internal_error(
    method: object, path: object, exc: BaseException, request_id: str | None = None
) -> JSONResponse:
    """The one generic 500: the traceback goes to the log under the request id (the
    request's ``X-Request-ID``) that the body repeats; the body says nothing else. It
    carries the security headers itself, for the failures outside ``SecurityHeadersMiddleware``."""
    request_id = request_id or uuid.uuid4().hex
    log.error("unhandled error %s on %s %s", request_id, method, path, exc_info=exc)
    response = error_json(500, "internal_error", "Internal server error.", request_id=request_id)
    add_security_headers(response.headers)
    return response


async def on_unhandled(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's outermost ``Exception`` handler: a failure in a middleware that runs
    outside ``CatchAllMiddleware`` (rate limit, security headers, CORS)."""
    rid = request.scope.get("state", {}).get("request_id")
    return internal_error(request.method, request.url.path, exc, rid)


class CatchAllMiddleware(HttpMiddleware):
    """Turns an exception from a route into the generic 500 *inside* the other middleware.

    Starlette's own ``Exception`` handler (``on_unhandled``) runs outermost, so its answer
    would miss the CORS headers; this one sits innermost and answers first.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:  # nothing sensible can be sent any more; let the server drop it
                raise
            rid = scope.get("state", {}).get("request_id")
            response = internal_error(scope.get("method"), scope.get("path"), exc, rid)
            await response(scope, receive, send)
