"""The ``qa`` command's exit statuses and messages, each through a real subprocess.

0 done; 1 failure, with a message naming the file or folder and what to run; 2 usage
error; 3 ``qa index`` finished but skipped files (each named). Never a traceback. Most
cases use the fake model (see qa_procs); ``test_unknown_model`` and
``test_index_with_the_real_model_skips_loading_it_when_unchanged`` load for real.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from qa.api.schemas import SearchResponse
from qa.cli import cli
from tests.support.procs import no_traceback, qa_env, run_qa

TINY_ENV = {"QA_CHUNK_SIZE": "120", "QA_CHUNK_OVERLAP": "30"}


def qa(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_qa(list(args), tmp_path, fake=True, env=qa_env(**{**TINY_ENV, **env}), timeout=120)


def test_index_exit_0_then_up_to_date(tmp_path: Path, tiny_sources: Path) -> None:
    index = tmp_path / "index"
    first = qa(tmp_path, "index", "--sources", str(tiny_sources), "--index", str(index))
    assert first.returncode == 0, first.stderr
    assert "index updated: 4 sources" in first.stderr and "0 skipped" in first.stderr
    again = qa(tmp_path, "index", "--sources", str(tiny_sources), "--index", str(index))
    assert again.returncode == 0 and "already up to date" in again.stderr
    no_traceback(first.stderr + again.stderr)


def test_index_exit_3_when_files_are_skipped(tmp_path: Path, tiny_sources: Path) -> None:
    (tiny_sources / "tom.txt").write_bytes(b"")
    (tiny_sources / "bilde.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    r = qa(tmp_path, "index", "--sources", str(tiny_sources), "--index", str(tmp_path / "i"))
    assert r.returncode == 3, r.stderr
    assert "warning: skipped tom.txt: empty file" in r.stderr
    assert "warning: skipped bilde.png: binary file" in r.stderr
    assert "4 sources" in r.stderr and "2 skipped" in r.stderr


def test_index_escapes_names_and_counts_formats(tmp_path: Path, tiny_sources: Path) -> None:
    """D2: names were printed raw: one could forge an "index updated" line or carry a
    terminal escape sequence (OSC) into the log."""
    (tiny_sources / "x\nindex updated: 99 sources.txt").write_text("Tekst.", encoding="utf-8")
    (tiny_sources / "osc\x1b]0;pwned\x07.txt").write_text("Tekst.", encoding="utf-8")
    (tiny_sources / "notat.md").write_text("# Notat\n\nKommunen har ansvar.", encoding="utf-8")
    r = qa(tmp_path, "index", "--sources", str(tiny_sources), "--index", str(tmp_path / "i"))
    assert r.returncode == 3, r.stderr
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr
    assert not any(line.startswith("index updated: 99") for line in r.stderr.splitlines())
    reason = "file name holds a control character (rename the file)"
    assert f"warning: skipped x\\nindex updated: 99 sources.txt: {reason}" in r.stderr
    assert f"warning: skipped osc\\x1b]0;pwned\\x07.txt: {reason}" in r.stderr
    assert "indexed: 4 txt, 1 md" in r.stderr and "5 sources" in r.stderr


def test_settings_come_from_the_environment(tmp_path: Path, tiny_sources: Path) -> None:
    r = qa(tmp_path, "index", QA_SOURCES_DIR=str(tiny_sources), QA_INDEX_DIR=str(tmp_path / "x"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "x" / "current" / "manifest.json").is_file()


def test_invalid_setting_is_a_usage_error(tmp_path: Path, tiny_sources: Path) -> None:
    r = qa(tmp_path, "index", "--sources", str(tiny_sources), QA_CHUNK_SIZE="lots")
    assert r.returncode == 2, r.stderr
    assert "invalid setting" in r.stderr and "chunk_size" in r.stderr
    no_traceback(r.stderr)


def test_index_busy_is_refused(tmp_path: Path, tiny_sources: Path) -> None:
    index = tmp_path / "index"
    index.mkdir()
    with open(index / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        r = qa(tmp_path, "index", "--sources", str(tiny_sources), "--index", str(index))
    assert r.returncode == 1
    assert "another `qa index` is writing" in r.stderr
    no_traceback(r.stderr)


def test_index_folder_that_cannot_be_made(tmp_path: Path, tiny_sources: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    bad = tmp_path / "a-file" / "index"
    r = qa(tmp_path, "index", "--sources", str(tiny_sources), "--index", str(bad))
    assert r.returncode == 1
    assert f"could not write the index in {bad}" in r.stderr and "Not a directory" in r.stderr
    no_traceback(r.stderr)


def test_serve_without_an_index_and_building_off(tmp_path: Path) -> None:
    index = tmp_path / "index"
    r = qa(tmp_path, "serve", "--index", str(index), "--port", "9", QA_BUILD_IF_MISSING="false")
    assert r.returncode == 1
    assert f"no index in {index}: run `qa index --index {index}`" in r.stderr
    no_traceback(r.stderr)


def test_ask(tmp_path: Path, tiny_sources: Path) -> None:
    index = tmp_path / "index"
    missing = qa(tmp_path, "ask", "fylkesveger", "--index", str(index))
    assert missing.returncode == 1 and f"qa index --index {index}" in missing.stderr
    qa(tmp_path, "index", "--sources", str(tiny_sources), "--index", str(index))
    ok = qa(tmp_path, "ask", "Hvem har ansvar for fylkesvegene?", "--index", str(index))
    assert ok.returncode == 0 and "veg.txt" in ok.stdout
    blank = qa(tmp_path, "ask", "   ", "--index", str(index))
    assert blank.returncode == 2 and "the question is empty" in blank.stderr
    (index / "current" / "dense.faiss").write_bytes(b"garbage")
    broken = qa(tmp_path, "ask", "fylkesveger", "--index", str(index))
    assert broken.returncode == 1 and "is damaged" in broken.stderr and "--rebuild" in broken.stderr
    no_traceback(missing.stderr + ok.stderr + blank.stderr + broken.stderr)


def test_ask_limits_and_json(tmp_path: Path, tiny_sources: Path) -> None:
    """--k is bounded by QA_MAX_K like the API; --json is the API's own response body."""
    index = tmp_path / "index"
    qa(tmp_path, "index", "--sources", str(tiny_sources), "--index", str(index))
    small = {"QA_MAX_K": "3", "QA_DEFAULT_K": "2"}
    over = qa(tmp_path, "ask", "veg", "--k", "4", "--index", str(index), **small)
    assert over.returncode == 2 and "QA_MAX_K" in over.stderr, over.stderr
    r = qa(tmp_path, "ask", "skole", "--k", "3", "--json", "--index", str(index), **small)
    assert r.returncode == 0, r.stderr
    body = SearchResponse.model_validate_json(r.stdout)
    assert len(body.results) == 3 and os.readlink(index / "current").endswith(body.index_version)
    assert body.language == "und"  # lingua says Danish: not a language the API names
    default = qa(tmp_path, "ask", "veg", "--json", "--index", str(index), **small)
    assert len(json.loads(default.stdout)["results"]) == 2
    inconsistent = qa(tmp_path, "ask", "veg", "--index", str(index), QA_MAX_K="3")
    assert inconsistent.returncode == 2 and "default_k must not be larger" in inconsistent.stderr
    no_traceback(over.stderr + r.stderr + default.stderr + inconsistent.stderr)


