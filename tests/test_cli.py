"""The ``qa`` command's exit statuses and messages, each through a real subprocess.

0 done; 1 failure, with a message naming the file or folder and what to run; 2 usage
error; 3 ``qa index`` finished but skipped files (each named). Never a traceback. Most
cases use the fake model (see qa_procs); ``test_unknown_model`` loads for real.
"""

from __future__ import annotations

import fcntl
import socket
from pathlib import Path

import pytest
from qa_procs import no_traceback, qa_env, run_qa

TINY_ENV = {"QA_CHUNK_SIZE": "120", "QA_CHUNK_OVERLAP": "30"}


def qa(tmp_path: Path, *args: str, **env: str):  # type: ignore[no-untyped-def]
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
