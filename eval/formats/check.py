"""Check a ``qa eval`` run on the format corpus against what the files really hold.

    qa eval --gold DIR/gold.jsonl --sources DIR/sources --out OUT
    python -m eval.formats.check OUT/results.json --corpus DIR            # index: OUT/index
    python -m eval.formats.check OUT/results.json --corpus DIR --url URL  # a `qa eval --url` run

- **pages**: for each question whose answer is in a PDF passage among the first 5, the first
  such passage's ``page_start..page_end`` must hold the answer, read with poppler's
  ``pdftotext -layout`` (an extractor independent of ours), whitespace, soft hyphens and
  line-end breaks after a hyphen normalised; an answer across a page break counts when the
  pages together hold it. Goal: a share of at least 0.95.
- **citations**: every result returned must be exact, ``text == source[start:end]``, against
  the index's source texts (what ``GET /sources/{path}`` serves) or, with ``--url``, against
  ``GET /sources/{path}`` itself.
- **boilerplate** (with an index): no passage holds the PDF header or footer or the HTML
  pages' navigation, cookie banner, aside or footer text.

Prints the figures, writes them with every failure to ``formats-check.json`` beside the
results, and exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from urllib.parse import quote

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from eval.formats.make import BOILERPLATE, FOOTER, HEADER

TOP = 5
PAGE_GOAL = 0.95
_HYPHEN_BREAK = re.compile(r"-\s+")
#: The PDF footer, also when the extractor glued it to the page's last line ("EØSSide 1").
_FOOTER_LINE = re.compile(rf"{FOOTER} \d+$", re.MULTILINE)


def norm(text: str) -> str:
    """Text as compared: NFKC (ligatures), no soft hyphens, "-" + line break joined, spaces
    collapsed. Applied to the answer and the page alike."""
    text = unicodedata.normalize("NFKC", text).replace("\u00ad", "")
    return _HYPHEN_BREAK.sub("-", " ".join(text.split()))


@cache
def pdf_page(pdf: Path, page: int) -> str:
    """Page ``page`` (1-based) of ``pdf`` as ``pdftotext -layout`` reads it."""
    command = ["pdftotext", "-layout", "-f", str(page), "-l", str(page), str(pdf), "-"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    return proc.stdout if proc.returncode == 0 else ""


def _pages_holding(pdf: Path, answer: str) -> list[int]:
    """The pages on which the answer stands whole (to say where the citation should point)."""
    pages, n = [], 1
    while n < 500 and (text := pdf_page(pdf, n)):
        if answer in norm(text):
            pages.append(n)
        n += 1
    return pages


def _answered_in_pdf(question: dict) -> dict | None:
    """The first result among the top 5 that holds the answer, when it is from a PDF."""
    for row in question.get("results", [])[:TOP]:
        if row.get("has_answer"):
            return row if str(row["source"]).lower().endswith(".pdf") else None
    return None


def check_pages(questions: list[dict], sources: Path) -> dict:
    """Share of PDF answers whose cited pages hold the answer, and the ones that do not."""
    checked, failures = 0, []
    for q in questions:
        row = _answered_in_pdf(q)
        if row is None:
            continue
        checked += 1
        first, last = row.get("page_start"), row.get("page_end")
        pdf = sources / row["source"]
        if first is None or last is None:
            failures.append({"id": q["id"], "source": row["source"], "why": "no page fields"})
            continue
        answer = norm(q["answer"])
        cited = norm(" ".join(pdf_page(pdf, n) for n in range(first, last + 1)))
        if answer not in cited:
            failures.append(
                {
                    "id": q["id"],
                    "source": row["source"],
                    "cited": [first, last],
                    "answer_on": _pages_holding(pdf, answer),
                }
            )
    share = (checked - len(failures)) / checked if checked else None
    return {"checked": checked, "share": share, "goal": PAGE_GOAL, "failures": failures}


def _rows(questions: list[dict]) -> Iterator[dict]:
    for q in questions:
        yield from q.get("results", [])


def check_citations(questions: list[dict], text_of: dict[str, str | None]) -> dict:
    """Every returned passage against its source text: ``text == source[start:end]``."""
    total, failures = 0, []
    for row in _rows(questions):
        total += 1
        text = text_of.get(row["source"])
        if text is None or text[row["start"] : row["end"]] != row["text"]:
            failures.append({k: row[k] for k in ("source", "start", "end")})
    share = (total - len(failures)) / total if total else None
    return {"results": total, "share": share, "failures": failures[:50]}


def check_boilerplate(passages: list[dict]) -> dict:
    """Passages holding the PDF header or footer, or the HTML pages' surrounding text."""
    found = []
    for p in passages:
        hits = [b for b in (HEADER, *BOILERPLATE) if b in p["text"]]
        if p["source"].endswith(".pdf") and _FOOTER_LINE.search(p["text"]):
            hits.append(f"{FOOTER} N")
        if hits:
            found.append({"source": p["source"], "start": p["start"], "found": hits})
    return {"passages": len(passages), "with_boilerplate": len(found), "examples": found[:20]}


