"""``qa feedback export|stats|purge`` on votes posted through the API, and ``qa eval`` on the
export as it comes (fake model, in-process CLI); errors name the file, never a traceback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from qa.cli import cli
from qa.cli_context import CliContext
from qa.config import Settings
from qa.feedback import Entry, FeedbackStore, feedback_path
from tests.support.client import api
from tests.support.fake import FakeFactory
from tests.support.procs import no_traceback


def qa(*args: str | Path, input: str | None = None, **env: str) -> Result:
    """``qa ARGS`` in-process with the fake model; QA_* from ``env`` only."""
    obj = CliContext(FakeFactory())
    return CliRunner().invoke(cli, [str(a) for a in args], obj=obj, input=input, env=env)


@pytest.fixture
def voted(tiny_index: Path, settings: Settings, fake_embedder: Any, monkeypatch: Any) -> Path:
    """Votes and searches posted through the API; the feedback file they went to."""
    monkeypatch.chdir(settings.index_dir.parent)  # no developer .env
    for name in [n for n in __import__("os").environ if n.startswith("QA_")]:
        monkeypatch.delenv(name)
    with api(settings, fake_embedder) as c:
        answer = c.post("/search", json={"query": "vedlikehold av vegene"}).json()
        version, hit = answer["index_version"], answer["results"][0]
        span = {"source": hit["source"], "start": hit["start"], "end": hit["end"]}
        votes = [
            {"query": "Hvem har ansvar for fylkesvegene?", "vote": "up", **span},
            {"query": "hvem har ansvar for fylkesvegene", "vote": "opened", **span},
            {"query": "Hvem har ansvar for fylkesvegene?", "vote": "up", **span},
            {"query": "Kostet bruene noe?", "vote": "up", **span},
            {"query": "Kostet bruene noe?", "vote": "down", **span},
            {"query": "Hvem eier månen?", "vote": "none"},
            {"query": "Hvem eier månen", "vote": "none"},
        ]
        for body in votes:
            r = c.post("/feedback", json=body | {"index_version": version})
            assert r.status_code == 201, r.text
        for q in ("kultur", "helse"):
            c.get("/search", params={"q": q})
    return feedback_path(settings)


def test_export_then_qa_eval_runs_on_it(voted: Path, tmp_path: Path, settings: Settings) -> None:
    out = tmp_path / "gull.jsonl"
    r = qa("feedback", "export", "--out", out, "--db", voted)
    assert r.exit_code == 0, r.output
    assert "wrote 2 questions (1 answerable, 1 unanswerable) from 5 votes" in r.output
    assert "skipped 1 (question, span) pairs voted both up and down" in r.output
    lines = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    assert [(x["question"], x["answerable"], x["votes"]) for x in lines] == [
        ("Hvem har ansvar for fylkesvegene?", True, 2),
        ("Hvem eier månen", False, 2),  # a tie: the first spelling in text order
    ]
    assert lines[0]["source"] == "veg.txt" and "Fylkeskommunen" in lines[0]["answer"]

    results = tmp_path / "eval"
    r = qa("eval", "--gold", out, "--sources", settings.sources_dir, "--out", results, "--quiet")
    assert r.exit_code == 0, r.output
    done = json.loads((results / "results.json").read_text("utf-8"))
    assert len(done["questions"]) == 2, done.keys()


def test_export_finds_the_file_from_the_settings(voted: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    by_env = qa("feedback", "export", "--out", out, QA_FEEDBACK_DB=str(voted))
    assert by_env.exit_code == 0 and len(out.read_text("utf-8").splitlines()) == 2
    index = voted.parent / "index"
    by_index = qa("feedback", "export", "--out", tmp_path / "b.jsonl", QA_INDEX_DIR=str(index))
    assert by_index.exit_code == 0, by_index.output


def test_stats(voted: Path) -> None:
    r = qa("feedback", "stats", "--db", voted)
    assert r.exit_code == 0, r.output
    assert "votes: up 3, down 1, opened 1, none 2" in r.output
    assert "searches counted: 3" in r.output  # one POST and two GET searches
    # clicked: two questions with an "up" or "opened" that day, out of three searches
    assert "searches with no click (estimate): 33.3% (2 clicked)" in r.output
    assert "2  Hvem eier månen\n" in r.output and "Kostet bruene" not in r.output


def test_purge(voted: Path) -> None:
    old = Entry(query="gammel", vote="none", index_version="v0", at="2001-01-01T00:00:00Z")
    FeedbackStore(voted, days=100_000).add(old)  # kept by a store with a long retention
    with sqlite3.connect(voted) as conn:
        assert conn.execute("SELECT count(*) FROM feedback").fetchone()[0] == 8
    r = qa("feedback", "purge", "--db", voted)
    assert r.exit_code == 0 and "deleted older than 180 days: 1 entries" in r.output
    assert qa("feedback", "purge", "--all", "--older-than-days", "3", "--db", voted).exit_code == 2
    refused = qa("feedback", "purge", "--all", "--db", voted, input="n\n")
    assert refused.exit_code == 1 and "Delete all feedback in" in refused.output
    assert len(FeedbackStore(voted, 180).entries()) == 7
    r = qa("feedback", "purge", "--all", "--yes", "--db", voted)
    assert r.exit_code == 0 and "deleted all 7 entries" in r.output
    assert FeedbackStore(voted, 180).entries() == []


def test_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "ingen.sqlite3"
    for command in (["export", "--out", str(tmp_path / "x")], ["stats"], ["purge"]):
        r = qa("feedback", *command, "--db", missing)
        assert r.exit_code == 1 and f"no feedback database at {missing}" in r.output
        no_traceback(r.output)
    broken = tmp_path / "ødelagt.sqlite3"
    broken.write_bytes(b"dette er ingen database" * 100)
    r = qa("feedback", "stats", "--db", broken)
    assert r.exit_code == 1 and str(broken) in r.output, r.output
    no_traceback(r.output)
    r = qa("feedback", "purge", "--older-than-days", "-1", "--db", broken)
    assert r.exit_code == 2


def test_registered_lazily() -> None:
    r = qa("--help")
    assert "feedback" in r.output
    r = qa("feedback", "--help")
    assert r.exit_code == 0 and all(c in r.output for c in ("export", "stats", "purge"))
