"""Who is asking: a request turned into a ``Caller`` per ``QA_AUTH``, and the client address.

``none``: everyone is anonymous (sees files whose groups hold ``*``). ``header``: a signed-in
user and groups from a reverse proxy, believed only when the socket peer is one of
``QA_TRUSTED_PROXIES``; from anyone else the headers are ignored. ``keys``: ``X-API-Key``
looked up by its sha256 in ``QA_KEYS_FILE``; ``QA_API_KEY`` stays a key with the groups
``*``. Forwarded client addresses count (rate limit, access log) only from trusted proxies
and only when they are IP addresses, so no local process can pick its own identity.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from qa.access import ANONYMOUS, Caller
from qa.access.networks import Network, parse_networks
from qa.api.asgi import HttpMiddleware
from qa.api.errors import ApiError
from qa.config import Settings

_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="A key of QA_KEYS_FILE, or QA_API_KEY."
)
_bearer = HTTPBearer(auto_error=False, description="Alternative: Authorization: Bearer <key>.")

_KEY_LINE = re.compile(r"^([^:\s][^:]*?)\s*:\s*([0-9a-fA-F]{64})\s*:\s*(.*)$")
_MAX_GROUPS = 64
#: The scope key under which the socket peer is kept once a proxy's address replaced it.
PEER = "qa.peer"


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def is_trusted(host: str | None, networks: tuple[Network, ...]) -> bool:
    """True when ``host`` (a socket peer) is an address inside one of ``networks``."""
    ip = _ip(host) if host else None
    return ip is not None and any(ip in net for net in networks)


def _forwarded_for(value: str) -> list[str]:
    """The ``for=`` addresses of a ``Forwarded`` header (RFC 7239), quotes, brackets and
    ports removed."""
    out = []
    for element in value.split(","):
        for pair in element.split(";"):
            name, _, raw = pair.strip().partition("=")
            if name.strip().lower() == "for":
                addr = raw.strip().strip('"')
                if addr.startswith("["):
                    addr = addr[1:].partition("]")[0]
                elif addr.count(":") == 1:
                    addr = addr.partition(":")[0]
                out.append(addr)
    return out


def forwarded_client(headers: Headers, networks: tuple[Network, ...]) -> str | None:
    """The client a trusted proxy forwarded for: the last hop that is not itself a trusted
    proxy (what the client wrote further left is theirs to forge); None when that hop is
    not a valid IP address."""
    hops = [h.strip() for v in headers.getlist("x-forwarded-for") for h in v.split(",")]
    if not hops:
        hops = [h for v in headers.getlist("forwarded") for h in _forwarded_for(v)]
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            return None
        if not any(ip in net for net in networks):
            return str(ip)
    return None


class TrustedProxyMiddleware(HttpMiddleware):
    """Outermost: from a trusted proxy, the forwarded client becomes ``scope["client"]``
    (rate limit, access log); the socket peer is kept under ``PEER`` for ``header`` auth."""

    def __init__(self, app: ASGIApp, networks: tuple[Network, ...]) -> None:
        super().__init__(app)
        self.networks = networks

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        peer = client[0] if client else None
        scope[PEER] = peer
        if self.networks and is_trusted(peer, self.networks):
            forwarded = forwarded_client(Headers(scope=scope), self.networks)
            if forwarded is not None:
                scope["client"] = (forwarded, 0)
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class ApiKey:
    """One line of the keys file: who holds the key, its sha256, their groups."""

    name: str
    digest: bytes
    groups: frozenset[str]


class KeysFileError(ValueError):
    """A keys file that cannot be used; the message names the file and line."""


def load_keys(path: Path) -> tuple[ApiKey, ...]:
    """Parse ``name: sha256-hex: group,group`` lines (``#`` comments and blank lines allowed)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeysFileError(f"cannot read the keys file {path}: {exc}") from exc
    keys: list[ApiKey] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        match = _KEY_LINE.match(text)
        where = f"{path}, line {number}"
        if match is None:
            raise KeysFileError(f"{where}: expected `name: <64 hex digits of sha256>: groups`")
        name, digest, groups = match.group(1), bytes.fromhex(match.group(2)), match.group(3)
        if any(k.name == name for k in keys) or any(k.digest == digest for k in keys):
            raise KeysFileError(f"{where}: the name or key of {name!r} is given twice")
        keys.append(ApiKey(name, digest, split_groups(groups)))
    return tuple(keys)


def split_groups(value: str) -> frozenset[str]:
    """``"hr, ledelse"`` → ``{"hr", "ledelse"}``; empty names dropped, at most 64."""
    return frozenset([g.strip() for g in value.split(",") if g.strip()][:_MAX_GROUPS])


def _raw(value: str) -> bytes:
    """The header's bytes (Starlette decodes them as Latin-1)."""
    return value.encode("latin-1", "replace")


class Identity:
    """Resolves the Caller of a request; built once per app from its Settings."""

    def __init__(self, settings: Settings) -> None:
        self.mode = settings.auth
        self.networks = parse_networks(settings.trusted_proxies)
        self.user_header, self.groups_header = settings.user_header, settings.groups_header
        self.api_key = settings.api_key.get_secret_value() if settings.api_key else None
        self.keys = load_keys(settings.keys_file) if settings.keys_file else ()

    @property
    def needs_key(self) -> bool:
        return self.mode == "keys" or self.api_key is not None

    def caller(self, request: Request, given: str | None) -> Caller:
        """The Caller, or 401 when a key is required and ``given`` matches none."""
        key_caller = self._by_key(given) if self.needs_key else None
        if self.needs_key and key_caller is None:
            raise ApiError(
                401,
                "unauthorized",
                "A valid API key is required (X-API-Key header or Authorization: Bearer).",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if self.mode == "keys" and key_caller is not None:
            return key_caller
        if self.mode == "header":
            return self._by_header(request)
        return ANONYMOUS

    def _by_key(self, given: str | None) -> Caller | None:
        if given is None:
            return None
        raw = _raw(given)
        digest = hashlib.sha256(raw).digest()
        found = None
        for key in self.keys:  # every entry compared: the time does not tell which matched
            if hmac.compare_digest(digest, key.digest):
                found = Caller(key.name, key.groups)
        if self.api_key is not None and hmac.compare_digest(raw, self.api_key.encode("utf-8")):
            found = found or Caller(None, frozenset({"*"}))
        return found

    def _by_header(self, request: Request) -> Caller:
        peer = request.scope.get(PEER, request.client.host if request.client else None)
        if not is_trusted(peer, self.networks):
            return ANONYMOUS  # anyone can send the headers; only the proxy is believed
        user = request.headers.get(self.user_header, "").strip() or None
        groups = split_groups(request.headers.get(self.groups_header, ""))
        return Caller(user, groups)


def given_key(request: Request) -> str | None:
    """The key in ``X-API-Key``, else in ``Authorization: Bearer``; None when neither."""
    given = request.headers.get("x-api-key")
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if given is None and scheme.lower() == "bearer" and credentials.strip():
        given = credentials.strip()
    return given


def get_caller(request: Request) -> Caller:
    """The dependency of every route that serves indexed data (401 without a needed key)."""
    identity: Identity = request.app.state.identity
    return identity.caller(request, given_key(request))


def caller_or_anonymous(request: Request) -> Caller:
    """For open routes (/health): the caller when one can be told, else anonymous."""
    try:
        return get_caller(request)
    except ApiError:
        return ANONYMOUS


def document_key(
    x_api_key: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Added to the protected routes only when a key is needed: puts the key schemes in the
    OpenAPI schema ("Authorize" in /docs); ``get_caller`` does the checking."""


CallerDep = Annotated[Caller, Depends(get_caller)]
OpenCallerDep = Annotated[Caller, Depends(caller_or_anonymous)]
