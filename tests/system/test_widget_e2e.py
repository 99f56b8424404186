"""End to end: the <qa-search> widget and the /view page in a real headless Chromium.

A real `qa serve` (the CLI, as a subprocess, with the real model) serves a copy of the seed
documents plus a hostile file; pages on two other localhost origins embed the widget, one of
them allowed by QA_CORS_ORIGINS. Playwright (sync API) drives the system Chromium.

Run: pytest tests/system/test_widget_e2e.py  (a minute or two; the first run converts the model)
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    HOSTILE_PATH,
    HOSTILE_TEXT,
    StaticSite,
    chromium_available,
    embedding_page,
    make_sources,
    run_qa_server,
)
from tests.support.documents import PAGE_PHRASES, SOFFICE
from tests.support.formats import PDF, report_pdf
from tests.support.server import Server

# A search embeds the question with the real model: on a busy 2-core machine (CI running
# everything else) that can take longer than Playwright's 5 s default for assertions.
expect.set_options(timeout=20_000)

ROOT = Path(__file__).resolve().parents[2]
Sites = tuple[StaticSite, StaticSite]
SCREENSHOT = ROOT / "docs" / "img" / "widget.png"

NB_QUESTION = "Hvem ledet konsultasjonsmøtet?"
EN_QUESTION = "Who chaired the consultation meeting?"
MEETING_DOC = "003_257cbb8daa8430e4.txt"
HOSTILE_QUESTION = "Sikkerhetstesten skadelig markering i kildetekster"
HOSTILE_TITLE = "Fiendtlig testfil <script>window.__pwned=1</script>"
FOCUSED_ROLE = "document.querySelector('qa-search').shadowRoot.activeElement.getAttribute('role')"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not chromium_available(), reason=f"no Chromium at {CHROMIUM}"),
]


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sites() -> Iterator[Sites]:
    """Two other origins: the first is on the API's CORS allow-list, the second is not.

    Their pages need the API's URL, which is known only later: they are filled in by `api`.
    """
    with StaticSite({}) as allowed, StaticSite({}) as denied:
        yield allowed, denied


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, sites: Sites) -> Iterator[Server]:
    allowed, denied = sites
    work = tmp_path_factory.mktemp("widget-e2e")
    sources = make_sources(work / "sources", ROOT / "sources")
    if SOFFICE:  # a PDF, for page citations (one LibreOffice run)
        report_pdf(sources / PDF, work / "pdf")
    with run_qa_server(work, sources, cors_origins=[allowed.origin]) as server:
        allowed.pages["/"] = embedding_page(server.url, "Tillatt intranett")
        allowed.pages["/en"] = embedding_page(server.url, "Allowed intranet", 'lang="en" k="3"')
        denied.pages["/"] = embedding_page(server.url, "Ikke tillatt intranett")
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1100, "height": 900}, locale="nb-NO")
    ctx.set_default_timeout(20_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    assert not errors, f"JavaScript errors on the page: {errors}"


# --- helpers ----------------------------------------------------------------------------


def box(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("qa-search input[role=combobox]")


def options(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("qa-search [role=option]")


def ask(page: Page, question: str) -> None:
    """Type a question the way a person does and wait for the results."""
    box(page).click()
    box(page).fill("")
    page.keyboard.type(question, delay=15)
    expect(options(page).first).to_be_visible()
    expect(page.locator("qa-search [role=listbox]")).to_have_attribute("aria-busy", "false")


def cited(option) -> tuple[str, int, int]:  # type: ignore[no-untyped-def]
    """(source, start, end) of a result option."""
    get = option.get_attribute
    return get("data-source") or "", int(get("data-start") or -1), int(get("data-end") or -1)


def source_json(api: Server, path: str) -> dict:
    r = httpx.get(f"{api.url}/sources/{path}", params={"format": "json"}, timeout=10)
    r.raise_for_status()
    return r.json()


def api_search(api: Server, q: str, k: int = 5) -> list[dict]:
    r = httpx.get(f"{api.url}/search", params={"q": q, "k": k}, timeout=60)
    r.raise_for_status()
    return r.json()["results"]


def not_pwned(page: Page) -> None:
    assert page.evaluate("typeof window.__pwned") == "undefined"


def check_view_page(view: Page, api: Server, source: str, start: int, end: int) -> str:
    """The view page shows the source as text with exactly text[start:end] marked, in view."""
    mark = view.locator("qa-source mark#passage")
    expect(mark).to_be_visible()
    expected = source_json(api, source)["text"][start:end]  # Python slices code points
    assert mark.text_content() == expected
    whole = view.locator("qa-source pre").text_content()
    assert whole == source_json(api, source)["text"]
    expect(mark).to_be_in_viewport()
    not_pwned(view)
    return expected


def follow_citation(
    context: BrowserContext, page: Page, option_index: int, keyboard: bool = False
) -> Page:
    """Open the citation of one result; it opens in a new tab."""
    with context.expect_page() as new_page:
        if keyboard:
            page.keyboard.press("Enter")
        else:
            options(page).nth(option_index).locator("a.cite").click()
    view = new_page.value
    view.wait_for_load_state()
    return view


# --- tests ------------------------------------------------------------------------------


def test_norwegian_question_shows_cited_passages(
    api: Server, context: BrowserContext, page: Page
) -> None:
    page.goto(api.url + "/")
    expect(box(page)).to_have_attribute("placeholder", "Søk i dokumentene")
    ask(page, NB_QUESTION)

    # The widget shows what the API answers, in the API's order.
    expected = api_search(api, NB_QUESTION)
    got = [cited(o) for o in options(page).all()]
    assert got == [(r["source"], r["start"], r["end"]) for r in expected]
    assert expected[0]["source"] == MEETING_DOC
    assert "ledet møtet" in expected[0]["text"]

    first = options(page).first
    expect(first.locator(".title")).to_have_text(expected[0]["title"])
    expect(first.locator("a.cite")).to_contain_text(MEETING_DOC)
    lines = f"linje {expected[0]['line_start']}–{expected[0]['line_end']}"
    if expected[0]["line_start"] == expected[0]["line_end"]:
        lines = f"linje {expected[0]['line_start']}"
    expect(first.locator("a.cite")).to_contain_text(lines)
    # The question's words are highlighted with <mark>.
    marks = [m.lower() for m in first.locator("mark").all_text_contents()]
    assert any(m.startswith("konsultasjonsmøte") for m in marks), marks
    assert "ledet" in marks, marks
    # The live region announces the count.
    expect(page.locator("qa-search [role=status]")).to_have_text(f"{len(expected)} treff")

    # The citation opens the source with the passage marked; the mark is the passage.
    view = follow_citation(context, page, 0)
    query = parse_qs(urlsplit(view.url).query)
    assert query["source"] == [MEETING_DOC]
    text = check_view_page(view, api, MEETING_DOC, expected[0]["start"], expected[0]["end"])
    assert text == expected[0]["text"]
    expect(view.locator("qa-source h1")).to_have_text(expected[0]["title"])
    assert view.title().endswith("Kilde")


def test_english_question_and_english_labels(
    api: Server, context: BrowserContext, page: Page, sites: Sites
) -> None:
    allowed, _ = sites
    page.goto(allowed.origin + "/en")
    expect(box(page)).to_have_attribute("placeholder", "Search the documents")
    ask(page, EN_QUESTION)
    expected = api_search(api, EN_QUESTION, k=3)
    expect(options(page)).to_have_count(3)
    assert options(page).first.get_attribute("data-source") == expected[0]["source"] == MEETING_DOC
    expect(page.locator("qa-search [role=status]")).to_have_text("3 results")
    expect(options(page).first.locator("a.cite")).to_contain_text("line")

    view = follow_citation(context, page, 0)
    assert parse_qs(urlsplit(view.url).query)["lang"] == ["en"]
    check_view_page(view, api, MEETING_DOC, expected[0]["start"], expected[0]["end"])
    expect(view.locator("qa-source .kicker")).to_have_text("Source")


def test_keyboard_navigation(
    api: Server, context: BrowserContext, page: Page, sites: Sites
) -> None:
    allowed, _ = sites
    page.goto(allowed.origin + "/")
    combo = box(page)
    expect(combo).to_have_attribute("aria-expanded", "false")

    # "/" typed into another field stays there.
    page.locator("#other").click()
    page.keyboard.type("a/b")
    expect(page.locator("#other")).to_have_value("a/b")
    assert page.evaluate("document.activeElement.id") == "other"

    # "/" elsewhere on the page focuses the search box (and is not typed into it).
    page.locator("h1").click()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.tagName") == "QA-SEARCH"
    assert page.evaluate(FOCUSED_ROLE) == "combobox"
    expect(combo).to_have_value("")

    page.keyboard.type(NB_QUESTION)
    expect(options(page).first).to_be_visible()
    expect(combo).to_have_attribute("aria-expanded", "true")
    listbox = page.locator("qa-search [role=listbox]")
    assert combo.get_attribute("aria-controls") == listbox.get_attribute("id")
    n = options(page).count()
    assert n >= 2
    assert combo.get_attribute("aria-activedescendant") is None

    ids = [o.get_attribute("id") for o in options(page).all()]

    def active() -> str | None:
        return combo.get_attribute("aria-activedescendant")

    page.keyboard.press("ArrowDown")
    assert active() == ids[0]
    expect(options(page).nth(0)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowDown")
    assert active() == ids[1]
    expect(options(page).nth(0)).to_have_attribute("aria-selected", "false")
    expect(options(page).nth(1)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowUp")
    assert active() == ids[0]
    page.keyboard.press("ArrowUp")  # wraps to the last
    assert active() == ids[-1]
    page.keyboard.press("ArrowDown")  # and back to the first
    assert active() == ids[0]
    # The caret stays in the box the whole time.
    assert page.evaluate(FOCUSED_ROLE) == "combobox"

    # Escape closes the list.
    page.keyboard.press("Escape")
    expect(combo).to_have_attribute("aria-expanded", "false")
    expect(listbox).to_be_hidden()
    assert active() is None
    expect(combo).to_have_value(NB_QUESTION)

    # ArrowDown opens it again; Enter opens the active result's citation.
    page.keyboard.press("ArrowDown")
    expect(combo).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("ArrowDown")
    assert active() == ids[1]
    second = options(page).nth(1)
    source, start, end = cited(second)
    view = follow_citation(context, page, 1, keyboard=True)
    assert parse_qs(urlsplit(view.url).query)["source"] == [source]
    check_view_page(view, api, source, start, end)

    # A second Escape (list closed) clears the box.
    page.bring_to_front()
    page.keyboard.press("Escape")
    expect(combo).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Escape")
    expect(combo).to_have_value("")


def test_hostile_source_renders_as_text(api: Server, context: BrowserContext, page: Page) -> None:
    page.goto(api.url + "/")
    ask(page, HOSTILE_QUESTION)
    hostile = page.locator(f'qa-search [role=option][data-source="{HOSTILE_PATH}"]')
    expect(hostile).to_have_count(1)
    # The markup is visible as literal text; no element came out of it.
    expect(hostile.locator(".title")).to_have_text(HOSTILE_TITLE)
    expect(hostile.locator(".text")).to_contain_text('<img src=x onerror="window.__pwned=1">')
    counts = page.evaluate(
        "() => { const r = document.querySelector('qa-search').shadowRoot;"
        " return r.querySelectorAll('script, img, b, iframe, [onerror]').length; }"
    )
    assert counts == 0
    page.wait_for_timeout(300)  # give a would-be onerror handler the time to fire
    not_pwned(page)

    # The citation link is percent-encoded and the view page shows the file as text too.
    href = hostile.locator("a.cite").get_attribute("href") or ""
    assert " " not in href and "<" not in href
    index = [o.get_attribute("data-source") for o in options(page).all()].index(HOSTILE_PATH)
    view = follow_citation(context, page, index)
    _, start, end = cited(hostile)
    check_view_page(view, api, HOSTILE_PATH, start, end)
    pre = view.locator("qa-source pre")
    expect(pre).to_contain_text("<script>window.__pwned=1</script>")
    expect(view.locator("qa-source h1")).to_have_text(HOSTILE_TITLE)
    elements = "script, img, b, a:not(.original)"  # only the viewer's own link to the file
    assert (
        view.evaluate(
            f"document.querySelector('qa-source').shadowRoot.querySelectorAll('{elements}').length"
        )
        == 0
    )
    original = view.locator("qa-source a.original").get_attribute("href") or ""
    assert (
        original == f"{api.url}/sources/usikker/fiendtlig%20fil%20%C3%A6%C3%B8%C3%A5.txt/original"
    )
    view.wait_for_timeout(300)
    not_pwned(view)

    # Opened directly, the whole file is text as well.
    direct = context.new_page()
    direct.goto(f"{api.url}/view?source={HOSTILE_PATH}")
    expect(direct.locator("qa-source pre")).to_have_text(HOSTILE_TEXT)
    not_pwned(direct)


def test_view_page_bad_links(api: Server, page: Page) -> None:
    page.goto(f"{api.url}/view?source=finnes-ikke.txt&start=0&end=5")
    alert = page.locator("qa-source [role=alert]")
    expect(alert).to_contain_text("Noe gikk galt")
    assert (alert.text_content() or "").strip() != "Noe gikk galt"  # the API's message is shown
    page.goto(f"{api.url}/view?source={MEETING_DOC}&start=10&end=999999")
    expect(page.locator("qa-source pre")).to_have_text(source_json(api, MEETING_DOC)["text"])
    expect(page.locator("qa-source [role=note]")).to_be_visible()
    expect(page.locator("qa-source mark")).to_have_count(0)


def test_allowed_origin_gets_results(api: Server, page: Page, sites: Sites) -> None:
    allowed, _ = sites
    page.goto(allowed.origin + "/")
    ask(page, NB_QUESTION)
    assert options(page).first.get_attribute("data-source") == MEETING_DOC
    # Citations point at the API's origin, not the embedding page's.
    href = options(page).first.locator("a.cite").get_attribute("href") or ""
    assert href.startswith(api.url + "/view?")


def test_disallowed_origin_shows_error_state(api: Server, page: Page, sites: Sites) -> None:
    _, denied = sites
    # A module script is fetched with CORS: widget.js itself must be readable from any
    # origin, or a page off the allow-list gets no widget at all instead of its error state.
    r = httpx.get(f"{api.url}/widget.js", headers={"Origin": denied.origin})
    assert r.headers.get("access-control-allow-origin") == "*", (
        "GET /widget.js must send Access-Control-Allow-Origin: * (it is public and static)"
    )
    page.goto(denied.origin + "/")
    box(page).click()
    page.keyboard.type(NB_QUESTION)
    error = page.locator("qa-search .message.error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Noe gikk galt")
    expect(options(page)).to_have_count(0)
    expect(page.locator("qa-search [role=status]")).to_contain_text("Noe gikk galt")


def test_api_key(tmp_path: Path, context: BrowserContext, page: Page, sites: Sites) -> None:
    """With QA_API_KEY set, the widget sends its api-key and the view page gets it too."""
    allowed, _ = sites
    key = "hemmelig-nøkkel"  # not ASCII on purpose: header bytes are UTF-8
    sources = make_sources(tmp_path / "sources", ROOT / "sources")
    with run_qa_server(
        tmp_path, sources, cors_origins=[allowed.origin], extra_env={"QA_API_KEY": key}
    ) as keyed:
        allowed.pages["/uten-nokkel"] = embedding_page(keyed.url, "Uten nøkkel")
        allowed.pages["/med-nokkel"] = embedding_page(keyed.url, "Med nøkkel", f'api-key="{key}"')

        page.goto(allowed.origin + "/uten-nokkel")
        box(page).click()
        page.keyboard.type(NB_QUESTION)
        expect(page.locator("qa-search .message.error .detail")).to_contain_text("API key")

        page.goto(allowed.origin + "/med-nokkel")
        ask(page, NB_QUESTION)
        href = options(page).first.locator("a.cite").get_attribute("href") or ""
        assert "#key=" in href  # in the fragment: never sent to a server
        view = follow_citation(context, page, 0)
        expect(view.locator("qa-source mark#passage")).to_be_visible()
        assert "key" not in view.url  # wiped from the address bar
        view.reload()  # the tab keeps the key
        expect(view.locator("qa-source mark#passage")).to_be_visible()
        # A link cannot send the key: the view fetches the original with it, as a download.
        with view.expect_download() as download:
            view.locator("qa-source a.original").click()
        source = cited(options(page).first)[0]
        assert Path(download.value.path()).read_bytes() == (sources / source).read_bytes()
        assert download.value.suggested_filename == source.rsplit("/", 1)[-1]


def test_api_error_message_is_shown(api: Server, page: Page) -> None:
    page.goto(api.url + "/")
    # An endpoint with a wrong path: the API answers 404 with its JSON error body.
    wrong = api.url + "/finnes-ikke"
    page.locator("qa-search").evaluate("(el, url) => el.setAttribute('endpoint', url)", wrong)
    box(page).click()
    page.keyboard.type(NB_QUESTION)
    error = page.locator("qa-search .message.error")
    expect(error).to_contain_text("Noe gikk galt")
    answer = httpx.get(f"{wrong}/search", params={"q": "x"}).json()
    message = answer["error"]["message"]
    expect(error.locator(".detail")).to_have_text(message)


def test_loading_debounce_stale_requests_and_no_results(api: Server, page: Page) -> None:
    # Record which fetches the page aborts (the widget's AbortController).
    page.add_init_script(
        """(() => {
            window.__aborted = [];
            const original = window.fetch;
            window.fetch = function (input, init) {
                const url = String(input instanceof Request ? input.url : input);
                const signal = init && init.signal;
                if (signal) signal.addEventListener("abort", () => window.__aborted.push(url));
                return original.apply(this, arguments);
            };
        })();"""
    )
    page.goto(api.url + "/")
    searches: list[str] = []
    page.on("request", lambda r: searches.append(r.url) if "/search?" in r.url else None)

    # Typing quickly sends one request, not one per key (debounce).
    ask(page, NB_QUESTION)
    assert len(searches) == 1, searches

    # A slow answer shows the loading state... (the first request is held, later ones get
    # an empty answer)
    held: list = []

    def handler(route) -> None:  # type: ignore[no-untyped-def]
        if not held:
            held.append(route)
            return
        route.fulfill(
            status=200,
            content_type="application/json",
            body='{"query": "x", "language": "nb", "index_version": "v", "results": []}',
        )

    page.route("**/search?*", handler)
    box(page).fill("")
    page.keyboard.type("kulturskolen")
    expect(page.locator("qa-search .message.loading")).to_have_text("Søker…")
    expect(page.locator("qa-search input[role=combobox] ~ .spinner")).to_be_visible()
    for _ in range(100):  # the route handler runs when Playwright gets to it
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1 and "kulturskolen" in held[0].request.url

    # ...and a newer question cancels it. The newer one gets an empty answer: "Ingen treff".
    page.keyboard.type(" i kommunen")
    expect(page.locator("qa-search .message")).to_contain_text("Ingen treff")
    expect(page.locator("qa-search [role=status]")).to_have_text("Ingen treff")
    aborted = page.evaluate("window.__aborted")
    assert any("kulturskolen" in u and "kommunen" not in u for u in aborted), aborted
    expect(page.locator("qa-search input[role=combobox] ~ .spinner")).to_be_hidden()

    # The stale answer arriving late changes nothing.
    for route in held:
        with contextlib.suppress(Exception):  # the page may have given up on it already
            route.continue_()
    page.wait_for_timeout(500)
    expect(page.locator("qa-search .message")).to_contain_text("Ingen treff")
    expect(options(page)).to_have_count(0)


def test_page_css_does_not_reach_the_widget(api: Server, page: Page) -> None:
    page.goto(api.url + "/")
    page.locator("#hostile").check()  # the demo's extra-aggressive global CSS
    assert page.locator("h1").evaluate("e => getComputedStyle(e).fontSize") == "30px"
    ask(page, NB_QUESTION)
    mark = options(page).first.locator("mark[part=mark]").first  # a keyword highlight
    expect(mark).to_be_visible()
    style = mark.evaluate(
        "e => { const s = getComputedStyle(e); return [s.display, s.fontSize, s.textTransform]; }"
    )
    assert style == ["inline", "15px", "none"]
    input_style = box(page).evaluate(
        "e => { const s = getComputedStyle(e); return [s.fontSize, s.color]; }"
    )
    assert input_style[0] == "16px" and input_style[1] != "rgb(255, 0, 0)"
    expect(options(page).first.locator(".title")).to_be_visible()


def test_phone_viewport_has_no_horizontal_scroll(api: Server, browser: Browser) -> None:
    ctx = browser.new_context(
        viewport={"width": 375, "height": 667},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    try:
        page = ctx.new_page()
        page.goto(api.url + "/")
        ask(page, NB_QUESTION)
        page.locator("qa-search").scroll_into_view_if_needed()
        widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], widths
        box_ = page.locator("qa-search").bounding_box()
        assert box_ and box_["x"] >= 0 and box_["x"] + box_["width"] <= 375

        view = ctx.new_page()
        view.goto(options(page).first.locator("a.cite").get_attribute("href") or "")
        expect(view.locator("qa-source mark#passage")).to_be_visible()
        widths = view.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], widths
    finally:
        ctx.close()


def test_screenshot_for_the_docs(api: Server, browser: Browser, sites: Sites) -> None:
    """Saves docs/img/widget.png: the widget with results, as the docs show it."""
    allowed, _ = sites
    ctx = browser.new_context(viewport={"width": 760, "height": 1000}, device_scale_factor=1)
    try:
        page = ctx.new_page()
        page.goto(allowed.origin + "/")
        page.locator("qa-search").evaluate("el => el.setAttribute('k', '3')")
        ask(page, NB_QUESTION)
        page.mouse.move(0, 0)
        page.wait_for_timeout(400)  # fonts, no spinner
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        # The element plus a margin, so the focus ring and the list's shadow are in the picture.
        b = page.locator("qa-search").bounding_box()
        assert b
        m = 16
        clip = {
            "x": b["x"] - m,
            "y": b["y"] - m,
            "width": b["width"] + 2 * m,
            "height": b["height"] + 2 * m,
        }
        png = page.screenshot(path=str(SCREENSHOT), clip=clip, animations="disabled")
        assert len(png) > 10_000
        assert re.search(r"\d+ treff", page.locator("qa-search [role=status]").text_content() or "")
    finally:
        ctx.close()


@pytest.mark.skipif(not SOFFICE, reason="needs LibreOffice (soffice) to make the PDF")
def test_pdf_citation_names_the_page(api: Server, context: BrowserContext, page: Page) -> None:
    """«kulturmelding.pdf, s. N» with the API's page, and the view links the original there."""
    question = "Hvor mange utlån hadde biblioteket i fjor?"
    hit = next(r for r in api_search(api, question) if r["source"] == PDF)
    assert PAGE_PHRASES[1] in " ".join(hit["text"].split())
    page.goto(api.url + "/")
    ask(page, question)
    option = page.locator(f'qa-search [role=option][data-source="{PDF}"]').first
    first, last = hit["page_start"], hit["page_end"]
    label = f"s. {first}" if first == last else f"s. {first}–{last}"
    expect(option.locator("a.cite")).to_have_text(f"kulturmelding.pdf, {label}")
    view = follow_citation(context, page, int(option.get_attribute("data-index") or -1))
    assert parse_qs(urlsplit(view.url).query)["page"] == [str(first)]
    original = view.locator("qa-source a.original")
    expect(original).to_have_text("Åpne originalen")
    href = original.get_attribute("href") or ""
    assert href.endswith(f"/sources/rapporter/kulturmelding.pdf/original#page={first}")
