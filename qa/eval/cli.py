"""``qa eval``: measure retrieval on a gold file, compare two runs, and gate CI on floors.

The target is the same Retriever the API serves: a temporary index built from ``--sources``,
an index folder (``--index``, default QA_INDEX_DIR), or a running server (``--url``).
Exit status: 0 done; 1 a floor was missed or the target failed; 2 usage error.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import click

from qa.cli_context import embedder_or_fail, fail, settings_or_fail
from qa.types import Hit, SearchResult

RETRIES_429 = 5
GOLD = click.Path(exists=True, dir_okay=False, path_type=Path)
FOLDER = click.Path(exists=True, file_okay=False, path_type=Path)
PATH = click.Path(path_type=Path)
TESTS = click.Choice(["fisher", "student"])
FLOOR_HELP = "Exit 1 if a metric is below VALUE: hit@5=0.9, en:answer@5=0.8 (repeatable)."


def parse_floor(spec: str) -> tuple[str, str, float]:
    """``hit@5=0.9`` or ``en:hit@5=0.8`` -> (group, metric, floor)."""
    try:
        left, value = spec.split("=", 1)
        group, _, metric = left.rpartition(":")
        name, cut = metric.strip().split("@")
        if name not in {"hit", "mrr", "ndcg", "recall", "answer"} or not cut.isdigit():
            raise ValueError
        return (group.strip() or "all", metric.strip(), float(value))
    except ValueError as exc:
        raise ValueError(
            f"bad floor {spec!r}: expected METRIC=VALUE, e.g. hit@5=0.9 or en:answer@5=0.8"
        ) from exc


def result_from_search(query: str, data: dict) -> SearchResult:
    """The API's /search JSON back into a SearchResult."""
    from qa.types import Passage

    fields = ("source", "start", "end", "text", "line_start", "line_end", "title")
    hits = [
        Hit(Passage(**{f: r[f] for f in fields}), float(r["score"]), int(r["rank"]))
        for r in data["results"]
    ]
    return SearchResult(data.get("query", query), data.get("language", "und"), hits)


