"""How ``qa serve`` runs uvicorn: its options, and the HTTP/1.1 protocol it speaks.

uvicorn answers what its HTTP parser refuses (a negative Content-Length, raw non-ASCII in
the request line, a 70 KB URL, garbage) itself, as text/plain without our headers (D7),
and waits forever for the headers of a request that never ends (D11: slow clients hold
connections). ``QaH11Protocol`` is uvicorn's h11 protocol with both fixed: the refusal is
the JSON error body with the security headers and ``Connection: close`` (431 when the
request line or headers are too long, else 400), and a connection whose request line and
headers are not complete within ``QA_HEADER_TIMEOUT_S`` of its first byte (or of being
opened) is closed, with a 408 JSON body when part of a request had come. The h11 parser is
pinned: httptools (uvicorn's default when installed) is not subclassed here.
"""

from __future__ import annotations

import asyncio
import json
import sys
from http import HTTPStatus
from typing import Any

import h11
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from starlette.datastructures import MutableHeaders
from uvicorn.protocols.http.h11_impl import H11Protocol

from qa.api.logs import log_config
from qa.api.security import add_security_headers
from qa.config import Settings

#: Status → (code, message) of a request refused before it reached the app.
_REFUSALS = {
    400: ("bad_request", "The request is not valid HTTP/1.1."),
    408: ("request_timeout", "The request line and headers did not arrive in time."),
    431: ("headers_too_large", "The request line or headers are too long."),
}


def refusal(status: int) -> bytes:
    """A whole HTTP/1.1 response: the JSON error body, the security headers, and
    ``Connection: close`` (the rest of what the client sent cannot be trusted)."""
    code, message = _REFUSALS[status]
    body = json.dumps({"error": {"code": code, "message": message, "details": []}}).encode()
    headers = MutableHeaders()
    add_security_headers(headers)
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()]
    lines += [
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode(),
        b"connection: close",
    ]
    lines += [name + b": " + value for name, value in headers.raw]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


#: Seconds a refused connection is still read (and dropped) before it is closed.
LINGER_S = 2.0


class QaH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header timeout and JSON refusals (see the module)."""

    #: Seconds a request line + headers may take; ``protocol_for`` sets it from Settings.
    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._draining = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a byte is closed too

    def data_received(self, data: bytes) -> None:
        if self._draining:  # refused: the rest is read only to be dropped
            return
        if self.conn.their_state is h11.IDLE and self._head_too_long(data):
            self._unset_keepalive_if_required()
            self._refuse(431)
            return
        super().data_received(data)
        self._watch_headers()

    def _head_too_long(self, data: bytes) -> bool:
        """Request line + headers over h11's limit even when they came in one read (h11
        checks only what is still incomplete): the same 431 however TCP split them."""
        limit = self.config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        pending = self.conn.trailing_data[0] + data
        return len(pending) > limit and b"\r\n\r\n" not in pending[: limit + 4]

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_headers()  # a pipelined request may be waiting half-received

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _watch_headers(self) -> None:
        """Armed while part of a request line/headers waits; off once they are complete."""
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            self._disarm()
        elif self.conn.trailing_data[0]:
            self._arm()

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._timed_out)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is still being written: not waiting for headers
        if self.conn.trailing_data[0]:
            self.transport.write(refusal(408))
        self.logger.info("closed a connection whose request headers took too long")
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """Called by uvicorn inside its ``except h11.RemoteProtocolError``: that error's
        status hint (431 for too long) picks the answer; the message never echoes input."""
        exc = sys.exc_info()[1]
        status = getattr(exc, "error_status_hint", 400) if exc is not None else 400
        self._refuse(status if status in _REFUSALS else 400)

    def _refuse(self, status: int) -> None:
        """Answer ``refusal(status)`` and close (only the close, once an answer started)."""
        self._disarm()
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(refusal(status))
        self._linger()

    def _linger(self) -> None:
        """Close after the answer, reading and dropping what the client still sends for up
        to ``LINGER_S``: closing with unread data makes the kernel send a reset, which can
        destroy the answer before the client reads it (a 70 KB URL refused after its first
        part). The lingering close web servers do; the client's own close ends it early."""
        self._draining = True
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()  # sent after the answer; reading goes on
        self.loop.call_later(LINGER_S, self.transport.close)


def protocol_for(settings: Settings) -> type[QaH11Protocol]:
    """``QaH11Protocol`` with this deployment's header timeout."""
    return type("QaH11Protocol", (QaH11Protocol,), {"header_timeout_s": settings.header_timeout_s})


def server_options(settings: Settings) -> dict[str, Any]:
    """How ``qa serve`` runs uvicorn: ``uvicorn.run``'s options (the tests start their
    servers with the same ones)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": protocol_for(settings),
        "server_header": False,
        # Forwarded headers count only from QA_TRUSTED_PROXIES (TrustedProxyMiddleware):
        # uvicorn's own handling would trust them from 127.0.0.1, i.e. any local process.
        "proxy_headers": False,
        "timeout_graceful_shutdown": 10,
        "log_level": "info",
    }
    config = log_config(settings)
    if config is not None:  # JSON: qa.access writes the request lines, not uvicorn
        options.update(log_config=config, access_log=False)
    return options
