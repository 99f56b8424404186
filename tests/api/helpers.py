"""Shared by the API tests: the error-body check, and a real uvicorn server in a thread run
with ``qa serve``'s own uvicorn options, for what must go through HTTP (headers uvicorn
adds, raw request lines)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from qa.api.app import create_app, server_options
from qa.config import Settings
from qa.retriever import LiveRetriever

JSON = {"content-type": "application/json"}


def assert_error(r: Any, status: int, code: str | None = None, *, where: str = "") -> dict:
    """The standard error body, nothing internal in it."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert isinstance(err["message"], str) and err["message"]
    if code:
        assert err["code"] == code, err
    for leak in ("Traceback", 'File "', "/tmp", os.getcwd(), "site-packages"):
        assert leak not in r.text
    if where:
        assert any(where in [str(x) for x in d["loc"]] for d in err["details"]), err
    return err


@contextmanager
def live_server(
    settings: Settings, embedder: Any = None, app: FastAPI | None = None
) -> Iterator[str]:
    """uvicorn on 127.0.0.1, a free port, in a thread; yields its base URL. Serves ``app``,
    or a new app on ``settings.index_dir`` with ``embedder``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if app is None:
        app = create_app(settings, LiveRetriever(settings, embedder))
    options = {**server_options(settings), "log_level": "warning"}
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def raw_get(base: str, target: str) -> tuple[int, str]:
    """Send a request line exactly as given (no client-side path normalisation)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode("utf-8", "replace")
