"""Request ids, the per-request log line and request metrics: the outermost middleware.

Every response carries ``X-Request-ID``: the client's when it is a sane token (at most 128
of ``[A-Za-z0-9._-]``), else a new uuid4 hex; a header with anything else (``\\r\\n``, JSON
quotes) is replaced, never echoed, so it cannot forge log lines. Outermost, so the 401, 413
and 429 of the inner middleware and the last-resort 500 carry it too.

With ``QA_LOG_FORMAT=json`` every log record (uvicorn's and qa's) is one JSON object per
line on stderr, and each request gets one line from ``qa.access``: time, level, request
id, method, route template, status, latency, client address and, for searches, the result
count. The query text only with ``QA_LOG_QUERIES=true``: queries can be personal data.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.api.asgi import HttpMiddleware, header
from qa.api.guards import internal_error
from qa.api.metrics import UNMATCHED, Metrics
from qa.config import Settings

access_log = logging.getLogger("qa.access")

HEADER = "X-Request-ID"
_SANE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_CONVERTOR = re.compile(r"\{(\w+):\w+\}")
#: scope["state"] keys the routes fill in for the log line.
RESULTS, QUERY = "search_results", "search_query"


def request_id(given: bytes | None) -> str:
    """The client's id when it is a sane token, else a new one."""
    if given is not None:
        text = given.decode("latin-1")
        if _SANE.match(text):
            return text
    return uuid.uuid4().hex


def route_template(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """``/sources/{path}`` for ``/sources/a/b.txt``: the route the router chose, or the one
    it would choose (HEAD, and requests refused before routing); ``<unmatched>`` for 404s."""
    route = scope.get("route")
    if route is None:
        probe = {**scope, "method": "GET" if scope["method"] == "HEAD" else scope["method"]}
        partial = None
        for candidate in routes:
            match, _ = candidate.matches(probe)
            if match == Match.FULL:
                route = candidate
                break
            if match == Match.PARTIAL and partial is None:
                partial = candidate
        route = route or partial
    path = getattr(route, "path", None)
    return _CONVERTOR.sub(r"{\1}", path) if isinstance(path, str) else UNMATCHED


class RequestObserver(HttpMiddleware):
    """Gives each request its id (``scope["state"]["request_id"]``), answers a failure of
    the inner middleware with the generic 500 under that id, then counts and logs it."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        routes: Sequence[BaseRoute],
        log_requests: bool = False,
        log_queries: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(app)
        self.metrics = metrics
        self.routes = routes
        self.log_requests = log_requests
        self.log_queries = log_queries
        self.clock = clock

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = self.clock()
        rid = request_id(header(scope, HEADER.lower().encode()))
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        status = 500
        responded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                responded = True
                status = int(message["status"])
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if responded:
                raise
            response = internal_error(scope.get("method"), scope.get("path"), exc, rid)
            await response(scope, receive, send_with_id)
        finally:
            seconds = self.clock() - started
            route = route_template(scope, self.routes)
            self.metrics.request(scope["method"], route, status, seconds)
            if self.log_requests:
                self._log(scope, state, rid, route, status, seconds)

    def _log(
        self, scope: Scope, state: dict[str, Any], rid: str, route: str, status: int, s: float
    ) -> None:
        client = scope.get("client")
        fields: dict[str, Any] = {
            "request_id": rid,
            "method": scope["method"],
            "route": route,
            "status": status,
            "latency_ms": round(s * 1000, 2),
            "client": client[0] if client else None,
        }
        if RESULTS in state:
            fields["results"] = state[RESULTS]
            if self.log_queries and QUERY in state:
                fields["query"] = state[QUERY]
        access_log.info("%s %s %d", scope["method"], route, status, extra=fields)


def log_config(settings: Settings) -> dict[str, Any] | None:
    """uvicorn's ``log_config`` for ``QA_LOG_FORMAT=json`` (None: uvicorn's own, text):
    every record one JSON object on stderr, ``time`` in ISO 8601 UTC."""
    if settings.log_format != "json":
        return None
    formatter = {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(levelname)s %(name)s %(message)s",
        "rename_fields": {"levelname": "level", "name": "logger"},
        "timestamp": "time",
        # uvicorn repeats its message with terminal colours under color_message
        "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
        "json_ensure_ascii": False,
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": "INFO"},
        "loggers": {
            name: {"handlers": [], "level": "INFO", "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "qa")
        },
    }
