"""Pure-ASGI guards that run before routing: body size, UTF-8, and a last-resort 500.

The body is read here, counted while it streams (a missing or lying Content-Length does not
help), checked to be UTF-8 and replayed to the app. Bodies are small (``max_body_bytes``,
64 KiB by default), so buffering them costs nothing and keeps FastAPI's own body parsing
from ever seeing an oversized or undecodable payload.
"""

from __future__ import annotations

import logging
import uuid
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.api.errors import error_json

log = logging.getLogger("qa.api")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return None


class RequestGuardMiddleware:
    """400 for non-UTF-8 URLs/bodies or a bad Content-Length, 413 for a body over the limit."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        query = scope.get("query_string", b"").replace(b"+", b" ")
        if not _is_utf8(unquote_to_bytes(raw_path)) or not _is_utf8(unquote_to_bytes(query)):
            await self._reject(scope, receive, send, 400, "invalid_utf8", "The URL is not UTF-8.")
            return

        length = _header(scope, b"content-length")
        chunked = _header(scope, b"transfer-encoding") is not None
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


class CatchAllMiddleware:
    """Turns an unhandled exception into the generic 500 *inside* the other middleware.

    Starlette's own ``Exception`` handler runs outermost, so its 500 would miss the security
    and CORS headers; this one sits innermost and answers first. The traceback is logged
    with a request id that the body repeats, never sent.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            request_id = uuid.uuid4().hex[:16]
            log.exception(
                "unhandled error %s on %s %s", request_id, scope.get("method"), scope.get("path")
            )
            if started:  # nothing sensible can be sent any more; let the server drop it
                raise
            response = error_json(
                500, "internal_error", "Internal server error.", request_id=request_id
            )
            await response(scope, receive, send)