def test_eval_that_cannot_be_imported_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken `qa eval` import is reported when it is used, not turned into "No such
    command" (nor does it break the other commands)."""
    monkeypatch.setitem(cli.lazy, "eval", "qa.eval.no_such_module:eval_command")
    runner = CliRunner()
    for args in (["eval", "--gold", "g.jsonl"], ["eval", "--help"]):
        r = runner.invoke(cli, args)
        assert r.exit_code == 1, r.output
        assert "`qa eval` is unavailable: could not import qa.eval.no_such_module" in r.output
        assert "No such command" not in r.output
    listed = runner.invoke(cli, ["--help"])
    assert listed.exit_code == 0 and "eval" in listed.output and "Unavailable" in listed.output
    assert runner.invoke(cli, ["ask", "--help"]).exit_code == 0


def test_eval_is_imported_only_when_used() -> None:
    """`qa eval` is found through the lazy table, and is the real command."""
    from qa.eval.cli import eval_command

    ctx = click.Context(cli)
    assert cli.get_command(ctx, "eval") is eval_command
    assert "eval" in cli.list_commands(ctx)


@pytest.mark.parametrize("model", ["/nowhere/model", "bundled:other"])
def test_unknown_model(tmp_path: Path, tiny_sources: Path, model: str) -> None:
    """The real model loader (no fake): a model that is not there is named, exit 1."""
    args = ["index", "--sources", str(tiny_sources), "--index", str(tmp_path / "i")]
    r = run_qa(args, tmp_path, env=qa_env(QA_MODEL=model), timeout=120)
    assert r.returncode == 1
    assert f"could not load the model {model!r}" in r.stderr
    no_traceback(r.stderr)


