"""qa eval: figures checked against hand computation, every target mode, reports, CI floors."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from qa.eval import cli as eval_cli
from qa.eval.cli import HttpSearcher, eval_command, parse_floor
from qa.eval.report import check_floors, failed, format_table, write_html
from qa.eval.run import GoldQuestion, evaluate_searcher, load_gold
from qa.types import Hit, Passage, SearchResult

ROOT = Path(__file__).resolve().parents[2]
ANS = "Opplæringsloven pålegger alle kommuner"

# Four answerable questions and one without an answer, with fixed ranked lists.
# Each entry: (source, text) in rank order. Gold file is "a.txt" for all four.
HAND = {
    # file rank 1, answer rank 1
    "q1": ("nb", [("a.txt", f"x {ANS} y"), ("b.txt", "noe annet")]),
    # file rank 2; rank 2 has the answer lower-cased (case-sensitive: no), answer at rank 6
    "q2": (
        "nb",
        [
            ("b.txt", "b"),
            ("a.txt", ANS.lower()),
            ("b.txt", "b2"),
            ("c.txt", "c"),
            ("b.txt", "b3"),
            ("a.txt", ANS),
        ],
    ),
    # never the gold file
    "q3": ("en", [("b.txt", "b"), ("c.txt", "c"), ("b.txt", "b"), ("c.txt", "c")]),
    # file rank 3 (the passage rank, not 2 = its place among distinct files); the answer is
    # broken over a line in the passage: whitespace is normalised before comparing
    "q4": (
        "en",
        [("c.txt", "c"), ("c.txt", "c2"), ("a.txt", "Opplæringsloven pålegger\n  alle kommuner")],
    ),
    "q5": ("en", [("b.txt", "unrelated")]),
}
# By hand: file ranks 1, 2, -, 3; answer ranks 1, 6, -, 3.
EXPECTED = {
    "hit@1": 1 / 4,
    "hit@5": 3 / 4,
    "mrr@10": (1 + 1 / 2 + 0 + 1 / 3) / 4,
    "ndcg@10": (1 + 1 / math.log2(3) + 0 + 1 / math.log2(4)) / 4,
    "recall@10": 3 / 4,
    "answer@1": 1 / 4,
    "answer@5": (1 + 0 + 0 + 1) / 4,
}
EXPECTED_NB = {"hit@1": 1 / 2, "hit@5": 1.0, "mrr@10": (1 + 1 / 2) / 2, "answer@5": 1 / 2}
EXPECTED_EN = {"hit@1": 0.0, "hit@5": 1 / 2, "mrr@10": (0 + 1 / 3) / 2, "answer@5": 1 / 2}
EXPECTED_CURVE = [1 / 4, 2 / 4, 3 / 4] + [3 / 4] * 7


def hand_questions(bad_text: str = "") -> list[GoldQuestion]:
    qs = [
        GoldQuestion(qid, f"question {qid}{bad_text}", lang, "a.txt", ANS)
        for qid, (lang, _) in HAND.items()
        if qid != "q5"
    ]
    return [*qs, GoldQuestion("q5", "unanswerable?", "en", None, None, answerable=False)]


def hand_result(query: str, spec: dict = HAND) -> SearchResult:
    qid = query.split()[-1].split("<")[0] if query.startswith("question") else "q5"
    lang, rows = spec[qid]
    hits = [
        Hit(Passage(src, 0, len(text), text, 1, 1, src), 1.0 - i / 10, i + 1)
        for i, (src, text) in enumerate(rows)
    ]
    return SearchResult(query, lang, hits)


class FakeSearcher:
    """Fixed ranked lists; counts how it was called."""

    def __init__(self, spec: dict = HAND) -> None:
        self.spec, self.single, self.batched = spec, 0, 0

    def search(self, query: str, k: int = 5) -> SearchResult:
        self.single += 1
        return hand_result(query, self.spec)

    def search_batch(self, queries: list[str], k: int = 5) -> list[SearchResult]:
        self.batched += len(queries)
        return [hand_result(q, self.spec) for q in queries]


def write_gold(path: Path, questions: list[GoldQuestion]) -> Path:
    rows = [
        {"id": q.id, "question": q.question, "lang": q.lang, "source": q.source, "answer": q.answer}
        | ({} if q.answerable else {"answerable": False})
        for q in questions
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def test_figures_agree_with_hand_computation() -> None:
    searcher = FakeSearcher()
    result = evaluate_searcher(searcher, hand_questions(), k=10)
    for metric, value in EXPECTED.items():
        assert result["metrics"]["all"][metric] == pytest.approx(value), metric
    for metric, value in EXPECTED_NB.items():
        assert result["metrics"]["nb"][metric] == pytest.approx(value), metric
    for metric, value in EXPECTED_EN.items():
        assert result["metrics"]["en"][metric] == pytest.approx(value), metric
    assert result["recall_curve"]["all"] == pytest.approx(EXPECTED_CURVE)
    assert result["metrics"]["all"]["n"] == 4 and result["n_questions"] == 5
    ranks = {r["id"]: (r["file_rank"], r["answer_rank"]) for r in result["questions"]}
    assert ranks == {
        "q1": (1, 1),
        "q2": (2, 6),
        "q3": (None, None),
        "q4": (3, 3),
        "q5": (None, None),
    }
    # unanswerable: out of the metrics, reported with its top score
    un = result["unanswerable"]
    assert un["n"] == 1 and un["questions"][0]["top_score"] == pytest.approx(1.0)
    # results from the batch, latency from one timed single query each (plus a warm-up)
    assert searcher.batched == 5 and searcher.single == 6
    assert result["latency_ms"]["n"] == 5 and result["latency_ms"]["p50"] >= 0
    # the table prints the same figures
    table = format_table(result)
    assert "0.458" in table and "0.533" in table and "q3" in table


def test_gold_file_answers_are_exact_spans() -> None:
    questions = load_gold(ROOT / "eval" / "gold.jsonl")
    answerable = [q for q in questions if q.answerable]
    langs = [q.lang for q in answerable]
    assert len(questions) >= 44 and len({q.id for q in questions}) == len(questions)
    assert langs.count("en") == langs.count("nb") + langs.count("nn")
    assert langs.count("nn") >= 4 and len(questions) - len(answerable) >= 4
    for q in answerable:
        text = (ROOT / "sources" / q.source).read_text(encoding="utf-8")
        assert q.answer_start is not None
        assert text[q.answer_start : q.answer_start + len(q.answer)] == q.answer, q.id


def test_load_gold_rejects_bad_lines(tmp_path: Path) -> None:
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": "a", "question": "x", "source": "s", "answer": "y"}\n' * 2, "utf-8")
    with pytest.warns(UserWarning, match="repeated"):
        assert [q.id for q in load_gold(dup)] == ["a", "a#2"]
    no_answer = tmp_path / "na.jsonl"
    no_answer.write_text('{"id": "a", "question": "x", "source": "s.txt"}\n', "utf-8")
    with pytest.raises(ValueError, match="no answer"):
        load_gold(no_answer)
    blank = tmp_path / "blank.jsonl"
    blank.write_text('{"id": "a", "question": "x", "source": "", "answer": ""}\n', "utf-8")
    assert load_gold(blank)[0].answerable is False


def test_html_report_escapes_and_lists_failed_questions(tmp_path: Path) -> None:
    result = evaluate_searcher(FakeSearcher(), hand_questions("<script>alert(1)</script>"))
    assert [r["id"] for r in failed(result)] == ["q2", "q3"]
    page = write_html(result, tmp_path / "report.html").read_text("utf-8")
    assert "data:image/png;base64," in page
    assert "question q2&lt;script&gt;" in page and "question q3&lt;script&gt;" in page
    assert "<script>" not in page
    assert "question q1" not in page  # answered at rank 1: not a failure


def test_floors() -> None:
    assert parse_floor("hit@5=0.9") == ("all", "hit@5", 0.9)
    assert parse_floor("en:answer@5=0.8") == ("en", "answer@5", 0.8)
    with pytest.raises(ValueError):
        parse_floor("speed=3")
    result = evaluate_searcher(FakeSearcher(), hand_questions())
    assert check_floors(result, [parse_floor("hit@5=0.75")]) == []
    (msg,) = check_floors(result, [parse_floor("hit@5=0.8")])
    assert "hit@5 = 0.750 is below the floor 0.8" in msg


def _stub_transport(api_key: str | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if api_key and request.headers.get("X-API-Key") != api_key:
            return httpx.Response(401, json={"error": {"code": "unauthorized"}})
        if request.url.path == "/health":
            return httpx.Response(
                200, json={"status": "ok", "model": "stub", "index_version": "v1", "passages": 9}
            )
        body = json.loads(request.content)
        res = hand_result(body["query"])
        return httpx.Response(
            200,
            json={
                "query": res.query,
                "language": res.language,
                "results": [_wire(h) for h in res.hits[: body["k"]]],
            },
        )

    return httpx.MockTransport(handler)


def _wire(h: Hit) -> dict:
    p = h.passage
    return {
        "rank": h.rank,
        "score": h.score,
        "text": p.text,
        "source": p.source,
        "start": p.start,
        "end": p.end,
        "line_start": p.line_start,
        "line_end": p.line_end,
        "title": p.title,
    }


def test_http_mode_gives_the_same_figures() -> None:
    client = httpx.Client(base_url="http://stub", transport=_stub_transport("k1"))
    result = evaluate_searcher(HttpSearcher(client=client, api_key="k1"), hand_questions())
    for metric, value in EXPECTED.items():
        assert result["metrics"]["all"][metric] == pytest.approx(value), metric
    with pytest.raises(RuntimeError, match="401"):
        HttpSearcher(client=client).search("question q1")


def test_http_mode_against_the_api(settings, tiny_index, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from qa.api.app import create_app
    from qa.retriever import LiveRetriever, Retriever

    questions = [
        GoldQuestion(
            "t1",
            "Hvilken lov pålegger kommunene kulturskoletilbud?",
            "nb",
            "kultur.txt",
            "Opplæringsloven",
        ),
        GoldQuestion(
            "t2", "Hva koster vedlikeholdet av vegene?", "nb", "veg.txt", "3,2 milliarder kroner"
        ),
        GoldQuestion("t3", "Who runs nursing homes?", "en", "sub/helse.txt", "sykehjem"),
    ]
    direct = evaluate_searcher(Retriever.load(tiny_index, settings, fake_embedder), questions)
    settings = settings.model_copy(
        update={"api_key": SecretStr("s3cret"), "rate_limit": "10000/minute"}
    )
    live = LiveRetriever(settings, fake_embedder)
    with TestClient(create_app(settings, live=live)) as client:
        via_api = evaluate_searcher(HttpSearcher(client=client, api_key="s3cret"), questions)
    assert via_api["metrics"] == direct["metrics"]
    assert [r["results"] for r in via_api["questions"]] == [
        r["results"] for r in direct["questions"]
    ]


class _StubServer(BaseHTTPRequestHandler):
    def _send(self, obj: dict) -> None:
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # /health
        self._send({"status": "ok", "model": "stub", "index_version": "v1", "passages": 9})

    def do_POST(self) -> None:  # /search
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        res = hand_result(body["query"])
        self._send(
            {"query": res.query, "language": res.language, "results": [_wire(h) for h in res.hits]}
        )

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub_url():  # type: ignore[no-untyped-def]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StubServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_cli_url_mode_writes_reports_and_enforces_floors(tmp_path: Path, stub_url: str) -> None:
    gold = write_gold(tmp_path / "gold.jsonl", hand_questions())
    out = tmp_path / "out"
    runner = CliRunner()
    ok = runner.invoke(
        eval_command,
        [
            "--gold",
            str(gold),
            "--url",
            stub_url,
            "--out",
            str(out),
            "--min",
            "hit@5=0.7",
            "--min",
            "nb:hit@5=1",
            "--quiet",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert "mrr@10" in ok.output and "0.458" in ok.output
    saved = json.loads((out / "results.json").read_text("utf-8"))
    assert saved["mode"] == "url" and saved["model"] == "stub"
    assert saved["metrics"]["all"]["mrr@10"] == pytest.approx(EXPECTED["mrr@10"])
    q2 = next(r for r in saved["questions"] if r["id"] == "q2")
    assert [r["source"] for r in q2["results"]][:2] == ["b.txt", "a.txt"]
    page = (out / "report.html").read_text("utf-8")
    assert "question q2" in page and "question q3" in page
    bad = runner.invoke(
        eval_command,
        [
            "--gold",
            str(gold),
            "--url",
            stub_url,
            "--out",
            str(out),
            "--min",
            "answer@5=0.9",
            "--quiet",
        ],
    )
    assert bad.exit_code == 1
    assert "answer@5 = 0.500 is below the floor 0.9" in bad.output
    usage = runner.invoke(
        eval_command, ["--gold", str(gold), "--url", stub_url, "--min", "nonsense", "--quiet"]
    )
    assert usage.exit_code == 2 and "bad floor" in usage.output
    unknown = runner.invoke(
        eval_command, ["--gold", str(gold), "--url", stub_url, "--min", "hit@3=0.5", "--quiet"]
    )
    assert unknown.exit_code == 2 and "no such metric: all:hit@3" in unknown.output


def test_compare_with_paired_test(tmp_path: Path) -> None:
    from scipy.stats import ttest_rel

    better = dict(HAND, q3=("en", [("a.txt", ANS)]), q2=("nb", [("a.txt", ANS)]))
    a = evaluate_searcher(FakeSearcher(), hand_questions()) | {"name": "model-a"}
    b = evaluate_searcher(FakeSearcher(better), hand_questions()) | {"name": "model-b"}
    pa = tmp_path / "a.json"
    pb = tmp_path / "b.json"
    pa.write_text(json.dumps(a), "utf-8")
    pb.write_text(json.dumps(b), "utf-8")
    out = tmp_path / "cmp"
    res = CliRunner().invoke(
        eval_command, ["--compare", str(pa), str(pb), "--test", "student", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "model-a" in res.output and "model-b" in res.output and "mrr@10" in res.output
    cmp = json.loads((out / "compare.json").read_text("utf-8"))
    # B answers q2 and q3 at rank 1: MRR per question (1, .5, 0, 1/3) -> (1, 1, 1, 1/3)
    row = cmp["rows"]["mrr@10"]
    assert row["a"] == pytest.approx(EXPECTED["mrr@10"])
    assert row["b"] == pytest.approx((1 + 1 + 1 + 1 / 3) / 4)
    independent = ttest_rel([1, 1 / 2, 0, 1 / 3], [1, 1, 1, 1 / 3]).pvalue
    assert row["p"] == pytest.approx(independent, abs=1e-4)


def test_cli_sources_and_index_modes(
    tmp_path: Path, tiny_sources: Path, fake_embedder, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(eval_cli, "_embedder", lambda settings: fake_embedder)
    monkeypatch.setenv("QA_CHUNK_SIZE", "120")
    monkeypatch.setenv("QA_CHUNK_OVERLAP", "30")
    gold = write_gold(
        tmp_path / "gold.jsonl",
        [
            GoldQuestion(
                "t1",
                "Hvilken lov pålegger kommunene kulturskoletilbud?",
                "nb",
                "kultur.txt",
                "Opplæringsloven",
            ),
            GoldQuestion(
                "t2", "Hvor ofte skal bruer inspiseres?", "nb", "veg.txt", "hvert femte år"
            ),
            GoldQuestion("t3", "Who is the mayor of Oslo?", "en", None, None, answerable=False),
        ],
    )
    out = tmp_path / "out"
    runner = CliRunner()
    built = runner.invoke(
        eval_command,
        ["--gold", str(gold), "--sources", str(tiny_sources), "--out", str(out), "--quiet"],
    )
    assert built.exit_code == 0, built.output
    first = json.loads((out / "results.json").read_text("utf-8"))
    assert first["mode"] == "sources" and first["metrics"]["all"]["n"] == 2
    assert (out / "index" / "current").exists()
    loaded = runner.invoke(
        eval_command,
        [
            "--gold",
            str(gold),
            "--index",
            str(out / "index"),
            "--out",
            str(tmp_path / "out2"),
            "--quiet",
        ],
    )
    assert loaded.exit_code == 0, loaded.output
    second = json.loads((tmp_path / "out2" / "results.json").read_text("utf-8"))
    assert second["metrics"] == first["metrics"]
    assert second["index_version"] == first["index_version"]


def test_ranx_agrees_with_plain_formulas_on_random_lists() -> None:
    """Many random ranked lists: every figure equals the textbook formula on the first hit."""
    import random

    rng = random.Random(7)
    spec: dict = {}
    questions = []
    for i in range(60):
        rows = [(rng.choice("abcd") + ".txt", rng.choice(["x", ANS, "y"])) for _ in range(10)]
        spec[f"r{i}"] = ("nb", rows[: rng.randint(0, 10)])
        questions.append(GoldQuestion(f"r{i}", f"question r{i}", "nb", "a.txt", ANS))
    result = evaluate_searcher(FakeSearcher(spec), questions)

    def first(rows: list, answer: bool) -> int | None:
        hits = [i for i, (s, t) in enumerate(rows, 1) if s == "a.txt" and (t == ANS or not answer)]
        return hits[0] if hits else None

    files = [first(rows, False) for _, rows in spec.values()]
    answers = [first(rows, True) for _, rows in spec.values()]
    n = len(files)
    plain = {
        "hit@1": sum(r == 1 for r in files) / n,
        "hit@5": sum(r is not None and r <= 5 for r in files) / n,
        "mrr@10": sum(1 / r for r in files if r) / n,
        "ndcg@10": sum(1 / math.log2(r + 1) for r in files if r) / n,
        "recall@10": sum(r is not None for r in files) / n,
        "answer@1": sum(r == 1 for r in answers) / n,
        "answer@5": sum(r is not None and r <= 5 for r in answers) / n,
    }
    for metric, value in plain.items():
        assert result["metrics"]["all"][metric] == pytest.approx(value), metric
