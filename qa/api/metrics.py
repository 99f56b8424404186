"""``GET /metrics``: what the service does, in the Prometheus text format.

Every app has its own ``CollectorRegistry`` (``app.state.metrics``), never the global one:
tests build many apps in one process, and two apps must not share counts. Requests are
counted by route template (``/sources/{path}``, never the raw path: a scanner must not
create a series per URL), method and status; ``/health``, ``/ready`` and ``/metrics`` are
not counted (probes would drown the traffic). What describes the served index (version,
passages, build time), the query queue and readiness is read at scrape time, so it is
never stale.

Open like ``/health`` unless ``QA_METRICS_TOKEN`` is set; then it needs
``Authorization: Bearer <token>``. Without the token the passage count covers only the
files an anonymous caller may see (hidden files are not even a number, as on ``/health``).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from qa.access import ANONYMOUS
from qa.api.errors import ApiError
from qa.config import Settings

router = APIRouter(tags=["service"])

#: Seconds; fine between 5 and 200 ms, where searches fall.
BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
#: Route templates left out of the request metrics.
NOT_COUNTED = frozenset({"/health", "/ready", "/metrics"})
#: Any other method (h11 takes any token) is counted as "other": labels stay few.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
VOTES = frozenset({"up", "down", "opened", "none"})
UNMATCHED = "<unmatched>"
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


def _build_time(manifest: dict[str, Any]) -> float | None:
    """The manifest's ``created`` ("2025-01-31T12:00:00+0100") as a Unix time."""
    try:
        return datetime.strptime(str(manifest["created"]), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except (KeyError, ValueError):
        return None


class ServiceCollector(Collector):
    """The served index, the query queue and readiness, read from ``app.state`` per scrape."""

    def __init__(self, state: Any, all_passages: bool) -> None:
        self.state = state
        self.all_passages = all_passages

    def collect(self) -> Iterator[Metric]:
        live = getattr(self.state, "live", None)
        retriever = live.get() if live is not None and live.ready else None
        ready = retriever is not None and live is not None and live.problem is None
        yield GaugeMetricFamily("qa_ready", "1 while /ready answers 200.", value=int(ready))
        waiting = getattr(live.embedder, "waiting", None) if live is not None else None
        if isinstance(waiting, int):
            yield GaugeMetricFamily(
                "qa_embedding_queue_depth", "Query embeddings waiting for a worker.", waiting
            )
        if retriever is None:
            return
        yield InfoMetricFamily(
            "qa_index", "The index build being served.", value={"version": retriever.version}
        )
        sources = retriever.manifest["sources"]
        visible = retriever.visible_sources(None if self.all_passages else ANONYMOUS)
        passages = sum(int(sources[p].get("passages", 0)) for p in visible if p in sources)
        yield GaugeMetricFamily("qa_index_passages", "Passages in the served index.", passages)
        built = _build_time(retriever.manifest)
        if built is not None:
            yield GaugeMetricFamily(
                "qa_index_built_timestamp_seconds", "When the served index was built.", built
            )


class Metrics:
    """The metrics of one app; ``searched`` and ``feedback`` are called by the routes."""

    def __init__(self, state: Any, all_passages: bool = True) -> None:
        self.registry = CollectorRegistry()
        labels = ["method", "route", "status"]
        self.requests = Counter(
            "qa_http_requests", "HTTP requests answered.", labels, registry=self.registry
        )
        self.latency = Histogram(
            "qa_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.searches = Counter(
            "qa_searches", "Searches by detected query language.", ["language"],
            registry=self.registry,
        )  # fmt: skip
        self.empty = Counter(
            "qa_searches_empty", "Searches that found nothing.", registry=self.registry
        )
        self.votes = Counter(
            "qa_feedback", "Feedback received, by vote.", ["vote"], registry=self.registry
        )
        self.registry.register(ServiceCollector(state, all_passages))

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request (not for the routes in ``NOT_COUNTED``)."""
        if route in NOT_COUNTED:
            return
        labels = (method if method in METHODS else "other", route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def searched(self, language: str, results: int) -> None:
        """Count one search: its detected language, and whether it found nothing."""
        self.searches.labels(language if _LANGUAGE.match(language) else "other").inc()
        if results == 0:
            self.empty.inc()

    def feedback(self, vote: str) -> None:
        """Count one stored feedback entry."""
        self.votes.labels(vote if vote in VOTES else "other").inc()

    def render(self, accept: str) -> tuple[bytes, str]:
        """The exposition the scraper asked for (Prometheus text, or OpenMetrics)."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


def create_metrics(state: Any, settings: Settings) -> Metrics:
    """The app's metrics; without a token the passage count is what anyone may see."""
    return Metrics(state, all_passages=settings.metrics_token is not None)


def _check_token(request: Request, settings: Settings) -> None:
    if settings.metrics_token is None:
        return
    expected = settings.metrics_token.get_secret_value().strip().encode("utf-8")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    ok = scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "replace"), expected
    )
    if not ok:
        raise ApiError(
            401,
            "unauthorized",
            "GET /metrics needs the metrics token: Authorization: Bearer <QA_METRICS_TOKEN>.",
            headers={"WWW-Authenticate": "Bearer"},
        )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """The Prometheus exposition of this app (``QA_METRICS_TOKEN``: bearer token needed)."""
    _check_token(request, request.app.state.settings)
    body, content_type = request.app.state.metrics.render(request.headers.get("accept", ""))
    return Response(body, media_type=content_type)
