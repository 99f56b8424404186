"""The app's ``Feedback`` (store + search counter) and the hook ``/search`` counts with.

Kept apart from ``qa.api.feedback`` (the route) so that ``qa.api.routes`` can import the
hook without an import cycle. The object is made on first use, so an app whose lifespan
never runs (an ASGI test client) still answers; the lifespan starts its thread and, on
shutdown, writes the last search counts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from qa.config import Settings
from qa.feedback import Feedback, FeedbackStore, feedback_path


def feedback_of(app: Any) -> Feedback:
    """The Feedback of ``app``, made (without any I/O) on first use."""
    feedback: Feedback | None = getattr(app.state, "feedback", None)
    if feedback is None:
        settings: Settings = app.state.settings
        feedback = Feedback(FeedbackStore(feedback_path(settings), settings.feedback_days))
        app.state.feedback = feedback
    return feedback


async def count_search(request: Request) -> AsyncIterator[None]:
    """A route dependency: counts the search once it answered (an error raised by the
    route comes out of the ``yield``, so refused searches are not counted). No query text
    is kept, and nothing is written on the search path."""
    yield
    feedback_of(request.app).searched()


@asynccontextmanager
async def feedback_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the file (expired entries deleted) and start the flusher; flush on shutdown."""
    feedback = feedback_of(app)
    await run_in_threadpool(feedback.start)
    try:
        yield
    finally:
        await run_in_threadpool(feedback.close)
