"""Start ``qa serve`` on a free port and wait for ``/health``: the one copy of that code.

The tests (``tests.support.procs``, ``tests.support.browser``), the benchmark
(``bench.querying``) and the load test (``bench.loadtest``) all start a real server this
way. Nothing here imports pytest or ``qa``, so the bench can import it; it runs from the
repository root (``python -m bench.run``), where ``tests`` is importable.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

#: ``qa`` as the installed CLI module of this interpreter.
QA = (sys.executable, "-m", "qa.cli")


class ServerError(RuntimeError):
    """``qa serve`` exited, or did not answer ``/health`` with 200 in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def qa_env(**extra: str) -> dict[str, str]:
    """The environment without the developer's QA_* settings, offline, unbuffered.

    The model cache is kept: converting the model again is slow.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    if "QA_CACHE_DIR" in os.environ:
        env["QA_CACHE_DIR"] = os.environ["QA_CACHE_DIR"]
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def serve_args(index: Path, sources: Path | None, port: int) -> list[str]:
    """``serve`` arguments for 127.0.0.1:<port>; without ``sources`` the settings decide."""
    args = ["serve", "--index", str(index)]
    if sources is not None:
        args += ["--sources", str(sources)]
    return [*args, "--host", "127.0.0.1", "--port", str(port)]


@dataclass
class Server:
    """A running ``qa serve`` in a process group of its own, its output in ``log``."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        try:
            return self.log.read_text("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.output().splitlines()[-n:])

    def stop(self) -> int | None:
        """SIGTERM the process group, SIGKILL if it lingers; the exit status."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        return self.process.returncode


def start(
    command: Sequence[str], url: str, *, log: Path, env: dict[str, str], cwd: Path | None
) -> Server:
    """Start ``command`` (a ``qa serve``) without waiting; stdout and stderr go to ``log``."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(url, process, log)


def wait_healthy(server: Server, timeout_s: float, poll_s: float = 0.3) -> None:
    """Return once ``/health`` says 200. Sleeps ``poll_s`` after every other outcome (a
    refused connection, a 503 while the index loads, any other status), so it never spins."""
    deadline = time.monotonic() + timeout_s
    while True:
        if server.process.poll() is not None:
            code = server.process.returncode
            raise ServerError(f"qa serve exited with {code}:\n{server.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise ServerError(f"qa serve not healthy in {timeout_s:.0f} s:\n{server.tail()}")
        time.sleep(poll_s)


@contextlib.contextmanager
def qa_serve(
    index: Path,
    sources: Path | None,
    *,
    env: dict[str, str],
    cwd: Path | None,
    log: Path | None = None,
    command: Sequence[str] = QA,
    timeout_s: float = 300,
) -> Iterator[Server]:
    """``qa serve`` on 127.0.0.1:<free port>; yields once ``/health`` is 200, stops it after.

    ``command`` is the ``qa`` to run (the tests pass one with their fake model); ``log``
    defaults to ``serve-<port>.log`` in ``cwd``.
    """
    port = free_port()
    log = log or (cwd or Path.cwd()) / f"serve-{port}.log"
    command = [*command, *serve_args(index, sources, port)]
    server = start(command, f"http://127.0.0.1:{port}", log=log, env=env, cwd=cwd)
    try:
        wait_healthy(server, timeout_s)
        yield server
    finally:
        server.stop()
