"""End to end: the answer span and the feedback buttons of <qa-search>, in a real Chromium.

A real `qa serve` (the CLI with the real model) serves the seed documents; the widget runs
on another origin on its CORS allow-list, so every vote is a real cross-origin POST with a
preflight. The votes cast in the browser are then exported with `qa feedback export`, and
`qa eval` runs on the export as it comes. The viewer is checked for the answer mark too.

Run: pytest tests/system/test_widget_feedback.py  (a minute or two)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.support.browser import (
    CHROMIUM,
    StaticSite,
    chromium_available,
    embedding_page,
    make_sources,
    run_qa_server,
)
from tests.support.procs import qa_env, run_qa
from tests.support.server import Server
from tests.system import test_widget_e2e as e2e
from tests.system.test_widget_e2e import (  # the same helpers as the widget tests
    EN_QUESTION,
    MEETING_DOC,
    NB_QUESTION,
    api_search,
    ask,
    follow_citation,
    options,
    source_json,
)

# The same Chromium, context and page fixtures (the page fails a test on any JS error).
browser, context, page = e2e.browser, e2e.context, e2e.page

expect.set_options(timeout=20_000)

ROOT = Path(__file__).resolve().parents[2]
UNANSWERED = "Hvor mange parkeringsplasser har rådhuset?"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not chromium_available(), reason=f"no Chromium at {CHROMIUM}"),
]


class Served:
    """The server, the page origin that embeds the widget, and the files behind them."""

    def __init__(self, server: Server, site: StaticSite, work: Path, sources: Path) -> None:
        self.server, self.site, self.work, self.sources = server, site, work, sources
        self.env = qa_env(QA_FEEDBACK_DB=str(work / "votes.sqlite3"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("widget-feedback")
    sources = make_sources(work / "sources", ROOT / "sources")
    with StaticSite({}) as site:
        env = {"QA_FEEDBACK_DB": str(work / "votes.sqlite3")}
        with run_qa_server(work, sources, cors_origins=[site.origin], extra_env=env) as server:
            site.pages["/"] = embedding_page(server.url, "Intranett")
            site.pages["/en"] = embedding_page(server.url, "Intranet", 'lang="en"')
            yield Served(server, site, work, sources)


def results(page: Page):  # type: ignore[no-untyped-def]
    """The result items: each holds the option and its row of vote buttons."""
    return page.locator("qa-search li.result")


def is_feedback(vote: str):  # type: ignore[no-untyped-def]
    """A predicate for page.expect_request: the POST /feedback carrying ``vote``."""

    def check(request) -> bool:  # type: ignore[no-untyped-def]
        if request.method != "POST" or not request.url.endswith("/feedback"):
            return False
        return json.loads(request.post_data or "{}").get("vote") == vote

    return check


def answer_text(api: Server, hit: dict) -> str:
    """The source text of a search hit's answer span (Python slices code points)."""
    return source_json(api, hit["source"])["text"][hit["answer_start"] : hit["answer_end"]]


