"""The FastAPI application: wiring of routes, middleware, lifespan, and ``run_server``.

Middleware, outermost first: the request observer (X-Request-ID, request metrics, the
JSON request log), CORS (so even 401/413/429 answers are readable by an allowed
page), security headers, rate limit, request guards (UTF-8, body size), and a catch-all
that turns a bug into a generic 500 inside all of them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from qa import __version__
from qa.api import feedback, metrics, ops, originals, routes, static
from qa.api.errors import install_error_handlers
from qa.api.guards import CatchAllMiddleware, RequestGuardMiddleware, on_unhandled
from qa.api.identity import (
    Identity,
    TrustedProxyMiddleware,
    document_key,
    get_caller,
    parse_networks,
)
from qa.api.logs import RequestObserver
from qa.api.ratelimit import RateLimitMiddleware
from qa.api.security import DOCS_CSP, SecurityHeadersMiddleware
from qa.api.server import server_options
from qa.config import Settings
from qa.embedding.factory import EmbedderFactory, ModelFactory
from qa.index import IndexProblem
from qa.index.watch import SourceWatcher
from qa.retriever import LiveRetriever

log = logging.getLogger("qa.api")

DESCRIPTION = """Search Norwegian public-sector documents. Every result is an exact citation:
`text == source_text[start:end]` of `GET /sources/{source}` for the same `index_version`.

Errors always have the body `{"error": {"code", "message", "details"}}`.

When the server has an API key (`QA_API_KEY`, or `QA_AUTH=keys`), `/search` and
`/sources` need it in `X-API-Key` or `Authorization: Bearer`; `/health`, `/ready`,
`/limits`, `/docs`, `/openapi.json` and the static `/`, `/view` and `/widget.js` stay open
(they carry no indexed data). `GET /metrics` (Prometheus text) needs `QA_METRICS_TOKEN` as a
bearer token when that is set. Every answer carries `X-Request-ID`. Search and sources
answer only with the files the caller may see (`QA_AUTH`, `access.toml`): a hidden file is
a 404, like a missing one. Requests
are limited per client address (`QA_RATE_LIMIT`); over the limit the answer is 429 with
`Retry-After`. `GET /limits` gives the largest `k` and the longest query.

`GET /sources/{path}/original` serves the original file while it is unchanged since
indexing (409 once it changed): a PDF inline (append `#page=N`), any other format as a
download that never runs on this origin."""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    live: LiveRetriever | None = app.state.live
    if live is None:
        from qa.embedding.batching import BatchingEmbedder

        factory: EmbedderFactory = app.state.embedder_factory
        embedder = await run_in_threadpool(factory.load, settings)  # heavy: torch, the model
        live = LiveRetriever(settings, BatchingEmbedder(embedder))
        app.state.live = live
    if not live.ready:
        try:
            await run_in_threadpool(live.start)
        except IndexProblem as exc:  # live's poller keeps trying to load one
            log.error("no index loaded, answering 503 until one is: %s", exc)
    sources = _watch_sources(settings, live)
    try:
        yield
    finally:
        if sources is not None:
            await run_in_threadpool(sources.stop)
        await run_in_threadpool(live.stop)


def _watch_sources(settings: Settings, live: LiveRetriever) -> SourceWatcher | None:
    """With QA_WATCH_SOURCES: re-index on every change of the sources folder."""
    if not settings.watch_sources:
        return None
    # reload_if_changed: the one, locked, path by which a new build is served
    watcher = SourceWatcher(settings, live.embedder, live.reload_if_changed)
    try:
        watcher.start()
    except FileNotFoundError as exc:
        log.error("not watching the sources: %s", exc)
        return None
    log.info("watching %s: changed files are re-indexed", settings.sources_dir)
    return watcher


def _limit_schema(node: dict[str, Any], key: str, value: int | str) -> None:
    """Put a limit checked in the routes (maxLength, maximum, pattern) into the schema."""
    for option in node.get("anyOf", [node]):
        if option.get("type") in ("string", "integer"):
            option[key] = value


def _openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """FastAPI's schema plus the limits of this deployment, so clients and fuzzers see them."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        props = schema["components"]["schemas"]["SearchRequest"]["properties"]
        _limit_schema(props["query"], "maxLength", settings.max_query_chars)
        _limit_schema(props["query"], "pattern", routes.QUERY_PATTERN)  # not blank
        _limit_schema(props["k"], "maximum", settings.max_k)
        for param in schema["paths"]["/search"]["get"]["parameters"]:
            if param["name"] == "q":
                _limit_schema(param["schema"], "maxLength", settings.max_query_chars)
                _limit_schema(param["schema"], "pattern", routes.QUERY_PATTERN)
            elif param["name"] == "k":
                _limit_schema(param["schema"], "maximum", settings.max_k)
        ops.document_source_paths(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(
    settings: Settings,
    live: LiveRetriever | None = None,
    embedder_factory: EmbedderFactory | None = None,
) -> FastAPI:
    """Build the app. Without ``live`` the lifespan loads the model (with
    ``embedder_factory``, the configured model by default) and the index itself."""
    app = FastAPI(
        title="qa",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.live = live
    app.state.embedder_factory = embedder_factory or ModelFactory()
    app.state.metrics = metrics.create_metrics(app.state, settings)
    install_error_handlers(app)
    app.add_exception_handler(Exception, on_unhandled)

    app.state.identity = identity = Identity(settings)
    protected = [Depends(get_caller)]
    if identity.needs_key:
        protected.append(Depends(document_key))
    app.include_router(routes.health_router)
    app.include_router(ops.router)
    app.include_router(metrics.router)
    # Before routes.router: its /sources/{path:path} would match ".../original" too.
    app.include_router(originals.router, dependencies=protected)
    app.include_router(routes.router, dependencies=protected)
    app.include_router(feedback.router, dependencies=protected)  # + its lifespan
    app.include_router(static.router)

    # Swagger UI's files come from the swagger-ui-bundle package: an intranet has no CDN.
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="qa API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        page.headers["X-Frame-Options"] = "DENY"
        return page

    app.openapi = lambda: _openapi(app, settings)  # type: ignore[method-assign]  # FastAPI's documented override

    # add_middleware puts each one outside the previous: innermost first.
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(ops.HeadMiddleware)
    app.add_middleware(RequestGuardMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(
        RateLimitMiddleware,
        rate_limit=settings.rate_limit,
        exempt=frozenset({"/health", "/metrics"}),
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(TrustedProxyMiddleware, networks=parse_networks(settings.trusted_proxies))
    if settings.cors_origins:
        app.add_middleware(
            ops.JsonCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "Authorization"],
            expose_headers=["Retry-After", "X-Index-Version"],
            max_age=600,
        )
    app.add_middleware(  # outermost: every answer has its X-Request-ID, and is counted
        RequestObserver,
        metrics=app.state.metrics,
        routes=app.router.routes,
        log_requests=settings.log_format == "json",
        log_queries=settings.log_queries,
    )
    return app


def run_server(
    settings: Settings,
    live: LiveRetriever | None = None,
    embedder_factory: EmbedderFactory | None = None,
) -> None:
    """Serve the app with uvicorn on settings.host:settings.port until interrupted."""
    import uvicorn

    uvicorn.run(create_app(settings, live, embedder_factory), **server_options(settings))