def test_help_is_instant_and_lists_commands(tmp_path: Path) -> None:
    r = run_qa(["--help"], tmp_path, timeout=30)
    assert r.returncode == 0
    for command in ("index", "serve", "ask", "eval", "model"):
        assert command in r.stdout


def test_serve_on_a_port_in_use_exits_1(tmp_path: Path, tiny_sources: Path) -> None:
    """uvicorn exits 3 when it cannot listen; `qa serve` says so with its own status 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        args = ["serve", "--sources", str(tiny_sources), "--index", str(tmp_path / "index")]
        r = qa(tmp_path, *args, "--host", "127.0.0.1", "--port", port)
    assert r.returncode == 1, r.stderr
    assert "address already in use" in r.stderr
    assert f"could not serve on 127.0.0.1:{port}" in r.stderr
    no_traceback(r.stderr)


#: Says on stderr when the CLI loads the (fake) model: the factory the CLI is given is
#: this subclass (the prelude runs after FakeFactory is imported, before it is used).
_LOUD_LOAD = """
class LoudFactory(FakeFactory):
    def load(self, settings):
        print("LOADING THE MODEL", file=sys.stderr)
        return super().load(settings)
FakeFactory = LoudFactory
"""


def test_index_on_unchanged_sources_does_not_load_the_model(
    tmp_path: Path, tiny_sources: Path
) -> None:
    index = tmp_path / "index"
    args = ["index", "--sources", str(tiny_sources), "--index", str(index)]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        env = qa_env(**TINY_ENV)
        return run_qa([*args, *extra], tmp_path, prelude=_LOUD_LOAD, env=env, timeout=120)

    def build_id() -> str:
        return os.readlink(index / "current")

    first = run()
    assert first.returncode == 0, first.stderr
    assert "LOADING THE MODEL" in first.stderr and "index updated: 4 sources" in first.stderr
    built = build_id()
    passages = json.loads((index / "current" / "manifest.json").read_text())["passages"]

    again = run()
    assert again.returncode == 0, again.stderr
    assert "LOADING THE MODEL" not in again.stderr
    assert f"already up to date: 4 sources, {passages} passages" in again.stderr
    assert build_id() == built

    (tiny_sources / "tom.txt").write_bytes(b"")  # skipped files: still no model, still exit 3
    skipped = run()
    assert skipped.returncode == 3, skipped.stderr
    assert "LOADING THE MODEL" not in skipped.stderr
    assert "warning: skipped tom.txt: empty file" in skipped.stderr
    assert "already up to date" in skipped.stderr and "1 skipped" in skipped.stderr
    (tiny_sources / "tom.txt").unlink()

    (tiny_sources / "veg.txt").write_text("Nye regler for vegene fra 2025.", encoding="utf-8")
    edited = run()
    assert edited.returncode == 0, edited.stderr
    assert "LOADING THE MODEL" in edited.stderr and "index updated: 4 sources" in edited.stderr
    assert build_id() != built
    manifest = json.loads((index / "current" / "manifest.json").read_text())
    sha = hashlib.sha256((tiny_sources / "veg.txt").read_bytes()).hexdigest()
    assert manifest["sources"]["veg.txt"]["sha256"] == sha

    rebuilt = run("--rebuild")  # nothing changed, but --rebuild re-embeds: needs the model
    assert rebuilt.returncode == 0 and "LOADING THE MODEL" in rebuilt.stderr
    no_traceback(first.stderr + again.stderr + skipped.stderr + edited.stderr + rebuilt.stderr)


#: The real CLI, saying at exit whether sentence-transformers (the model) was imported.
_REAL_WITH_IMPORTS = """
import atexit, sys
atexit.register(lambda: print("MODEL IMPORTED:", "onnxruntime" in sys.modules,
                              "PYTORCH:", "sentence_transformers" in sys.modules,
                              file=sys.stderr))