def test_votes_in_the_widget_become_a_gold_file(
    served: Served, context: BrowserContext, page: Page
) -> None:
    api = served.server
    page.goto(served.site.origin + "/")
    ask(page, NB_QUESTION)
    expected = api_search(api, NB_QUESTION)
    first = expected[0]
    assert first["source"] == MEETING_DOC
    assert first["start"] <= first["answer_start"] < first["answer_end"] <= first["end"]

    # The answer span is marked inside the first result, exactly the source's characters,
    # with the question's words still highlighted (inside it or around it).
    option = options(page).first
    answer = option.locator("mark.answer")
    expect(answer).to_have_count(1)
    assert answer.text_content() == answer_text(api, first)
    assert option.locator("mark[part=mark]").count() >= 1
    colours = answer.evaluate(
        "e => { const k = e.getRootNode().querySelector('mark[part=mark]');"
        " return [getComputedStyle(e).backgroundColor, getComputedStyle(k).backgroundColor,"
        " getComputedStyle(e).borderLeftWidth]; }"
    )
    assert colours[0] != colours[1] and colours[2] == "3px", colours

    # 👍 on the first result: a cross-origin POST, then thanks and a locked pair.
    row = results(page).first.locator(".feedback")
    expect(row).to_contain_text("Svarte dette på spørsmålet?")
    with page.expect_response(lambda r: r.url.endswith("/feedback")) as response:
        row.locator("button[data-vote=up]").click()
    assert response.value.status == 201, response.value.text()
    sent = json.loads(response.value.request.post_data or "{}")
    assert sent == {
        "query": NB_QUESTION,
        "index_version": sent["index_version"],
        "source": first["source"],
        "start": first["start"],
        "end": first["end"],
        "vote": "up",
    }
    expect(row.locator(".note")).to_have_text("Takk!")
    expect(row.locator("button[data-vote=up]")).to_have_attribute("aria-pressed", "true")
    expect(row.locator("button[data-vote=down]")).to_have_attribute("aria-pressed", "false")
    for vote in ("up", "down"):
        expect(row.locator(f"button[data-vote={vote}]")).to_have_attribute("aria-disabled", "true")
    # A second click sends nothing more.
    sent_after: list[str] = []
    page.on("request", lambda r: sent_after.append(r.url) if r.url.endswith("/feedback") else None)
    row.locator("button[data-vote=down]").click(force=True)  # aria-disabled: still clickable
    page.wait_for_timeout(300)
    assert sent_after == []

    # Another question: "Ingen av disse svarte".
    ask(page, UNANSWERED)
    none = page.locator("qa-search .none-row")
    expect(results(page).first.locator("button[data-vote=up]")).to_have_attribute(
        "aria-pressed", "false"
    )  # a new list: no votes on it yet
    with page.expect_response(lambda r: r.url.endswith("/feedback")) as response:
        none.locator("button", has_text="Ingen av disse svarte").click()
    assert response.value.status == 201, response.value.text()
    assert json.loads(response.value.request.post_data or "{}")["vote"] == "none"
    expect(none.locator(".note")).to_have_text("Takk!")

    # Opening a citation reports "opened" (keepalive: it survives the navigation).
    hit = api_search(api, UNANSWERED)[0]
    with page.expect_request(is_feedback("opened")) as opened:
        view = follow_citation(context, page, 0)
    assert json.loads(opened.value.post_data or "{}")["source"] == hit["source"]
    # The viewer marks the answer span and scrolls to it.
    query = parse_qs(urlsplit(view.url).query)
    assert query["as"] == [str(hit["answer_start"])] and query["ae"] == [str(hit["answer_end"])]
    mark = view.locator("qa-source mark#answer")
    expect(mark).to_be_visible()
    assert mark.text_content() == answer_text(api, hit)
    expect(mark).to_be_in_viewport()

    # The export holds exactly the voted question and the unanswered one.
    out = served.work / "gold.jsonl"
    done = run_qa(["feedback", "export", "--out", str(out)], cwd=served.work, env=served.env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    answerable = [x for x in lines if x["answerable"]]
    unanswerable = [x for x in lines if not x["answerable"]]
    assert [(x["question"], x["source"]) for x in answerable] == [(NB_QUESTION, MEETING_DOC)]
    assert answerable[0]["answer"] == first["text"]  # the span that was voted: the passage
    assert [x["question"] for x in unanswerable] == [UNANSWERED]
    assert len(lines) == 2, lines

    # qa eval takes the export as it is.
    evaluated = run_qa(
        [
            "eval",
            "--gold",
            str(out),
            "--sources",
            str(served.sources),
            "--out",
            str(served.work / "eval"),
        ],
        cwd=served.work,
        env=served.env,
        timeout=600,
    )
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr


def test_viewer_scrolls_to_the_answer_and_ignores_bad_offsets(
    served: Served, browser: Browser
) -> None:
    api = served.server
    hit = api_search(api, NB_QUESTION)[0]
    ctx = browser.new_context(viewport={"width": 700, "height": 320})
    try:
        view = ctx.new_page()
        base = f"{api.url}/view?source={hit['source']}&start={hit['start']}&end={hit['end']}"
        view.goto(f"{base}&as={hit['answer_start']}&ae={hit['answer_end']}")
        mark = view.locator("qa-source mark#answer")
        expect(mark).to_be_visible()
        assert mark.text_content() == answer_text(api, hit)
        # Nested in the passage mark, which still holds exactly the passage.
        assert view.locator("qa-source mark#passage").text_content() == hit["text"]
        expect(mark).to_be_in_viewport()
        box = mark.bounding_box()
        height = view.evaluate("window.innerHeight")
        assert box and box["y"] >= 0 and box["y"] < height, (box, height)

        # Offsets that are not integers inside the passage are ignored, never inserted.
        text = source_json(api, hit["source"])["text"]
        for bad in (
            "&as=1e3&ae=2e3",
            "&as=%3Cb%3E&ae=9",
            f"&as={hit['start'] - 1}&ae={hit['answer_end']}",
            f"&as={hit['answer_start']}&ae={hit['end'] + 1}",
            f"&as={hit['answer_end']}&ae={hit['answer_start']}",
        ):
            view.goto(base + bad)
            expect(view.locator("qa-source mark#passage")).to_be_visible()
            expect(view.locator("qa-source mark#answer")).to_have_count(0)
            assert view.locator("qa-source pre").text_content() == text
            assert view.locator("qa-source b").count() == 0
    finally:
        ctx.close()


def fulfil(status: int, code: str) -> object:
    """A route handler answering POST /feedback with ``status`` and the error envelope."""
    body = json.dumps({"error": {"code": code, "message": code, "details": None}})

    def handler(route: Route) -> None:
        route.fulfill(status=status, content_type="application/json", body=body)

    return handler


def test_keyboard_english_labels_and_quiet_errors(served: Served, page: Page) -> None:
    page.goto(served.site.origin + "/en")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # A stale index (409): a quiet note, the pair stays locked. Reached with the keyboard.
    page.route("**/feedback", fulfil(409, "index_changed"))  # type: ignore[arg-type]
    ask(page, EN_QUESTION)
    row = results(page).first.locator(".feedback")
    expect(row).to_contain_text("Did this answer the question?")
    expect(page.locator("qa-search .none-row button")).to_have_text("None of these answered")
    up = row.locator("button[data-vote=up]")
    assert up.get_attribute("aria-label") == "Yes, this answered the question"
    page.keyboard.press("Tab")  # the clear button
    page.keyboard.press("Tab")  # the first 👍
    expect(up).to_be_focused()
    expect(page.locator("qa-search input[role=combobox]")).to_have_attribute(
        "aria-expanded", "true"
    )
    page.keyboard.press("Enter")
    expect(row.locator(".note")).to_contain_text("updated since you searched")
    expect(up).to_have_attribute("aria-disabled", "true")
    expect(up).to_be_focused()  # aria-disabled, not disabled: the focus stays
    page.keyboard.press("Escape")  # back to the box, list closed
    expect(page.locator("qa-search input[role=combobox]")).to_be_focused()
    expect(page.locator("qa-search [role=listbox]")).to_be_hidden()

    # Any other failure: a quiet note, and the buttons work again.
    page.unroute("**/feedback")
    page.route("**/feedback", fulfil(503, "feedback_unavailable"))  # type: ignore[arg-type]
    page.keyboard.press("ArrowDown")
    second = results(page).nth(1).locator(".feedback")
    second.locator("button[data-vote=down]").click()
    expect(second.locator(".note")).to_have_text("The feedback was not sent.")
    expect(second.locator("button[data-vote=down]")).to_have_attribute("aria-disabled", "false")

    # A server without /feedback (404): the buttons go, the results stay.
    page.unroute("**/feedback")
    page.route("**/feedback", fulfil(404, "not_found"))  # type: ignore[arg-type]
    second.locator("button[data-vote=up]").click()
    expect(page.locator("qa-search .feedback:not([hidden])")).to_have_count(0)
    expect(options(page).first).to_be_visible()
    assert dialogs == []
    assert page.locator("qa-search [role=alert]").count() == 0
