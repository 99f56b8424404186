"""The security headers every response carries (who is asking: ``qa.api.identity``).

Policy (also stated in the OpenAPI description): when a key is required (``QA_API_KEY``,
``QA_AUTH=keys``), ``/search`` and ``/sources*`` need it. ``/health`` (probes), the static
widget/demo/view files, ``/docs`` and ``/openapi.json`` stay open: they carry no indexed
data, and a browser cannot attach a header to a ``<script src>`` or a page load anyway.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from qa.api.asgi import HttpMiddleware

# Pages may load their own script/style files and call this API; nothing else.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors {ancestors}"
)
# Swagger UI is an inline script plus its own files, served here under /docs-assets.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# Data responses (JSON, text/plain) are never rendered as a document.
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def page_headers(frame_ancestors: list[str] | None = None) -> dict[str, str]:
    """Headers for an HTML page; ``frame_ancestors`` are extra origins that may embed it."""
    ancestors = " ".join(["'self'", *(frame_ancestors or [])])
    headers = {"Content-Security-Policy": PAGE_CSP.format(ancestors=ancestors)}
    if not frame_ancestors:
        # X-Frame-Options cannot name other origins; frame-ancestors covers modern browsers.
        headers["X-Frame-Options"] = "SAMEORIGIN"
    return headers


def add_security_headers(headers: MutableHeaders) -> None:
    """The defaults every response gets; a header the route chose itself is kept."""
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cache-Control", "no-store")
    if "content-security-policy" not in headers:
        headers["Content-Security-Policy"] = API_CSP
        headers.setdefault("X-Frame-Options", "DENY")


class SecurityHeadersMiddleware(HttpMiddleware):
    """Adds default security headers unless the route already chose its own."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_security_headers(MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_with_headers)
