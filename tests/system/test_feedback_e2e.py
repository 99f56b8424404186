"""Feedback through a real `qa serve` (fake model): votes survive a re-index and a restart,
a vote on the replaced index version is refused, and `qa feedback export`/`stats` read
them from the default file beside the index folder."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.support.corpus import write_tiny_sources
from tests.support.procs import index_args, no_traceback, qa_env, run_qa, serving

ENV = {"QA_CHUNK_SIZE": "120", "QA_CHUNK_OVERLAP": "30", "QA_RELOAD_INTERVAL_S": "0.2"}


def vote(url: str, query: str, kind: str = "up", version: str | None = None) -> httpx.Response:
    """Search ``query``, then vote on its first result (or "none") with its index_version."""
    answer = httpx.post(f"{url}/search", json={"query": query}, timeout=30).json()
    body = {"query": query, "index_version": version or answer["index_version"], "vote": kind}
    if kind != "none":
        hit = answer["results"][0]
        body |= {"source": hit["source"], "start": hit["start"], "end": hit["end"]}
    return httpx.post(f"{url}/feedback", json=body, timeout=30)


@pytest.mark.slow
def test_votes_survive_reindexing_and_restarts(tmp_path: Path) -> None:
    sources, index = write_tiny_sources(tmp_path / "sources"), tmp_path / "index"
    env = qa_env(**ENV, QA_RATE_LIMIT="off")
    built = run_qa(index_args(sources, index, "--quiet"), tmp_path, fake=True, env=env)
    assert built.returncode == 0, built.stderr

    with serving(index, sources, tmp_path, fake=True, env=env) as server:
        first = httpx.get(f"{server.url}/health", timeout=10).json()["index_version"]
        assert vote(server.url, "Hvem har ansvar for fylkesvegene?").status_code == 201
        assert vote(server.url, "Hvem eier månen?", "none").status_code == 201
        (sources / "bru.txt").write_text("Bruer\n\nBruer inspiseres hvert femte år.", "utf-8")
        rebuilt = run_qa(index_args(sources, index, "--quiet"), tmp_path, fake=True, env=env)
        assert rebuilt.returncode == 0, rebuilt.stderr
        deadline = time.monotonic() + 60
        while httpx.get(f"{server.url}/health", timeout=10).json()["index_version"] == first:
            assert time.monotonic() < deadline, "the new build was not served"
            time.sleep(0.2)
        stale = vote(server.url, "Når inspiseres bruer?", version=first)
        assert stale.status_code == 409 and stale.json()["error"]["code"] == "index_changed"
        assert vote(server.url, "Når inspiseres bruer?").status_code == 201

    with serving(index, sources, tmp_path, fake=True, env=env) as server:  # a restart
        assert vote(server.url, "Hvem har ansvar for fylkesvegene").status_code == 201

    assert (tmp_path / "feedback.sqlite3").is_file()  # beside the index, not in its builds
    assert not list(index.rglob("*.sqlite3*"))
    out = tmp_path / "gull.jsonl"
    reader = qa_env(QA_INDEX_DIR=str(index))
    exported = run_qa(["feedback", "export", "--out", str(out)], tmp_path, env=reader)
    assert exported.returncode == 0, exported.stderr
    no_traceback(exported.stderr)
    lines = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    assert {(x["question"].rstrip("?"), x["answerable"], x["votes"]) for x in lines} == {
        ("Hvem har ansvar for fylkesvegene", True, 2),
        ("Når inspiseres bruer", True, 1),
        ("Hvem eier månen", False, 1),
    }
    stats = run_qa(["feedback", "stats"], tmp_path, env=reader)
    assert stats.returncode == 0, stats.stderr
    assert "votes: up 3, down 0, opened 0, none 1" in stats.stdout
    assert "searches counted: 5" in stats.stdout  # written when each server shut down
    assert "searches with no click (estimate): 60.0% (2 clicked)" in stats.stdout