from qa.cli import cli
cli(sys.argv[1:], prog_name="qa")
"""


@pytest.mark.slow
def test_index_with_the_real_model_skips_loading_it_when_unchanged(
    tmp_path: Path, tiny_sources: Path
) -> None:
    """The real expected fingerprint matches the one the real model writes in the index."""
    index = tmp_path / "index"
    argv = [sys.executable, "-c", _REAL_WITH_IMPORTS, "index", "--quiet"]
    argv += ["--sources", str(tiny_sources), "--index", str(index)]

    def run() -> subprocess.CompletedProcess[str]:
        env = qa_env(**TINY_ENV)
        return subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )

    first = run()  # a small corpus: the ONNX engine embeds it, PyTorch is never imported
    assert first.returncode == 0, first.stderr
    assert "index updated" in first.stderr and "MODEL IMPORTED: True" in first.stderr
    assert "PYTORCH: False" in first.stderr and "small job" in first.stderr
    again = run()
    assert again.returncode == 0, again.stderr
    assert "already up to date" in again.stderr
    assert "MODEL IMPORTED: False PYTORCH: False" in again.stderr
    (tiny_sources / "veg.txt").write_text("Nye regler for vegene fra 2025.", encoding="utf-8")
    edited = run()
    assert edited.returncode == 0, edited.stderr
    assert "index updated" in edited.stderr and "MODEL IMPORTED: True" in edited.stderr
    no_traceback(first.stderr + again.stderr + edited.stderr)


def test_ask_as_a_group_with_filters_and_index_naming_unmatched_files(
    tmp_path: Path, tiny_sources: Path
) -> None:
    """`qa index` counts files no rule matches and fails on bad rules naming the file; `qa ask
    --groups` searches only what those groups may see, with the filters."""
    rules = tiny_sources / "access.toml"
    rules.write_text('[[rule]]\npath = "*.txt"\ngroups = ["*"]\n', encoding="utf-8")
    index = tmp_path / "index"
    built = qa(tmp_path, "index", "--sources", str(tiny_sources), "--index", str(index))
    assert built.returncode == 0 and "matches (visible to nobody): 1" in built.stderr, built.stderr
    ask = ["ask", "veg", "--json", "--index", str(index), "--k", "5"]
    anonymous = qa(tmp_path, *ask, "--groups", "")
    sources = {r["source"] for r in json.loads(anonymous.stdout)["results"]}
    assert sources and all("/" not in s for s in sources), anonymous.stderr
    one = qa(tmp_path, *ask, "--source", "okonomi.txt", "--modified-after", "2000-01-01")
    assert {r["source"] for r in json.loads(one.stdout)["results"]} == {"okonomi.txt"}
    rules.write_text("[[rule]]\npath = 3\n", encoding="utf-8")
    bad = qa(tmp_path, "index", "--sources", str(tiny_sources), "--index", str(index))
    assert bad.returncode == 1 and f"{rules}: rule 1" in bad.stderr
    no_traceback(built.stderr + anonymous.stderr + one.stderr + bad.stderr)


def test_ask_prints_the_answer_span_in_bold(tmp_path: Path, tiny_sources: Path) -> None:
    """The answer span is bold inside the passage; without colour the text reads the same."""
    from qa.cli_context import CliContext
    from tests.support.fake import FakeFactory

    index = str(tmp_path / "index")
    obj = CliContext(FakeFactory())
    runner = CliRunner()
    built = runner.invoke(cli, ["index", "--sources", str(tiny_sources), "--index", index], obj=obj)
    assert built.exit_code == 0, built.output
    question = ["ask", "Hvor mye koster vedlikeholdet av vegene?", "--k", "1", "--index", index]
    coloured = runner.invoke(cli, question, obj=obj, color=True)
    span = "Vedlikeholdet av vegene koster 3,2 milliarder kroner i 2024."
    assert coloured.exit_code == 0 and click.style(span, bold=True) in coloured.output
    plain = runner.invoke(cli, question, obj=obj)
    assert "\x1b[" not in plain.output and f"vegene. {span}" in plain.output
