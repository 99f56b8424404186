"""Run the real ``qa`` command in a subprocess, with the real model or the tests' fake one.

The fault tests need a process boundary (exit status, stderr, SIGKILL, a server started
from the command line). The real model costs ~15 s of loading per process on two cores, so
most cases run the same CLI code with ``fake=True``: the subprocess passes the CLI
a factory of the tests' FakeEmbedder (``obj=CliContext(FakeFactory())``). Nothing else differs.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.server import QA, Server, qa_env, qa_serve

__all__ = [
    "Served",
    "builds",
    "index_args",
    "no_traceback",
    "qa_command",
    "qa_env",
    "run_qa",
    "serving",
]

ROOT = Path(__file__).resolve().parents[2]
Served = Server  # the name the tests used before the server helper was shared

#: Runs the real CLI with the fake embedder (argv after ``-c`` are the qa arguments);
#: ``{prelude}`` is code run first, e.g. a fault injected into the index writer.
_FAKE = """
import sys
sys.path.insert(0, {root!r})
from tests.support.fake import FakeFactory
{prelude}
from qa.cli import cli
from qa.cli_context import CliContext
cli(sys.argv[1:], prog_name="qa", obj=CliContext(FakeFactory()))
"""


def qa_command(args: list[str], fake: bool, prelude: str = "") -> list[str]:
    """argv for ``qa <args>``: the installed CLI module, or the same with the fake model."""
    if fake or prelude:
        code = _FAKE.format(root=str(ROOT), prelude=prelude)
        return [sys.executable, "-c", code, *args]
    return [*QA, *args]


def run_qa(
    args: list[str],
    cwd: Path,
    *,
    fake: bool = False,
    prelude: str = "",
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``qa <args>`` to the end (cwd: a temp folder, so no .env leaks in)."""
    return subprocess.run(
        qa_command(args, fake, prelude),
        cwd=cwd,
        env=env or qa_env(),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def serving(
    index: Path,
    sources: Path,
    cwd: Path,
    *,
    fake: bool = False,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> Iterator[Server]:
    """``qa serve`` on 127.0.0.1:<free port>; yields once /health is 200, stops it after."""
    command = qa_command([], fake)
    with qa_serve(
        index, sources, env=env or qa_env(), cwd=cwd, command=command, timeout_s=timeout
    ) as server:
        yield server


def index_args(sources: Path, index: Path, *more: str) -> list[str]:
    """``qa index`` arguments for one sources folder and one index folder."""
    return ["index", "--sources", str(sources), "--index", str(index), *more]


def builds(index: Path) -> list[str]:
    """The build folders of an index, ``.tmp-`` leftovers of a killed build included."""
    return sorted(p.name for p in (index / "builds").iterdir())


def no_traceback(output: str) -> None:
    """An operator sees a message, never a Python traceback."""
    assert "Traceback" not in output, output
    assert 'File "' not in output, output
