"""What the HTTP parser refuses, and slow clients, over raw sockets to a real uvicorn run
with ``qa serve``'s options (``qa.api.server``): the JSON error body with the security
headers (D7), and request headers that must arrive within ``QA_HEADER_TIMEOUT_S`` (D11)."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.datastructures import MutableHeaders

from qa.api.security import add_security_headers
from qa.config import Settings
from tests.api.helpers import live_server
from tests.support.procs import qa_env, serving

#: Far above the 1 s timeout the tests set: only a server that never closes misses it.
BOUND_S = 15.0
_DEFAULTS = MutableHeaders()
add_security_headers(_DEFAULTS)
SECURITY = dict(_DEFAULTS.items())


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=BOUND_S)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes; raises TimeoutError if it keeps it open."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def exchange(base: str, data: bytes) -> bytes:
    with connect(base) as sock:
        sock.sendall(data)
        return read_all(sock)


def parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def assert_json_refusal(answer: bytes, status: int, code: str) -> None:
    got, headers, body = parse(answer)
    assert got == status, answer[:300]
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"] and error["details"] == []
    for name, value in SECURITY.items():
        assert headers[name.lower()] == value, name


@pytest.fixture
def server(tiny_index: Path, settings: Settings, fake_embedder: Any) -> Iterator[str]:
    s = Settings(**{**settings.model_dump(), "header_timeout_s": 1.0}, _env_file=None)
    with live_server(s, fake_embedder) as base:
        yield base


BAD_REQUESTS = {
    "negative content-length": (
        b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: -1\r\n\r\n{}",
        400,
        "bad_request",
    ),
    "raw non-ascii target": (
        "GET /søk?q=veg HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        400,
        "bad_request",
    ),
    "70 KB url": (
        b"GET /search?q=" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        431,
        "headers_too_large",
    ),
    "garbage request line": (b"\x16\x03\x01\x02\x00 hello\r\n\r\n", 400, "bad_request"),
    "no colon in a header": (
        b"GET /health HTTP/1.1\r\nHost: x\r\nfake\r\n\r\n",
        400,
        "bad_request",
    ),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_parser_refusals_are_json_with_security_headers(server: str, name: str) -> None:
    data, status, code = BAD_REQUESTS[name]
    assert_json_refusal(exchange(server, data), status, code)


def test_a_long_url_is_refused_however_it_arrives(server: str) -> None:
    """In one write or in pieces, the same 431 (h11 alone checks only incomplete heads)."""
    with connect(server) as sock:
        sock.sendall(b"GET /search?q=" + b"a" * 20_000)
        sock.sendall(b"a" * 50_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert_json_refusal(read_all(sock), 431, "headers_too_large")


def test_the_server_still_answers_after_refusals(server: str) -> None:
    for data, _, _ in BAD_REQUESTS.values():
        exchange(server, data)
    status, headers, _ = parse(
        exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    )
    assert status == 200 and headers["x-request-id"]


def _closed_within(sock: socket.socket, bound_s: float) -> bytes:
    sock.settimeout(bound_s)
    return read_all(sock)  # TimeoutError: still open after the bound


def test_half_sent_requests_are_closed(server: str) -> None:
    """20 connections that stop in the middle of their headers and one that sends nothing
    are closed (408 JSON where part of a request came), while a normal request on another
    connection is answered meanwhile."""
    half = [connect(server) for _ in range(20)]
    silent = connect(server)
    try:
        for sock in half:
            sock.sendall(b"GET /search?q=veg HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        status, _, _ = parse(
            exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        )
        assert status == 200
        for sock in half:
            assert_json_refusal(_closed_within(sock, BOUND_S), 408, "request_timeout")
        assert _closed_within(silent, BOUND_S) == b""
    finally:
        for sock in [*half, silent]:
            sock.close()


def test_headers_sent_byte_by_byte_are_cut_off(server: str) -> None:
    """A client that keeps sending (slowloris) gets no more time than one that stops."""
    request = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 1000
    deadline = time.monotonic() + BOUND_S
    with connect(server) as sock:
        for byte in request:
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                break
            assert time.monotonic() < deadline, "still open after the bound"
            try:
                sock.sendall(bytes([byte]))
            except OSError:  # closed by the server: what the test wants
                break
        else:
            pytest.fail("the whole slow request was taken")
        answer = _closed_within(sock, BOUND_S)
    assert parse(answer)[0] == 408


def test_a_keep_alive_connection_gets_a_fresh_timeout(server: str) -> None:
    """The timeout is per request head: a second request on the same connection is
    answered, and then its own half-sent third one is closed."""
    with connect(server) as sock:
        for _ in range(2):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while b"}" not in data:
                data += sock.recv(65536)
            assert parse(data)[0] == 200
        sock.sendall(b"GET /health HTTP/1.1\r\nHo")
        assert parse(_closed_within(sock, BOUND_S))[0] == 408


@pytest.mark.slow
def test_real_qa_serve_closes_slow_clients(
    tiny_index: Path, settings: Settings, tmp_path: Path
) -> None:
    """``qa serve`` (fake model) with QA_HEADER_TIMEOUT_S=1: its protocol is the one above."""
    env = qa_env(QA_HEADER_TIMEOUT_S="1", QA_CHUNK_SIZE="120", QA_CHUNK_OVERLAP="30")
    src = Path(settings.sources_dir)
    with serving(tiny_index, src, tmp_path, fake=True, env=env) as served:
        half = [connect(served.url) for _ in range(20)]
        try:
            for sock in half:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            for sock in half:
                assert parse(_closed_within(sock, BOUND_S))[0] == 408
        finally:
            for sock in half:
                sock.close()
        assert_json_refusal(
            exchange(served.url, b"GET /a b c HTTP/1.1\r\n\r\n"), 400, "bad_request"
        )
