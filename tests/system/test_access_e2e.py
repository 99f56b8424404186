"""End to end: a real ``qa serve`` (the CLI in a subprocess, the tests' fake model) over a
sources folder with ``public/``, ``hr/``, ``ledelse/`` and an ``access.toml``.

For every caller (anonymous, hr, ledelse, both, a spoofed header from an untrusted address,
a wrong key) over real sockets: no search result, source list entry, source text or
original from a folder it may not see; the allowed caller finds the answer at rank 1 with
``k`` results. Header mode trusts 127.0.0.1 only; 127.0.0.2 is an untrusted local process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.access_corpus import FILES, QUESTIONS, visible, write_access_sources
from tests.support.procs import index_args, no_traceback, qa_env, run_qa, serving

pytestmark = pytest.mark.slow

KEYS = {"hr": "hr-key", "ledelse": "leder-key", "hr,ledelse": "begge-key"}
K = 3


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(sources, index, keys file), indexed once with ``qa index``."""
    root = tmp_path_factory.mktemp("access")
    sources = write_access_sources(root / "kilder")
    index = root / "index"
    done = run_qa(index_args(sources, index), root, fake=True)
    assert done.returncode == 0, done.stderr
    no_traceback(done.stderr)
    keys = root / "keys.txt"
    keys.write_text(
        "# name: sha256: groups\n"
        + "".join(
            f"k{i}: {hashlib.sha256(k.encode()).hexdigest()}: {g}\n"
            for i, (g, k) in enumerate(KEYS.items())
        ),
        encoding="utf-8",
    )
    return sources, index, keys


@contextmanager
def served(corpus: tuple[Path, Path, Path], **env: str) -> Iterator[str]:
    sources, index, _ = corpus
    environment = qa_env(QA_RATE_LIMIT="off", **env)
    with serving(index, sources, index.parent, fake=True, env=environment) as server:
        yield server.url


def http(url: str, address: str = "127.0.0.1", **headers: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=url, transport=transport, headers=headers, timeout=30)


def check(client: httpx.Client, allowed: set[str], status: int = 200) -> None:
    """Nothing hidden by any route; what is allowed answers at rank 1 with k results."""
    listing = client.get("/sources")
    assert listing.status_code == status
    if status == 200:
        assert {s["path"] for s in listing.json()["sources"]} == allowed
    for question, answer in QUESTIONS.values():
        for r in (
            client.get("/search", params={"q": question, "k": K}),
            client.post("/search", json={"query": question, "k": K}),
        ):
            assert r.status_code == status, r.text
            if status != 200:
                continue
            results: list[dict[str, Any]] = r.json()["results"]
            assert {h["source"] for h in results} <= allowed
            if answer in allowed:
                assert results[0]["source"] == answer and len(results) == K
    missing = client.get("/sources/hr/finnes-ikke.txt")
    for path in FILES:
        for suffix in ("", "/original"):
            r = client.get(f"/sources/{path}{suffix}")
            if path in allowed:
                assert r.status_code == 200
            else:
                assert (r.status_code, r.json()) == (missing.status_code, missing.json())
                assert max(FILES[path].split(), key=len) not in r.text


def test_header_mode_callers(corpus: tuple[Path, Path, Path]) -> None:
    with served(corpus, QA_AUTH="header", QA_TRUSTED_PROXIES="127.0.0.1") as url:
        check(http(url), visible(set()))  # anonymous: through the proxy, not signed in
        for groups in (["hr"], ["ledelse"], ["hr", "ledelse"]):
            proxied = http(url, **{"X-QA-User": "kari", "X-QA-Groups": ",".join(groups)})
            check(proxied, visible(set(groups)))
        spoofed = http(url, "127.0.0.2", **{"X-QA-User": "kari", "X-QA-Groups": "hr,ledelse"})
        check(spoofed, visible(set()))
        forwarded = {"X-Forwarded-For": "127.0.0.1", "X-QA-Groups": "hr,ledelse"}
        check(http(url, "127.0.0.2", **forwarded), visible(set()))


@pytest.fixture(scope="module")
def keyed(corpus: tuple[Path, Path, Path]) -> Iterator[str]:
    """A server in keys mode."""
    with served(corpus, QA_AUTH="keys", QA_KEYS_FILE=str(corpus[2])) as url:
        yield url


def test_keys_mode_callers(keyed: str) -> None:
    for groups, key in KEYS.items():
        check(http(keyed, **{"X-API-Key": key}), visible(set(groups.split(","))))
    check(http(keyed, **{"X-API-Key": "feil"}), set(), status=401)
    check(http(keyed), set(), status=401)
    health = http(keyed).get("/health").json()
    assert health["passages"] == len(visible(set()))  # one passage per short file


def test_bad_keys_file_refused_at_start(corpus: tuple[Path, Path, Path], tmp_path: Path) -> None:
    sources, index, _ = corpus
    bad = tmp_path / "keys.txt"
    bad.write_text("kari: not-a-hash: hr\n", encoding="utf-8")
    env = qa_env(QA_AUTH="keys", QA_KEYS_FILE=str(bad))
    done = run_qa(
        ["serve", "--index", str(index), "--sources", str(sources)],
        tmp_path,
        fake=True,
        env=env,
        timeout=60,
    )
    assert done.returncode != 0
    assert "keys.txt, line 1" in done.stderr
    no_traceback(done.stderr)


# --- the widget and the viewer in a browser ------------------------------------------------


@pytest.fixture
def page(keyed: str) -> Iterator[Any]:
    playwright = pytest.importorskip("playwright.sync_api")
    from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, chromium_available

    if not chromium_available():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        context.set_default_timeout(20_000)
        yield context.new_page()
        browser.close()


def test_widget_sends_its_filters(keyed: str, page: Any) -> None:
    page.goto(keyed + "/")
    widget = page.locator("qa-search")
    widget.evaluate(
        "(el, key) => { el.setAttribute('api-key', key); "
        "el.setAttribute('filter-source', 'ledelse/**, hr/*.txt'); "
        "el.setAttribute('filter-format', 'md'); }",
        KEYS["hr,ledelse"],
    )
    with page.expect_request(lambda r: "/search?" in r.url) as request:
        page.locator("qa-search input[role=combobox]").fill("Avdeling Flamingo Bergen")
    query = request.value.url.split("?", 1)[1]
    assert "source=ledelse%2F**&source=hr%2F*.txt&format=md" in query
    option = page.locator("qa-search [role=option]")
    option.first.wait_for()
    assert option.count() == 1  # only the Markdown file under ledelse/


def test_viewer_refuses_dot_segments_and_keeps_its_key(keyed: str, page: Any) -> None:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    page.goto(keyed + "/view?source=../sources&start=0&end=5")
    page.locator("qa-source .error").wait_for()
    fetched = [u for u in seen if urlsplit(u).path.startswith("/sources")]
    assert not fetched  # nothing fetched, /sources itself least of all
    page.evaluate("key => sessionStorage.setItem('qa-api-key', key)", KEYS["hr"])
    with page.expect_request(lambda r: "/sources/hr/lonn.txt" in r.url) as request:
        page.goto(keyed + "/view?source=hr/lonn.txt&start=0&end=5#key=" + KEYS["ledelse"])
    assert request.value.headers["x-api-key"] == KEYS["hr"]  # the link's key was ignored
    page.locator("qa-source mark#passage").wait_for()
