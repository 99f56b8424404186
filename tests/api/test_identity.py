"""Who is asking: settings that refuse to start (D5, bad proxies, bad keys files), the keys
file, forwarded addresses (D10), and the viewer's path and key handling (D3)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.datastructures import Headers

from qa.api.app import server_options
from qa.api.identity import KeysFileError, forwarded_client, load_keys, parse_networks
from qa.config import Settings
from tests.api.helpers import live_server

WIDGET = Path(__file__).resolve().parents[2] / "qa" / "static" / "widget.js"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def settings_with(**values: Any) -> Settings:
    return Settings(**values, _env_file=None)


# --- D5 and the other settings refused at start ------------------------------------------


@pytest.mark.parametrize("key", ["", "   ", "\t"])
def test_empty_api_key_is_refused(key: str) -> None:
    with pytest.raises(ValidationError, match="QA_API_KEY is empty"):
        settings_with(api_key=key)


def test_header_mode_needs_trusted_proxies() -> None:
    with pytest.raises(ValidationError, match="QA_TRUSTED_PROXIES"):
        settings_with(auth="header")
    s = settings_with(auth="header", trusted_proxies="10.0.0.1, 192.168.0.0/24,::1")
    assert s.trusted_proxies == ["10.0.0.1", "192.168.0.0/24", "::1"]


def test_bad_proxy_entry_is_named() -> None:
    with pytest.raises(ValidationError, match=r"'proxy\.local' is not an IP"):
        settings_with(trusted_proxies="10.0.0.1,proxy.local")


def test_keys_mode_needs_keys() -> None:
    with pytest.raises(ValidationError, match="QA_KEYS_FILE"):
        settings_with(auth="keys")


# --- the keys file ----------------------------------------------------------------------


def test_keys_file_parsed(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(
        f"# who: sha256: groups\n\nkari: {digest('a')}: hr, ledelse\n"
        f"  ola :{digest('b')}:\nbot: {digest('c').upper()}: *\n",
        encoding="utf-8",
    )
    keys = load_keys(path)
    assert [(k.name, sorted(k.groups)) for k in keys] == [
        ("kari", ["hr", "ledelse"]),
        ("ola", []),
        ("bot", ["*"]),
    ]
    assert keys[0].digest == hashlib.sha256(b"a").digest()


@pytest.mark.parametrize(
    "line",
    [
        "kari hr",
        "kari: 1234: hr",
        f": {'0' * 64}: hr",
        f"kari: {'g' * 64}: hr",
        f"kari: {'0' * 63}: hr",
    ],
)
def test_malformed_keys_line_is_named(tmp_path: Path, line: str) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(f"# comment\nok: {digest('x')}: hr\n{line}\n", encoding="utf-8")
    with pytest.raises(KeysFileError, match=r"keys.txt, line 3"):
        load_keys(path)
    with pytest.raises(ValidationError, match=r"keys.txt, line 3"):
        settings_with(auth="keys", keys_file=path)


def test_duplicate_and_missing_keys_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(f"a: {digest('x')}: hr\nb: {digest('x')}: it\n", encoding="utf-8")
    with pytest.raises(KeysFileError, match=r"line 2.*twice"):
        load_keys(path)
    with pytest.raises(ValidationError, match="cannot read the keys file"):
        settings_with(auth="keys", keys_file=tmp_path / "absent.txt")


# --- D10: forwarded addresses -----------------------------------------------------------

PROXIES = parse_networks(["10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Forwarded-For": "198.51.100.9"}, "198.51.100.9"),
        ({"X-Forwarded-For": "203.0.113.5, 198.51.100.9, 10.1.2.3"}, "198.51.100.9"),
        ({"X-Forwarded-For": "<script>"}, None),
        ({"X-Forwarded-For": "198.51.100.9, junk"}, None),
        ({"X-Forwarded-For": "10.0.0.7"}, None),
        ({"Forwarded": 'for="[2001:db8::1]:443";proto=https'}, "2001:db8::1"),
        ({"Forwarded": "for=198.51.100.9:1234"}, "198.51.100.9"),
        ({"Forwarded": "for=unknown"}, None),
        ({}, None),
    ],
)
def test_forwarded_client(headers: dict[str, str], expected: str | None) -> None:
    assert forwarded_client(Headers(headers), PROXIES) == expected


def test_uvicorn_does_not_trust_forwarded_headers_itself() -> None:
    assert server_options(settings_with())["proxy_headers"] is False


def _statuses(url: str, forwarded: list[str]) -> list[int]:
    import httpx

    with httpx.Client(base_url=url, timeout=30) as client:
        return [
            client.get("/search?q=veg", headers={"X-Forwarded-For": f}).status_code
            for f in forwarded
        ]


def test_forwarded_for_from_untrusted_peer_is_ignored(
    tiny_index: Path, settings: Settings, fake_embedder: Any
) -> None:
    """D10: a local process cannot pick a fresh rate-limit identity per request."""
    s = settings.model_copy(update={"rate_limit": "3/minute"})
    with live_server(s, fake_embedder) as url:
        statuses = _statuses(url, ["198.51.100.1", "198.51.100.2", "198.51.100.3", "1.2.3.4"])
    assert statuses == [200, 200, 200, 429]


def test_forwarded_for_from_trusted_proxy_counts_valid_addresses_only(
    tiny_index: Path, settings: Settings, fake_embedder: Any
) -> None:
    s = settings.model_copy(update={"rate_limit": "2/minute", "trusted_proxies": ["127.0.0.1"]})
    with live_server(s, fake_embedder) as url:
        assert _statuses(url, ["198.51.100.1"] * 3) == [200, 200, 429]
        assert _statuses(url, ["198.51.100.2"]) == [200]  # another client behind the proxy
        # not an address: the proxy's own bucket, never "<script>" as an identity
        assert _statuses(url, ["<script>", "<img>", "x"]) == [200, 200, 429]


# --- D3: the viewer -------------------------------------------------------------------------

_NODE_PRELUDE = """
globalThis.HTMLElement = class { hasAttribute() { return false; } getAttribute() { return null; } };
globalThis.customElements = { get: () => true, define() {} };
const stored = new Map(STORED);
globalThis.sessionStorage = {
  getItem: (k) => stored.get(k) ?? null, setItem: (k, v) => stored.set(k, v)
};
globalThis.history = { state: null, replaceState() {} };
globalThis.location = new URL(LOCATION);
const m = await import(WIDGET);
"""


def node(code: str, location: str = "http://h/view", stored: dict[str, str] | None = None) -> Any:
    if shutil.which("node") is None:
        pytest.skip("no node")
    prelude = (
        _NODE_PRELUDE.replace("STORED", json.dumps(list((stored or {}).items())))
        .replace("LOCATION", json.dumps(location))
        .replace("WIDGET", json.dumps(WIDGET.as_uri()))
    )
    script = f"{prelude}\nconsole.log(JSON.stringify(await (async () => {{ {code} }})()));"
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def test_viewer_refuses_dot_segments() -> None:
    paths = ["../sources", "a/../../search", "./a", "a//b", "a\\b", "", "ok/fil.txt", "%2e%2e/x"]
    urls = node(
        f"return {json.dumps(paths)}.map((p) => "
        "{ const u = m.sourceUrl('http://h/api', p); return u && u.href; });"
    )
    assert urls == [None] * 6 + [
        "http://h/api/sources/ok/fil.txt",
        "http://h/api/sources/%252e%252e/x",
    ]


def test_link_key_does_not_replace_the_stored_key() -> None:
    params = "return Object.create(m.QaSource.prototype)._params().key;"
    here = "http://h/view?source=a.txt#key=evil"
    assert node(params, here, {"qa-api-key": "mine"}) == "mine"
    assert node(params, here) == "evil"  # a fresh tab takes the link's key
