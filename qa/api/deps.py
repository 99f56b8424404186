"""FastAPI dependencies, as Annotated aliases so routes stay short and tests can override them.

A request resolves ``get_retriever`` once (FastAPI caches a dependency per request), so it
keeps the Retriever it got for its whole life even if LiveRetriever swaps in a new index
meanwhile: offsets and texts always come from one snapshot.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Request

from qa.api.errors import ApiError
from qa.config import Settings
from qa.retriever import LiveRetriever, Retriever

log = logging.getLogger("qa.api")


def get_settings(request: Request) -> Settings:
    """The Settings the app was created with."""
    return request.app.state.settings


def get_live(request: Request) -> LiveRetriever | None:
    """The LiveRetriever, or None while the lifespan has not created it yet."""
    return getattr(request.app.state, "live", None)


def _not_ready() -> ApiError:
    return ApiError(
        503,
        "index_not_ready",
        "No index is loaded yet; build one with `qa index` or wait for loading to finish.",
        headers={"Retry-After": "5"},
    )


def get_retriever(live: Annotated[LiveRetriever | None, Depends(get_live)]) -> Retriever:
    """One Retriever snapshot for this request; 503 while none is loaded."""
    if live is None or not live.ready:
        raise _not_ready()
    try:
        return live.get()
    except Exception as exc:  # not loaded, or a failed load: the service is not ready
        log.warning("no retriever available: %s", exc)
        raise _not_ready() from exc


SettingsDep = Annotated[Settings, Depends(get_settings)]
LiveDep = Annotated[LiveRetriever | None, Depends(get_live)]
RetrieverDep = Annotated[Retriever, Depends(get_retriever)]
