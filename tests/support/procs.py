"""Run the real ``qa`` command in a subprocess, with the real model or the tests' fake one.

The fault tests need a process boundary (exit status, stderr, SIGKILL, a server started
from the command line). The real model costs ~15 s of loading per process on two cores, so
most cases run the same CLI code with ``fake=True``: the subprocess passes the CLI
a factory of the tests' FakeEmbedder (``obj=CliContext(FakeFactory())``). Nothing else differs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]

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


def qa_env(**extra: str) -> dict[str, str]:
    """The environment without the developer's QA_* settings, offline, unbuffered."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    if "QA_CACHE_DIR" in os.environ:  # converting the model again is slow: share the cache
        env["QA_CACHE_DIR"] = os.environ["QA_CACHE_DIR"]
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def qa_command(args: list[str], fake: bool, prelude: str = "") -> list[str]:
    """argv for ``qa <args>``: the installed CLI module, or the same with the fake model."""
    if fake or prelude:
        code = _FAKE.format(root=str(ROOT), prelude=prelude)
        return [sys.executable, "-c", code, *args]
    return [sys.executable, "-m", "qa.cli", *args]


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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running ``qa serve``."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text("utf-8", "replace")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextlib.contextmanager
def serving(
    index: Path,
    sources: Path,
    cwd: Path,
    *,
    fake: bool = False,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> Iterator[Served]:
    """``qa serve`` on 127.0.0.1:<free port>; yields once /health is 200, stops it after."""
    port = free_port()
    log = cwd / f"serve-{port}.log"
    args = ["serve", "--index", str(index), "--sources", str(sources)]
    args += ["--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            qa_command(args, fake),
            cwd=cwd,
            env=env or qa_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"qa serve exited with {process.returncode}:\n{served.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{served.url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"qa serve not healthy in {timeout:.0f}s:\n{served.output()}")
            time.sleep(0.3)
        yield served
    finally:
        stop(process)


def no_traceback(output: str) -> None:
    """An operator sees a message, never a Python traceback."""
    assert "Traceback" not in output, output
    assert 'File "' not in output, output
