"""Helpers for the browser tests: a real `qa serve` process, tiny static sites, Chromium.

Nothing here mocks the service: the server is the CLI started as a subprocess with the real
model, the pages are served over HTTP from other localhost ports (other origins), and the
browser is the system Chromium driven by Playwright.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support.server import Server, qa_env, qa_serve

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


def make_sources(folder: Path, seeds: Path) -> Path:
    """The seed documents plus the hostile file (in a sub-folder, with spaces and æøå)."""
    folder.mkdir(parents=True, exist_ok=True)
    for txt in sorted(seeds.glob("*.txt")):
        shutil.copy(txt, folder / txt.name)
    hostile = folder / HOSTILE_PATH
    hostile.parent.mkdir(parents=True, exist_ok=True)
    hostile.write_text(HOSTILE_TEXT, encoding="utf-8")
    return folder


@contextlib.contextmanager
def run_qa_server(
    workdir: Path,
    sources: Path,
    cors_origins: list[str],
    timeout_s: float = 900.0,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """`qa serve` (real model) of ``workdir/index``, allowing ``cors_origins``; yields once
    /health says 200, stops it after. cwd is ``workdir``, so no developer's .env leaks in."""
    env = qa_env(QA_CORS_ORIGINS=",".join(cors_origins), QA_RELOAD_INTERVAL_S="60")
    env.update(extra_env or {})
    log = workdir / "qa-serve.log"
    with qa_serve(
        workdir / "index", sources, env=env, cwd=workdir, log=log, timeout_s=timeout_s
    ) as server:
        yield server


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
