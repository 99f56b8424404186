"""The base of the pure-ASGI middleware of the API (guards, rate limit, security headers).

Pure ASGI rather than Starlette's ``BaseHTTPMiddleware``: no task per request, and the body
can be read and replayed. Only HTTP requests are handled; the lifespan passes through.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower case) in ``scope``, or None."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return None


class HttpMiddleware:
    """Calls ``handle`` for HTTP requests; every other scope goes straight to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one HTTP request (usually by calling ``self.app``)."""
        raise NotImplementedError
