"""The ``qa eval`` command in each target mode: a real server (uvicorn on a free port, the
real app, the fake model), an index built from sources, an index folder."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from click.testing import CliRunner, Result
from pydantic import SecretStr

from qa.api.app import create_app
from qa.cli_context import CliContext
from qa.config import Settings
from qa.eval.cli import eval_command
from qa.eval.run import evaluate_searcher
from qa.retriever import LiveRetriever, Retriever
from tests.support.fake import FakeEmbedder, FakeFactory
from tests.support.server import free_port
from tests.unit.eval_hand import TINY_QUESTIONS, write_gold

KEY = "s3cret"


def run_eval(*args: str | Path, embedder: FakeEmbedder | None = None) -> Result:
    """``qa eval ARGS --quiet`` in-process, with the fake model."""
    obj = CliContext(FakeFactory(embedder))
    return CliRunner().invoke(eval_command, [*map(str, args), "--quiet"], obj=obj)


@pytest.fixture
def served(settings: Settings, tiny_index: Path, fake_embedder: FakeEmbedder) -> Iterator[str]:
    """The real app under uvicorn on 127.0.0.1:<free port>, with an API key."""
    s = settings.model_copy(update={"api_key": SecretStr(KEY), "rate_limit": "10000/minute"})
    app = create_app(s, LiveRetriever(s, fake_embedder))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # set once the lifespan has loaded the index
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_cli_url_mode_writes_reports_and_enforces_floors(
    tmp_path: Path,
    served: str,
    settings: Settings,
    tiny_index: Path,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    direct = evaluate_searcher(Retriever.load(tiny_index, settings, fake_embedder), TINY_QUESTIONS)
    hit5 = direct["metrics"]["all"]["hit@5"]
    gold = write_gold(tmp_path / "gold.jsonl", TINY_QUESTIONS)
    out = tmp_path / "out"
    monkeypatch.setenv("QA_API_KEY", KEY)
    ok = run_eval("--gold", gold, "--url", served, "--out", out, "--min", f"hit@5={hit5}")
    assert ok.exit_code == 0, ok.output
    assert "mrr@10" in ok.output and "all 1 floors met" in ok.output
    saved = json.loads((out / "results.json").read_text("utf-8"))
    assert saved["mode"] == "url" and saved["model"] == fake_embedder.name
    assert saved["metrics"] == direct["metrics"]
    assert [r["results"] for r in saved["questions"]] == [r["results"] for r in direct["questions"]]
    assert "report.html" in {p.name for p in out.iterdir()}
    bad = run_eval("--gold", gold, "--url", served, "--out", out, "--min", "nb:hit@1=1.01")
    assert bad.exit_code == 1
    assert "nb:hit@1 = 1.000 is below the floor 1.01" in bad.output
    usage = run_eval("--gold", gold, "--url", served, "--min", "nonsense")
    assert usage.exit_code == 2 and "bad floor" in usage.output
    unknown = run_eval("--gold", gold, "--url", served, "--min", "hit@3=0.5")
    assert unknown.exit_code == 2 and "no such metric: all:hit@3" in unknown.output
    monkeypatch.delenv("QA_API_KEY")
    refused = run_eval("--gold", gold, "--url", served, "--out", out)
    assert refused.exit_code == 1 and "401" in refused.output


def test_cli_url_mode_without_a_server_fails_with_one_line(tmp_path: Path) -> None:
    gold = write_gold(tmp_path / "gold.jsonl", TINY_QUESTIONS)
    res = run_eval("--gold", gold, "--url", f"http://127.0.0.1:{free_port()}")
    assert res.exit_code == 1 and "cannot reach http://127.0.0.1:" in res.output
    assert "Traceback" not in res.output


def test_cli_sources_and_index_modes(
    tmp_path: Path, tiny_sources: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_CHUNK_SIZE", "120")
    monkeypatch.setenv("QA_CHUNK_OVERLAP", "30")
    gold = write_gold(tmp_path / "gold.jsonl", TINY_QUESTIONS)
    out = tmp_path / "out"
    built = run_eval(
        "--gold", gold, "--sources", tiny_sources, "--out", out, embedder=fake_embedder
    )
    assert built.exit_code == 0, built.output
    first = json.loads((out / "results.json").read_text("utf-8"))
    assert first["mode"] == "sources" and first["metrics"]["all"]["n"] == 3
    assert first["settings"]["chunk_size"] == 120 and (out / "index" / "current").exists()
    out2 = tmp_path / "out2"
    loaded = run_eval("--gold", gold, "--index", out / "index", "--out", out2)
    assert loaded.exit_code == 0, loaded.output
    second = json.loads((out2 / "results.json").read_text("utf-8"))
    assert second["metrics"] == first["metrics"]
    assert second["index_version"] == first["index_version"]


def test_cli_k_is_limited_by_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The largest k is Settings.max_k (QA_MAX_K), as in the API, not a literal of the CLI."""
    gold = write_gold(tmp_path / "gold.jsonl", TINY_QUESTIONS)
    monkeypatch.setenv("QA_MAX_K", "20")
    res = run_eval("--gold", gold, "--index", tmp_path / "none", "--k", "21")
    assert res.exit_code == 2 and "largest k, 20 (QA_MAX_K)" in res.output
    monkeypatch.setenv("QA_MAX_K", "100")
    res = run_eval("--gold", gold, "--index", tmp_path / "none", "--k", "60")
    assert res.exit_code == 1 and "largest k" not in res.output  # past the check: no index
