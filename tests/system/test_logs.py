"""``QA_LOG_FORMAT=json`` on a real ``qa serve`` (fake model): every line it writes is one
JSON object; a search gives a line with its request id, route, status and result count,
and the query text only with ``QA_LOG_QUERIES=true``."""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from qa.config import Settings
from tests.support.procs import Served, qa_env, serving

QUERY = "Hvem har rett til foreldrepenger"


def records(server: Served) -> list[dict[str, Any]]:
    """Every line the server wrote (stdout and stderr), each parsed as JSON."""
    lines = [line for line in server.output().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # a line that is not JSON fails here


def access_line(server: Served, rid: str) -> dict[str, Any]:
    """The request line of ``rid``; it is written as the response ends, so wait for it."""
    deadline = time.monotonic() + 30
    while True:
        found = [r for r in records(server) if r.get("request_id") == rid]
        if found:
            assert len(found) == 1
            return found[0]
        assert time.monotonic() < deadline, server.tail()
        time.sleep(0.2)


def _serve_env(**extra: str) -> dict[str, str]:
    return qa_env(QA_LOG_FORMAT="json", QA_CHUNK_SIZE="120", QA_CHUNK_OVERLAP="30", **extra)


@pytest.mark.slow
def test_json_request_log_without_the_query(
    tiny_index: Path, settings: Settings, tmp_path: Path
) -> None:
    src = Path(settings.sources_dir)
    with serving(tiny_index, src, tmp_path, fake=True, env=_serve_env()) as server:
        http = httpx.Client(base_url=server.url, timeout=30)
        r = http.get("/search", params={"q": QUERY, "k": 3}, headers={"X-Request-ID": "trace-1"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "trace-1"
        line = access_line(server, "trace-1")
        bad = http.get("/health", headers={"X-Request-ID": 'fake" "level": "ERROR'})
        replaced = bad.headers["x-request-id"]
        assert replaced != 'fake" "level": "ERROR' and len(replaced) == 32
        assert access_line(server, replaced)["route"] == "/health"
        with socket.create_connection(server.url.removeprefix("http://").split(":")) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-ID: \r\nfake\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 400")  # never reaches the app
        miss = http.get("/finnes/ikke")
        assert access_line(server, miss.headers["x-request-id"])["route"] == "<unmatched>"
        everything = records(server)

    assert line["route"] == "/search" and line["method"] == "GET"
    assert line["status"] == 200 and line["level"] == "INFO" and line["logger"] == "qa.access"
    assert line["results"] == len(r.json()["results"]) > 0
    assert isinstance(line["latency_ms"], float) and line["latency_ms"] >= 0
    assert line["client"] == "127.0.0.1"
    when = datetime.fromisoformat(line["time"])
    assert when.utcoffset() == timedelta(0)
    assert "query" not in line
    assert QUERY not in server.output()  # nowhere in the log
    assert not [rec for rec in everything if "fake" in str(rec.get("request_id"))]
    loggers = {rec.get("logger") for rec in everything}
    assert {"uvicorn.error", "qa.access", "qa.serve"} <= loggers  # theirs are JSON too
    assert "uvicorn.access" not in loggers  # ours replaces uvicorn's access log


@pytest.mark.slow
def test_json_request_log_with_queries(
    tiny_index: Path, settings: Settings, tmp_path: Path
) -> None:
    src = Path(settings.sources_dir)
    env = _serve_env(QA_LOG_QUERIES="true")
    with serving(tiny_index, src, tmp_path, fake=True, env=env) as server:
        http = httpx.Client(base_url=server.url, timeout=30)
        r = http.post("/search", json={"query": f"  {QUERY} "}, headers={"X-Request-ID": "q-2"})
        assert r.status_code == 200
        line = access_line(server, "q-2")
    assert line["route"] == "/search" and line["method"] == "POST"
    assert line["query"] == QUERY  # what was searched (trimmed)
    assert line["results"] == len(r.json()["results"])
