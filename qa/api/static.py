"""The widget script and the two HTML pages, served from the package's static folder.

Only three fixed file names are served (no user input reaches a path), each with its own
content type and, for the pages, a Content-Security-Policy that allows scripts from this
origin only. They need no API key: they carry no indexed data.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qa.api.errors import ApiError
from qa.api.security import page_headers

router = APIRouter(include_in_schema=False)

STATIC_DIR = resources.files("qa") / "static"
# Re-validate on every load so a redeploy shows at once; the files are small.
_CACHE = {"Cache-Control": "no-cache"}


def _read(name: str) -> bytes:
    """Bytes of ``qa/static/<name>``; a 404 JSON when the file is absent."""
    try:
        return (STATIC_DIR / name).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise ApiError(404, "not_found", f"{name} is not installed.") from exc


def _page(name: str, frame_ancestors: list[str] | None = None) -> Response:
    headers = {**_CACHE, **page_headers(frame_ancestors)}
    return Response(_read(name), media_type="text/html; charset=utf-8", headers=headers)


@router.get("/widget.js")
async def widget() -> Response:
    """The embeddable search widget (loaded cross-origin by the sites that embed it).

    A module script from another origin is fetched under CORS, so this public, static,
    credential-free file allows every origin; the data endpoints keep the allow-list.
    """
    headers = {
        **_CACHE,
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Access-Control-Allow-Origin": "*",
    }
    return Response(
        _read("widget.js"), media_type="text/javascript; charset=utf-8", headers=headers
    )


@router.get("/")
async def demo() -> Response:
    """A demo page with the widget on it."""
    return _page("demo.html")


@router.get("/view")
async def view(request: Request) -> Response:
    """Shows a source text with a passage marked; the widget's allowed origins may frame it."""
    return _page("view.html", list(request.app.state.settings.cors_origins))
