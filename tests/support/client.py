"""An in-process client on the real app (lifespan run), for the API tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from qa.api.app import create_app
from qa.config import Settings
from qa.retriever import LiveRetriever


@contextmanager
def api(settings: Settings, embedder: Any, **overrides: Any) -> Iterator[TestClient]:
    """A TestClient (lifespan run) on an app serving ``settings.index_dir``."""
    s = Settings(**{**settings.model_dump(), **overrides}, _env_file=None)
    app = create_app(s, LiveRetriever(s, embedder))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