def _index_files(index: Path) -> tuple[dict[str, str | None], list[dict]]:
    """The source texts and the passages of the index's current build."""
    build = index / "current"
    lines = (build / "sources.jsonl").read_text(encoding="utf-8").splitlines()
    texts: dict[str, str | None] = {}
    for line in lines:
        row = json.loads(line)
        texts[row["path"]] = row["text"]
    passages = [json.loads(x) for x in (build / "passages.jsonl").open(encoding="utf-8")]
    return texts, passages


def _served_texts(url: str, api_key: str | None, paths: set[str]) -> dict[str, str | None]:
    """``GET /sources/{path}`` for each path (None where it fails)."""
    import httpx

    headers = {"X-API-Key": api_key} if api_key else {}
    out: dict[str, str | None] = {}
    with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
        for path in sorted(paths):
            resp = client.get(f"/sources/{quote(path)}")
            out[path] = resp.text if resp.status_code == 200 else None
    return out


def run(results: Path, corpus: Path, index: Path | None, url: str | None, key: str | None) -> dict:
    questions = json.loads(results.read_text(encoding="utf-8"))["questions"]
    out: dict = {"results": str(results), "corpus": str(corpus)}
    out["pages"] = check_pages(questions, corpus / "sources")
    if url:
        texts = _served_texts(url, key, {r["source"] for r in _rows(questions)})
    else:
        texts, passages = _index_files(index or results.parent / "index")
        out["boilerplate"] = check_boilerplate(passages)
    out["citations"] = check_citations(questions, texts)
    return out


def missed(out: dict) -> list[str]:
    """The goals this check missed, in words."""
    pages, cites = out["pages"], out["citations"]
    msgs = []
    if pages["share"] is not None and pages["share"] < PAGE_GOAL:
        msgs.append(f"PDF page check {pages['share']:.3f} < {PAGE_GOAL}")
    if cites["failures"]:
        msgs.append(f"{len(cites['failures'])} citation(s) not exact")
    if out.get("boilerplate", {}).get("with_boilerplate"):
        msgs.append(f"{out['boilerplate']['with_boilerplate']} passage(s) hold boilerplate")
    return msgs


def _share(part: dict) -> str:
    return "n/a" if part["share"] is None else f"{part['share']:.3f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", type=Path, help="results.json of `qa eval --out OUT`")
    p.add_argument("--corpus", type=Path, required=True, help="the format corpus folder")
    p.add_argument("--index", type=Path, help="index the run used [beside results.json]")
    p.add_argument("--url", help="check citations against this server's GET /sources/{path}")
    p.add_argument("--api-key", help="key for --url")
    args = p.parse_args(argv)
    try:
        out = run(args.results, args.corpus, args.index, args.url, args.api_key)
    except (OSError, ValueError, KeyError) as exc:
        p.exit(2, f"error: cannot check {args.results}: {exc}\n")
    pages, cites = out["pages"], out["citations"]
    print(
        f"PDF answers in the top {TOP}: {pages['checked']}, cited pages hold the answer: "
        f"{_share(pages)} (goal ≥ {PAGE_GOAL})"
    )
    print(f"citations exact: {_share(cites)} of {cites['results']}")
    if "boilerplate" in out:
        b = out["boilerplate"]
        print(
            f"passages with header/footer/navigation text: {b['with_boilerplate']} of "
            f"{b['passages']}"
        )
    sys.stdout.flush()
    target = args.results.parent / "formats-check.json"
    target.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for msg in missed(out):
        print(f"FAIL: {msg}", file=sys.stderr)
    print(f"wrote {target}", file=sys.stderr)
    return 1 if missed(out) else 0


if __name__ == "__main__":
    sys.exit(main())
