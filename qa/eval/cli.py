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
from typing import TYPE_CHECKING, Any

import click

from qa.access.options import access_options, caller_and_filters
from qa.cli_context import embedder_or_fail, fail, settings_or_fail

if TYPE_CHECKING:
    from qa.access import Caller, Filters
    from qa.config import Settings
    from qa.eval.run import GoldQuestion, Searcher

GOLD = click.Path(exists=True, dir_okay=False, path_type=Path)
FOLDER = click.Path(exists=True, file_okay=False, path_type=Path)
PATH = click.Path(path_type=Path)
TESTS = click.Choice(["fisher", "student"])
# the settings the figures depend on, copied into results.json
RECORDED_SETTINGS = [
    "chunk_size",
    "chunk_overlap",
    "candidates",
    "rrf_k",
    "dense_weight",
    "lexical_weight",
    "index_type",
    "backend",
    "answer_span",
]
K_HELP = "Cut of recall@k [10; at most QA_MAX_K, the API's largest k]."
FLOOR_HELP = "Exit 1 if a metric is below VALUE: hit@5=0.9, en:answer@5=0.8 (repeatable)."


def _url_target(url: str, api_key: str | None) -> tuple[Searcher, dict[str, Any]]:
    from qa.eval.http import HttpSearcher

    searcher = HttpSearcher(url, api_key)
    try:
        health = searcher.health()
    except Exception as exc:  # refused, timed out, an error status or not our API: one line
        fail(f"cannot reach {url}: {exc}")
    meta = {"model": health.model, "index_version": health.index_version}
    return searcher, {"mode": "url", "target": url} | meta


def _index_target(
    s: Settings, sources: Path | None, quiet: bool, caller: Caller | None, filters: Filters
) -> tuple[Searcher, dict[str, Any]]:
    """A Retriever on the index folder, after building it from ``sources`` when given,
    searched as ``caller`` with ``filters``."""
    from qa.eval.run import Scoped
    from qa.index import IndexProblem, build_index
    from qa.retriever import Retriever

    embedder = embedder_or_fail(s)
    try:
        if sources is not None:
            build_index(s, embedder, progress=not quiet)
        retriever = Retriever.load(s.index_dir, s, embedder)
    except IndexProblem as exc:
        fail(str(exc))
    scope = {"groups": sorted(caller.groups) if caller else None, "filters": repr(filters)}
    return Scoped(retriever, caller, filters), {
        "access": scope,
        "mode": "sources" if sources is not None else "index",
        "target": str(sources if sources is not None else s.index_dir),
        "model": getattr(embedder, "name", s.model),
        "index_version": retriever.version,
        "passages": len(retriever.passages),
        "settings": {k: getattr(s, k, None) for k in RECORDED_SETTINGS},
        "indexed_sources": [x.path for x in retriever.sources(caller)],
    }


def _compare(paths: tuple[Path, Path], stat_test: str, out: Path | None) -> None:
    from qa.eval.metrics import compare_results
    from qa.eval.report import format_compare

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
@click.option("--k", type=click.IntRange(min=1), default=10, help=K_HELP)
@click.option("--out", type=PATH, help="Folder for the reports (and --sources' index).")
@click.option("--name", help="Label of this run in reports and comparisons [the model].")
@click.option("--compare", nargs=2, type=GOLD, metavar="A.json B.json", help="Compare two runs.")
@click.option("--test", "stat_test", type=TESTS, default="fisher", help="--compare's test.")
@click.option("--min", "floors", multiple=True, metavar="[LANG:]METRIC=VALUE", help=FLOOR_HELP)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@access_options
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
    **access: Any,
) -> None:
    """Measure retrieval on a gold question file: hit@k, MRR, nDCG, answer@k, latency.

    Writes results.json (every question and what came back) and report.html (metrics, a
    recall plot, the failed questions) to --out [eval/results/<gold>-<time>]. With --sources
    the index is built in --out/index (reused next time), else in a temporary folder.
    --compare A.json B.json tests two results.json files against each other instead
    (paired: Fisher's randomisation test, or Student's t). --groups and the filters search
    as that caller would (--index or --sources only).
    """
    caller, filters = caller_and_filters(access)
    if url and (caller is not None or not filters.empty):
        raise click.UsageError("--groups and filters apply to --index and --sources, not --url")
    if compare:
        if gold or floors:
            raise click.UsageError("--compare takes two results.json files, not --gold/--min")
        return _compare(compare, stat_test, out)
    if gold is None:
        raise click.UsageError("give --gold FILE (or --compare A.json B.json)")
    if sum(x is not None for x in (sources, index_dir, url)) > 1:
        raise click.UsageError("give one of --sources, --index and --url")
    from qa.eval.metrics import check_floors, parse_floor, reported_names
    from qa.eval.run import load_gold

    try:
        limits = [parse_floor(f) for f in floors]
        with warnings.catch_warnings(record=True) as notes:
            warnings.simplefilter("always")
            questions = load_gold(gold)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    unknown = [f"{g}:{m}" for g, m, _ in limits if m not in reported_names(k)]
    if unknown:
        raise click.UsageError(f"no such metric: {', '.join(unknown)} ({reported_names(k)})")
    for note in notes:
        click.secho(f"warning: {note.message}", fg="yellow", err=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = out or Path("eval/results") / f"{gold.resolve().parent.name}-{gold.stem}-{stamp}"
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        scratch = out / "index" if out else Path(tmp) / "index"
        s = settings_or_fail(sources_dir=sources, index_dir=scratch if sources else index_dir)
        if k > s.max_k:
            raise click.UsageError(f"--k {k} is over the largest k, {s.max_k} (QA_MAX_K)")
        if url:
            searcher, meta = _url_target(url, api_key)
        else:
            searcher, meta = _index_target(s, sources, quiet, caller, filters)
        result = _evaluate(searcher, meta, questions, k, quiet)
    head = {"name": name or meta.get("model"), "gold": str(gold)}
    _report(head | {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z")} | meta | result, folder)
    failures = check_floors(result, limits)
    for msg in failures:
        click.secho(f"FAIL: {msg}", fg="red", err=True)
    if failures:
        sys.exit(1)
    if limits:
        click.secho(f"all {len(limits)} floors met", fg="green", err=True)


def _evaluate(
    searcher: Searcher, meta: dict[str, Any], questions: list[GoldQuestion], k: int, quiet: bool
) -> dict[str, Any]:
    """Ask every question with a progress bar; warn about gold files the index lacks."""
    from tqdm import tqdm

    from qa.eval.run import evaluate_searcher

    missing = {q.source for q in questions if q.source} - set(meta.pop("indexed_sources", []))
    if missing and meta["mode"] != "url":
        click.secho(
            f"warning: {len(missing)} gold source(s) not in the index, e.g. {sorted(missing)[0]}",
            fg="yellow",
            err=True,
        )
    with tqdm(total=len(questions), desc="questions", disable=quiet, file=sys.stderr) as bar:
        try:
            return evaluate_searcher(searcher, questions, k, bar.update)
        except RuntimeError as exc:
            fail(str(exc))


def _report(result: dict[str, Any], folder: Path) -> None:
    from qa.eval.report import format_table, save_result, write_html

    save_result(result, folder / "results.json")
    write_html(result, folder / "report.html")
    click.echo(format_table(result))
    click.echo(f"\nwrote {folder / 'results.json'} and {folder / 'report.html'}", err=True)
