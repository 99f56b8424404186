"""Helpers for the browser tests: a real `qa serve` process, tiny static sites, Chromium.

Nothing here mocks the service: the server is the CLI started as a subprocess with the real
model, the pages are served over HTTP from other localhost ports (other origins), and the
browser is the system Chromium driven by Playwright.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

CHROMIUM = os.environ.get("QA_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# A file whose text is HTML that would run if anything rendered it as HTML.
HOSTILE_PATH = "usikker/fiendtlig fil æøå.txt"
HOSTILE_TEXT = (
    "Fiendtlig testfil <script>window.__pwned=1</script>\n"
    "\n"
    "Denne filen prøver å kjøre kode i nettleseren: "
    '<img src=x onerror="window.__pwned=1"> og <b>fet skrift</b> skal vises som vanlig tekst.\n'
    "Sikkerhetstesten gjelder skadelig markering i kildetekster, og "
    '<a href="javascript:window.__pwned=1">lenker</a> skal heller ikke virke.\n'
)


def chromium_available() -> bool:
    return Path(CHROMIUM).exists()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_sources(folder: Path, seeds: Path) -> Path:
    """The seed documents plus the hostile file (in a sub-folder, with spaces and æøå)."""
    folder.mkdir(parents=True, exist_ok=True)
    for txt in sorted(seeds.glob("*.txt")):
        shutil.copy(txt, folder / txt.name)
    hostile = folder / HOSTILE_PATH
    hostile.parent.mkdir(parents=True, exist_ok=True)
    hostile.write_text(HOSTILE_TEXT, encoding="utf-8")
    return folder


@dataclass
class QaServer:
    """A running `qa serve`."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""


@contextlib.contextmanager
def run_qa_server(
    workdir: Path,
    sources: Path,
    cors_origins: list[str],
    timeout_s: float = 900.0,
    extra_env: dict[str, str] | None = None,
) -> Iterator[QaServer]:
    """Start `python -m qa.cli serve` on a free port; yield once /health says 200; stop it."""
    port = free_port()
    index = workdir / "index"
    log = workdir / "qa-serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(
        {
            "QA_CORS_ORIGINS": ",".join(cors_origins),
            "QA_RELOAD_INTERVAL_S": "60",
            "PYTHONUNBUFFERED": "1",
        }
    )
    # The model cache is shared with the user's (converting the model again is slow).
    if "QA_CACHE_DIR" in os.environ:
        env["QA_CACHE_DIR"] = os.environ["QA_CACHE_DIR"]
    env.update(extra_env or {})
    cmd = [
        sys.executable, "-m", "qa.cli", "serve",
        "--index", str(index), "--sources", str(sources),
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    with log.open("wb") as out:
        # cwd: the work dir, so no .env of the developer's leaks into the settings.
        process = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    server = QaServer(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                code = process.returncode
                raise RuntimeError(f"qa serve exited with {code}:\n{server.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                late = f"qa serve not healthy after {timeout_s:.0f}s"
                raise RuntimeError(f"{late}:\n{server.log_tail()}")
            time.sleep(0.5)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


class StaticSite:
    """A tiny web server on 127.0.0.1:<port> serving fixed pages (another browser origin)."""

    def __init__(self, pages: dict[str, str], port: int | None = None) -> None:
        self.pages = pages
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                body = site.pages.get(path)
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port or 0), Handler)
        self.port = int(self.httpd.server_address[1])
        self.origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> StaticSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def embedding_page(api_url: str, title: str, attrs: str = "") -> str:
    """An intranet-like page on another origin that embeds the widget with one script tag."""
    return f"""<!doctype html>
<html lang="nb">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title}</title>
  <style>
    body {{ font: 17px/1.5 Georgia, serif; margin: 0; padding: 24px; background: #fff; }}
    main {{ max-width: 720px; margin: 0 auto; }}
    #other {{ display: block; margin-bottom: 16px; font-size: 16px; padding: 6px; }}
  </style>
  <script type="module" src="{api_url}/widget.js"></script>
</head>
<body>
  <main>
    <h1>{title}</h1>
    <label>Annet felt <input id="other" type="text"></label>
    <qa-search endpoint="{api_url}" {attrs}></qa-search>
    <p>Tekst under søket.</p>
  </main>
</body>
</html>
"""
