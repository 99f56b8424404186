"""``GET /sources/{path}/original``: the original file of an indexed source.

The file is read again from the sources folder, and served only while it still has the
sha256 the index recorded: the bytes then are the ones the citations were cut from. Every
folder on the way is opened without following links (``openat`` with ``O_NOFOLLOW``), the
file must be regular and within ``QA_MAX_FILE_BYTES``, like the scanner reads it.

Nothing in an original may run on this origin (an HTML or SVG file would be stored XSS):
every format but PDF is an attachment under ``Content-Security-Policy: sandbox``; a PDF is
shown inline (so ``#page=3`` opens the browser's viewer at that page) under a policy that
allows no script. The Content-Type comes from the format the index recorded, never sniffed.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import stat
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from qa.api.deps import RetrieverDep, SettingsDep
from qa.api.errors import ApiError
from qa.api.identity import CallerDep
from qa.api.routes import get_source, not_found, safe_source_path
from qa.api.schemas import error_responses

log = logging.getLogger("qa.api")
router = APIRouter()

#: Content-Type per format; a format this table lacks is served as opaque bytes.
MEDIA_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "odt": "application/vnd.oasis.opendocument.text",
    "html": "text/html",
    "md": "text/markdown",
    "txt": "text/plain",
}
_TEXT_FORMATS = {"html", "md", "txt"}
_CHARSET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")

#: Chrome's PDF viewer is an <embed> of the document itself in a page with inline styles,
#: so a PDF needs object-src 'self' and inline styles; no script runs on this origin.
PDF_CSP = (
    "default-src 'none'; script-src 'none'; object-src 'self'; style-src 'unsafe-inline'; "
    "img-src 'self' data: blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
#: Anything else: downloaded, and even if rendered, an opaque origin with no script.
ATTACHMENT_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class OriginalProblem(Exception):
    """Why the original cannot be served: an HTTP status, a code and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _gone() -> OriginalProblem:
    message = "The original file is no longer in the sources folder; re-index."
    return OriginalProblem(404, "original_missing", message)


def _changed() -> OriginalProblem:
    return OriginalProblem(
        409, "original_changed", "The file changed since it was indexed; re-index."
    )


def _open_beneath(root: Path, rel: str) -> int:
    """A descriptor of ``root/rel`` opened one component at a time, never through a link."""
    parts = rel.split("/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = inner
        return os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)


def read_original(root: Path, rel: str, sha256: str, max_bytes: int) -> bytes:
    """The bytes of ``root/rel`` if they still hash to ``sha256``; OriginalProblem if not."""
    try:
        fd = _open_beneath(root, rel)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            raise _gone() from exc  # removed, or a link now stands where the file was
        log.warning("cannot open the original of %r: %s", rel, exc.strerror or exc)
        raise OriginalProblem(
            403, "original_unreadable", "The server cannot read the original file."
        ) from exc
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise _gone()
        if st.st_size > max_bytes:
            raise _changed()  # it was within the limit when it was indexed
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes or hashlib.sha256(data).hexdigest() != sha256:
        raise _changed()
    return data


def _disposition(kind: str, path: str) -> str:
    """``inline``/``attachment`` with the file name: ASCII fallback plus RFC 5987 UTF-8."""
    name = path.rsplit("/", 1)[-1]
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", name) or "original"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def original_response(data: bytes, path: str, fmt: str, encoding: str, version: str) -> Response:
    """The bytes with the headers that keep them from running on this origin."""
    media_type = MEDIA_TYPES.get(fmt, "application/octet-stream")
    if fmt in _TEXT_FORMATS and _CHARSET.match(encoding):
        media_type += f"; charset={encoding}"
    pdf = fmt == "pdf"
    headers = {
        "Content-Disposition": _disposition("inline" if pdf else "attachment", path),
        "Content-Security-Policy": PDF_CSP if pdf else ATTACHMENT_CSP,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "SAMEORIGIN" if pdf else "DENY",
        "Cross-Origin-Resource-Policy": "same-origin",
        "X-Index-Version": version,
    }
    return Response(data, media_type=media_type, headers=headers)


_ORIGINAL_200: dict[int | str, dict] = {
    200: {
        "description": "The original file: a PDF inline, any other format as an attachment.",
        "content": {
            t: {"schema": {"type": "string", "format": "binary"}} for t in MEDIA_TYPES.values()
        },
    }
}


@router.get(
    "/sources/{path:path}/original",
    tags=["sources"],
    response_class=Response,
    response_model=None,
    responses={**_ORIGINAL_200, **error_responses(400, 401, 403, 404, 409, 422, 429, 503)},
    summary="Get the original file of a source",
)
async def get_original(
    path: str,
    retriever: RetrieverDep,
    settings: SettingsDep,
    caller: CallerDep,
    version: Annotated[
        str | None,
        Query(description="Fail with 409 unless this index version is being served."),
    ] = None,
    format: Annotated[Literal["text", "json"], Query(include_in_schema=False)] = "text",
) -> Response:
    """The file as it was indexed (409 once it has changed on disk: re-index). PDFs open in
    the browser (``#page=N`` works); other formats download and never run here."""
    safe_source_path(path)
    sources = retriever.manifest["sources"]
    if not retriever.can_see(path, caller):
        sources = {}  # a hidden file is treated exactly like a missing one
    if path not in sources and f"{path}/original" in retriever.manifest["sources"]:
        # A source really named ".../original": its text, as GET /sources/{path} gives it.
        text = await get_source(f"{path}/original", retriever, caller, format, version)
        return JSONResponse(text.model_dump()) if isinstance(text, BaseModel) else text
    if version is not None and version != retriever.version:
        message = f"The index is now version {retriever.version}; search again."
        raise ApiError(409, "index_changed", message)
    entry = sources.get(path)
    if entry is None:
        raise not_found()
    root = Path(settings.sources_dir)
    try:
        data = await run_in_threadpool(
            read_original, root, path, entry["sha256"], settings.max_file_bytes
        )
    except OriginalProblem as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    fmt = str(entry.get("format", "txt"))
    return original_response(data, path, fmt, str(entry.get("encoding", "")), retriever.version)
