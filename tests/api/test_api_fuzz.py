"""Property-based fuzzing of the API from its own OpenAPI schema (schemathesis + hypothesis).

Valid and invalid requests for every operation; none may get a 5xx, and every answer must
match the documented status codes, content types and schemas. Bounded (~50 examples per
operation and mode) so it runs in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from qa.api.app import create_app
from qa.config import Settings
from qa.retriever import LiveRetriever

MAX_EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def schema(tiny_index: Path, settings: Settings, fake_embedder: Any) -> Iterator[Any]:
    s = Settings(**{**settings.model_dump(), "rate_limit": "off"}, _env_file=None)
    live = LiveRetriever(s, fake_embedder)
    live.start()  # the ASGI client does not run the lifespan
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", create_app(s, live))
    finally:
        live.stop()


#: The one refusal of a schema-valid request that no JSON-Schema pattern can state (the
#: ``source`` description says it): a reversed range in a glob class.
REVERSED_RANGE = "reversed range"


def _fuzz(operation: Any, mode: GenerationMode) -> dict[int | str, int]:
    """Run one operation in one mode; return how often each status code came back (a 422
    for a reversed glob range counted apart, as ``REVERSED_RANGE``)."""
    seen: dict[int | str, int] = {}
    # A query string holds text only: a "schema-violating" value such as ``true`` for a
    # string parameter reaches the server as the valid text "true" (CI met ``source=true``),
    # so rejection of negative data is checked where a JSON body or a path carries it.
    rejects = mode == GenerationMode.NEGATIVE and operation.method.upper() != "GET"
    checks = CHECKS + ([negative_data_rejection] if rejects else [])

    @given(case=operation.as_strategy(generation_mode=mode))
    @hyp_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call()
        key: int | str = response.status_code
        if key == 422 and "bad range" in response.text:
            key = REVERSED_RANGE
        seen[key] = seen.get(key, 0) + 1
        case.validate_response(response, checks=checks)

    run()
    return seen


@pytest.mark.slow
def test_fuzz_openapi(schema: Any) -> None:
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /search", "GET /search", "GET /sources/{path}", "GET /health"} <= labels
    for op in operations:
        valid = _fuzz(op, GenerationMode.POSITIVE)
        print(op.label, "valid", valid)
        codes = [c for c in valid if isinstance(c, int)]
        assert valid and max(codes) < 500, (op.label, valid)
        if op.label.endswith("/search"):  # the schema states the limits the server enforces
            stated = sum(valid.values()) - valid.get(REVERSED_RANGE, 0)
            assert valid.get(200, 0) >= 0.9 * stated, (op.label, valid)
        if op.definition.raw.get("parameters") or op.body:
            invalid = _fuzz(op, GenerationMode.NEGATIVE)
            print(op.label, "invalid", invalid)
            assert invalid and max(c for c in invalid if isinstance(c, int)) < 500, (
                op.label,
                invalid,
            )
