"""The shared helper that starts `qa serve` and waits for /health (tests/support/server.py),
checked against a stand-in server process that answers 503 until it is ready."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.support.server import ServerError, free_port, qa_env, start, wait_healthy

#: A stand-in for `qa serve`: /health is 503 for argv[2] seconds, then 200; logs each answer.
_NOT_READY_YET = """
import sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
ready_at = time.monotonic() + float(sys.argv[2])
class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        status = 200 if time.monotonic() >= ready_at else 503
        print("health", status, flush=True)  # before answering: the test stops us after a 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""


def test_waiting_sleeps_between_503s_instead_of_spinning(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-c", _NOT_READY_YET, str(port), "1.5"]
    server = start(
        command, f"http://127.0.0.1:{port}", log=tmp_path / "log", env=qa_env(), cwd=tmp_path
    )
    try:
        started = time.monotonic()
        wait_healthy(server, timeout_s=30, poll_s=0.25)
        waited = time.monotonic() - started
    finally:
        server.stop()
    answers = server.output().split()
    not_ready, ready = answers.count("503"), answers.count("200")
    assert ready == 1 and waited >= 1.2, server.output()
    assert 2 <= not_ready <= waited / 0.25 + 1, (not_ready, waited)  # a spin makes hundreds


def test_a_server_that_exits_is_reported_at_once(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "print('no index here'); raise SystemExit(3)"]
    server = start(command, "http://127.0.0.1:9", log=tmp_path / "log", env=qa_env(), cwd=None)
    started = time.monotonic()
    with pytest.raises(ServerError, match=r"exited with 3:\nno index here"):
        wait_healthy(server, timeout_s=60)
    assert time.monotonic() - started < 30
