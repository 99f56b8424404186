"""``qa eval --url``: a running server as the Searcher, decoded with the API's own schemas.

The wire format is defined once, in ``qa.api.schemas``: a field renamed there fails here as a
validation error, not as a silently wrong figure.
"""

from __future__ import annotations

import time
from dataclasses import fields
from typing import Any

import httpx

from qa.api.schemas import HealthResponse, ResultItem, SearchResponse
from qa.types import Hit, Passage, SearchResult

RETRIES_429 = 5
_PASSAGE_FIELDS = tuple(f.name for f in fields(Passage))


def to_hit(item: ResultItem) -> Hit:
    """One wire result back into the retriever's Hit (the inverse of ``ResultItem.from_hit``)."""
    passage = Passage(**{name: getattr(item, name) for name in _PASSAGE_FIELDS})
    return Hit(
        passage, item.score, item.rank, answer_start=item.answer_start, answer_end=item.answer_end
    )


def result_from_search(data: Any) -> SearchResult:
    """The API's /search JSON back into a SearchResult."""
    response = SearchResponse.model_validate(data)
    return SearchResult(response.query, response.language, [to_hit(r) for r in response.results])


class HttpSearcher:
    """``POST /search`` of a running server; any httpx.Client works (FastAPI's TestClient too).

    Each question is one timed request, as a user would send it.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        client: httpx.Client | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.client = client or httpx.Client(base_url=url or "", timeout=timeout)
        self.headers = {"X-API-Key": api_key} if api_key else {}

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        """The JSON body; 429 is retried after Retry-After, any other error raises."""
        for attempt in range(RETRIES_429 + 1):
            resp = self.client.request(method, path, headers=self.headers, **kw)
            if resp.status_code != 429 or attempt == RETRIES_429:
                break
            time.sleep(float(resp.headers.get("Retry-After", "1") or 1))
        if resp.status_code >= 400:
            raise RuntimeError(
                f"{method} {resp.request.url} answered {resp.status_code}: {resp.text[:300]}"
            )
        return resp.json()

    def health(self) -> HealthResponse:
        return HealthResponse.model_validate(self._request("GET", "/health"))

    def search(self, query: str, k: int = 5) -> SearchResult:
        return result_from_search(self._request("POST", "/search", json={"query": query, "k": k}))