class HttpSearcher:
    """``POST /search`` of a running server; any httpx.Client works (FastAPI's TestClient too).

    It has no ``search_batch``: each question is one timed request, as a user would send it.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        timeout: float = 60.0,
    ) -> None:
        import httpx

        self.client = (
            client if client is not None else httpx.Client(base_url=url or "", timeout=timeout)
        )
        self.headers = {"X-API-Key": api_key} if api_key else {}

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        for attempt in range(RETRIES_429 + 1):
            resp = self.client.request(method, path, headers=self.headers, **kw)
            if resp.status_code != 429 or attempt == RETRIES_429:
                break
            time.sleep(float(resp.headers.get("Retry-After", "1") or 1))
        if resp.status_code >= 400:
            raise RuntimeError(
                f"{method} {resp.request.url} answered {resp.status_code}: {resp.text[:300]}"
            )
        return resp.json()

    def health(self) -> dict:
        return self._request("GET", "/health")

    def search(self, query: str, k: int = 5) -> SearchResult:
        return result_from_search(
            query, self._request("POST", "/search", json={"query": query, "k": k})
        )


def _url_target(url: str, api_key: str | None) -> tuple[HttpSearcher, dict]:
    searcher = HttpSearcher(url, api_key)
    try:
        health = searcher.health()
    except Exception as exc:
        fail(f"cannot reach {url}: {exc}")
    meta = {"model": health.get("model"), "index_version": health.get("index_version")}
    return searcher, {"mode": "url", "target": url} | meta


def _index_target(sources: Path | None, index_dir: Path | None, scratch: Path, quiet: bool):  # type: ignore[no-untyped-def]
    """A Retriever on ``index_dir``, or on an index of ``sources`` built in ``scratch``."""
    from qa.index import IndexProblem, build_index
    from qa.retriever import Retriever

    s = settings_or_fail(sources_dir=sources, index_dir=scratch if sources else index_dir)
    embedder = embedder_or_fail(s)
    try:
        if sources is not None:
            build_index(s, embedder, progress=not quiet)
        retriever = Retriever.load(s.index_dir, s, embedder)
    except IndexProblem as exc:
        fail(str(exc))
    keys = ("chunk_size", "chunk_overlap", "candidates", "rrf_k", "dense_weight")
    keys += ("lexical_weight", "index_type", "backend")
    return retriever, {
        "mode": "sources" if sources is not None else "index",
        "target": str(sources if sources is not None else s.index_dir),
        "model": getattr(embedder, "name", s.model),
        "index_version": retriever.version,
        "passages": len(retriever.passages),
        "settings": {k: getattr(s, k, None) for k in keys},
        "indexed_sources": [x.path for x in retriever.sources()],
    }


def _compare(paths: tuple[Path, Path], stat_test: str, out: Path | None) -> None:
    from qa.eval.report import compare_results, format_compare

    try:
        a, b = (json.loads(p.read_text(encoding="utf-8")) for p in paths)
        cmp = compare_results(a, b, stat_test)
    except (OSError, ValueError, KeyError) as exc:
        fail(f"cannot compare {paths[0]} and {paths[1]}: {exc}")
    click.echo(format_compare(cmp))
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.json").write_text(json.dumps(cmp, indent=1), encoding="utf-8")


@click.command("eval")
@click.option("--gold", type=GOLD, help="Gold questions, JSON Lines (see eval/README.md).")
@click.option("--sources", type=FOLDER, help="Build an index of this folder and use it.")
@click.option("--index", "index_dir", type=PATH, help="Use this index folder [QA_INDEX_DIR].")
@click.option("--url", help="Use a running server's POST /search (http://host:port).")
@click.option("--api-key", envvar="QA_API_KEY", help="Key for --url [QA_API_KEY].")
@click.option("--k", type=click.IntRange(1, 50), default=10, help="Cut of recall@k [10].")
@click.option("--out", type=PATH, help="Folder for the reports (and --sources' index).")
@click.option("--name", help="Label of this run in reports and comparisons [the model].")
@click.option("--compare", nargs=2, type=GOLD, metavar="A.json B.json", help="Compare two runs.")
@click.option("--test", "stat_test", type=TESTS, default="fisher", help="--compare's test.")
@click.option("--min", "floors", multiple=True, metavar="[LANG:]METRIC=VALUE", help=FLOOR_HELP)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def eval_command(
    gold: Path | None,
    sources: Path | None,
    index_dir: Path | None,
    url: str | None,
    api_key: str | None,
    k: int,
    out: Path | None,
    name: str | None,
    compare: tuple[Path, Path] | None,
    stat_test: str,
    floors: tuple[str, ...],
    quiet: bool,
) -> None:
    """Measure retrieval on a gold question file: hit@k, MRR, nDCG, answer@k, latency.

    Writes results.json (every question and what came back) and report.html (metrics, a
    recall plot, the failed questions) to --out [eval/results/<gold>-<time>]. With --sources
    the index is built in --out/index (reused next time), else in a temporary folder.
    --compare A.json B.json tests two results.json files against each other instead
    (paired: Fisher's randomisation test, or Student's t).
    """
    if compare:
        if gold or floors:
            raise click.UsageError("--compare takes two results.json files, not --gold/--min")
        return _compare(compare, stat_test, out)
    if gold is None:
        raise click.UsageError("give --gold FILE (or --compare A.json B.json)")
    if sum(x is not None for x in (sources, index_dir, url)) > 1:
        raise click.UsageError("give one of --sources, --index and --url")
    from tqdm import tqdm

    from qa.eval.report import check_floors, format_table, write_html, write_json
    from qa.eval.run import evaluate_searcher, load_gold, metric_names

    try:
        limits = [parse_floor(f) for f in floors]
        with warnings.catch_warnings(record=True) as notes:
            warnings.simplefilter("always")
            questions = load_gold(gold)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    unknown = [f"{g}:{m}" for g, m, _ in limits if m not in metric_names(k)]
    if unknown:
        raise click.UsageError(f"no such metric: {', '.join(unknown)} ({metric_names(k)})")
    for note in notes:
        click.secho(f"warning: {note.message}", fg="yellow", err=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = out or Path("eval/results") / f"{gold.resolve().parent.name}-{gold.stem}-{stamp}"
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        if url:
            searcher, meta = _url_target(url, api_key)
        else:
            scratch = out / "index" if out else Path(tmp) / "index"
            searcher, meta = _index_target(sources, index_dir, scratch, quiet)
        missing = {q.source for q in questions if q.source} - set(meta.pop("indexed_sources", []))
        if missing and meta["mode"] != "url":
            click.secho(
                f"warning: {len(missing)} gold source(s) not in the index, e.g. "
                f"{sorted(missing)[0]}",
                fg="yellow",
                err=True,
            )
        with tqdm(total=len(questions), desc="questions", disable=quiet, file=sys.stderr) as bar:
            try:
                result = evaluate_searcher(searcher, questions, k, bar.update)
            except RuntimeError as exc:
                fail(str(exc))
    head = {"name": name or meta.get("model"), "gold": str(gold)}
    result = head | {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z")} | meta | result
    write_json(result, folder / "results.json")
    write_html(result, folder / "report.html")
    click.echo(format_table(result))
    click.echo(f"\nwrote {folder / 'results.json'} and {folder / 'report.html'}", err=True)
    failures = check_floors(result, limits)
    for msg in failures:
        click.secho(f"FAIL: {msg}", fg="red", err=True)
    if failures:
        sys.exit(1)
    if limits:
        click.secho(f"all {len(limits)} floors met", fg="green", err=True)
