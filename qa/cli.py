"""The ``qa`` command: index, serve, ask, eval, model.

Heavy imports (torch, FAISS) happen inside the commands, so ``qa --help`` is instant.
Exit status: 0 success; 1 failure (message names the file or folder and what to run);
2 usage error; 3 ``qa index`` finished but skipped some files (each named on stderr).
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from qa.access.options import access_options, caller_and_filters
from qa.cli_context import CliContext, embedder_or_fail, fail, k_or_fail, settings_or_fail

if TYPE_CHECKING:
    from collections.abc import Callable

    from qa.config import Settings
    from qa.index import BuildReport
    from qa.types import Embedder

EXIT_SKIPPED = 3


class LazyGroup(click.Group):
    """A group that imports some commands only when they are used or listed: the other
    commands start without them, and a command whose module fails to import is still
    there and says why (instead of click's "No such command")."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: command name -> "module:attribute" of its click command
        self.lazy: dict[str, str] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = target.partition(":")
        try:
            command = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as exc:  # e.g. a dependency is not installed
            return _unavailable(cmd_name, module, exc)
        assert isinstance(command, click.Command), target
        return command


def _unavailable(name: str, module: str, exc: Exception) -> click.Command:
    """Stands in for a command that cannot be imported: any use of it fails with the reason."""
    reason = f"could not import {module} ({type(exc).__name__}: {exc})"

    def refuse() -> None:
        fail(f"`qa {name}` is unavailable: {reason}")

    return click.Command(
        name,
        callback=refuse,
        help=f"Unavailable: {reason}.",
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


def _build(
    settings: Settings, embedder: Embedder, rebuild: bool = False, progress: bool = True
) -> BuildReport:
    from qa.index import IndexProblem, build_index

    try:
        report = build_index(settings, embedder, progress=progress, rebuild=rebuild)
    except FileNotFoundError as exc:
        fail(str(exc))
    except IndexProblem as exc:
        fail(str(exc))
    except OSError as exc:  # e.g. the index folder cannot be created: say where, no traceback
        where = exc.filename or settings.index_dir
        fail(f"could not write the index in {settings.index_dir} ({where}: {exc.strerror or exc})")
    _summary(report, settings)
    engines = getattr(embedder, "engines", None)
    if engines and report.embedded:  # which engine embedded, on which matrix units
        click.echo("engines: " + "; ".join(f"{k}: {v}" for k, v in engines.items()), err=True)
    return report


def _summary(report: BuildReport, settings: Settings) -> None:
    """Every skipped file and every warning, each named (escaped: a name cannot forge a line
    or carry a terminal escape), the files per format, then one line of figures."""
    from qa.sources import shown

    for s in report.skipped:
        click.secho(f"warning: skipped {shown(s.path)}: {s.reason}", fg="yellow", err=True)
    for path, warning in report.warnings:
        click.secho(f"warning: {shown(path)}: {warning}", fg="yellow", err=True)
    by_count = sorted(report.formats.items(), key=lambda item: (-item[1], item[0]))
    click.echo("indexed: " + ", ".join(f"{n} {fmt}" for fmt, n in by_count), err=True)
    if report.unmatched:
        click.secho(
            f"warning: files that no rule in {report.access_file} matches (visible to "
            f"nobody): {report.unmatched}",
            fg="yellow",
            err=True,
        )
    state = "updated" if report.changed else "already up to date"
    click.echo(
        f"index {state}: {report.sources} sources, {report.passages} passages "
        f"({report.embedded} embedded, {report.reused} reused, {len(report.removed)} removed, "
        f"{len(report.skipped)} skipped) in {report.seconds:.1f}s -> {settings.index_dir}",
        err=True,
    )


@click.group(
    cls=LazyGroup,
    lazy={
        "eval": "qa.eval.cli:eval_command",
        "feedback": "qa.feedback.cli:feedback_group",
        "train": "qa.train.cli:train_command",
    },
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
@click.version_option(package_name="qa")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Question-answering search over Norwegian public-sector documents.

    Settings come from QA_* environment variables (see the README); options override them.
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx.ensure_object(CliContext)


@cli.command("index")
@click.option("--sources", type=click.Path(path_type=Path), help="Source folder [sources/].")
@click.option(
    "--index", "index_dir", type=click.Path(path_type=Path), help="Index folder [index/]."
)
@click.option("--rebuild", is_flag=True, help="Re-embed every file, not only changed ones.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--ray", metavar="ADDRESS", help="Embed on this Ray cluster [QA_RAY_ADDRESS].")
def index_cmd(
    sources: Path | None, index_dir: Path | None, rebuild: bool, quiet: bool, ray: str | None
) -> None:
    """Index the sources folder: text, Markdown, PDF, Word, ODT and HTML files (only changed
    files are read and embedded again).

    Exits with status 3 when some files were skipped (each is named in a warning).
    """
    settings = settings_or_fail(sources_dir=sources, index_dir=index_dir, ray_address=ray)
    if not Path(settings.sources_dir).is_dir():
        fail(f"sources folder not found: {settings.sources_dir}")
    report = None if rebuild else _unchanged(settings)
    if report is None:
        embedder = embedder_or_fail(settings)
        if not settings.ray_address:  # its session loads while the build's modules import
            from qa.embedding.engines import prepare_passages

            prepare_passages(embedder)
        build = _build_on_ray if settings.ray_address else _build
        report = build(settings, embedder, rebuild=rebuild, progress=not quiet)
    if report.skipped:
        sys.exit(EXIT_SKIPPED)


def _build_on_ray(settings: Settings, embedder: Embedder, rebuild: bool, progress: bool) -> Any:
    """``_build`` with the passages embedded on the Ray cluster (``qa.index.ray_embed``)."""
    from qa.index.ray_embed import RayEmbedder, RayProblem

    try:
        cluster = RayEmbedder(settings, embedder)
    except RayProblem as exc:
        fail(str(exc))
    with cluster:
        return _build(settings, cluster, rebuild=rebuild, progress=progress)


def _unchanged(settings: Settings) -> BuildReport | None:
    """The report when no file changed, found without loading the model (seconds)."""
    from qa.cli_context import factory
    from qa.index import IndexProblem, up_to_date

    try:
        fingerprint = factory().expected_fingerprint(settings)
        report = up_to_date(settings, fingerprint) if fingerprint else None
    except (OSError, ValueError, IndexProblem):  # the full build says what is wrong
        return None
    if report is not None:
        _summary(report, settings)
    return report


@cli.command("serve")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder.")
@click.option(
    "--sources", type=click.Path(path_type=Path), help="Sources, to build a missing index."
)
@click.option("--host", help="Interface to listen on [127.0.0.1].")
@click.option("--port", type=int, help="Port [8000].")
@click.option(
    "--watch/--no-watch",
    default=None,
    help="Re-index when files in the sources folder change [QA_WATCH_SOURCES].",
)
def serve_cmd(
    index_dir: Path | None,
    sources: Path | None,
    host: str | None,
    port: int | None,
    watch: bool | None,
) -> None:
    """Serve the search API, the widget and the demo page (builds the index if missing).

    A damaged index, or one built with another model, is refused here with what to run.
    """
    from qa.embedding import configure_openmp
    from qa.embedding.batching import BatchingEmbedder

    configure_openmp()  # before qa.index loads faiss's OpenMP runtime (torch's comes later)
    from qa.index import IndexProblem, current_version
    from qa.retriever import LiveRetriever

    settings = settings_or_fail(
        index_dir=index_dir, sources_dir=sources, host=host, port=port, watch_sources=watch
    )
    note = _serve_notes(settings)
    embedder = embedder_or_fail(settings)
    if current_version(settings.index_dir) is None:
        if not settings.build_if_missing:
            fail(f"no index in {settings.index_dir}: run `qa index --index {settings.index_dir}`")
        note(f"no index in {settings.index_dir}: building it first")
        _build(settings, embedder)
    live = LiveRetriever(settings, BatchingEmbedder(embedder))
    try:
        live.start()
    except IndexProblem as exc:
        live.stop()  # start() left its poller running to wait for a build: not here
        fail(str(exc))
    from qa.api.app import run_server

    note(f"serving {settings.index_dir} on http://{settings.host}:{settings.port}")
    try:
        run_server(settings, live)
    except SystemExit as exc:  # uvicorn exits 3 when it cannot listen; 3 means "skipped" here
        if exc.code not in (None, 0):
            fail(f"could not serve on {settings.host}:{settings.port} (the reason is above)")
        raise


def _serve_notes(settings: Settings) -> Callable[[str], None]:
    """Where ``qa serve`` says what it does: stderr as text, or (``QA_LOG_FORMAT=json``)
    JSON log records like every other line it writes, configured before the model loads."""
    if settings.log_format != "json":
        return lambda message: click.echo(message, err=True)
    import logging.config

    from qa.api.logs import log_config

    logging.config.dictConfig(log_config(settings) or {})
    return logging.getLogger("qa.serve").info


@cli.command("ask")
@click.argument("question")
@click.option(
    "--k", "k", type=click.IntRange(min=1), help="Passages [QA_DEFAULT_K; at most QA_MAX_K]."
)
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of text.")
@access_options
def ask_cmd(
    question: str, k: int | None, index_dir: Path | None, as_json: bool, **access: Any
) -> None:
    """Ask a question in the terminal: the best passages, each with its citation (only of
    files a caller in ``--groups`` may see and the filters let through, when given)."""
    from qa.answer.show import marked_text
    from qa.index import IndexProblem
    from qa.retriever import Retriever

    if not question.strip():
        raise click.UsageError("the question is empty")
    caller, filters = caller_and_filters(access)
    settings = settings_or_fail(index_dir=index_dir)
    k = k_or_fail(k, settings)
    try:
        retriever = Retriever.load(settings.index_dir, settings, embedder_or_fail(settings))
        result = retriever.search(question, k, caller, filters)
    except IndexProblem as exc:
        fail(str(exc))
    if as_json:  # the API's own response model: one definition of the wire format
        from qa.api.schemas import SearchResponse

        click.echo(SearchResponse.from_result(result, retriever.version).model_dump_json(indent=2))
        return
    click.secho(f"{question}  [{result.language}]", bold=True)
    if not result.hits:
        click.echo("no passages found")
    for hit in result.hits:
        p = hit.passage
        click.echo()
        click.secho(
            f"{hit.rank}. {p.source}:{p.line_start}-{p.line_end} "
            f"[chars {p.start}-{p.end}]  score {hit.score:.4f}",
            fg="cyan",
        )
        click.secho(f"   {p.title}", dim=True)
        for line in marked_text(hit).splitlines():  # the answer span in bold
            click.echo(f"   {line}")


@cli.command("model")
@click.option("--force", is_flag=True, help="Convert again even if the cache has it.")
def model_cmd(force: bool) -> None:
    """Convert the bundled multilingual-e5-small weights to a sentence-transformers folder
    and export its ONNX query engine (once each; both cached)."""
    from qa.embedding.bundled import ensure_bundled_model

    settings = settings_or_fail()
    path = ensure_bundled_model(Path(settings.cache_dir), force=force)
    click.echo(f"model ready: {path}")
    engines = getattr(embedder_or_fail(settings), "engines", None)  # exports the query engine
    if engines:
        click.echo("engines: " + "; ".join(f"{k}: {v}" for k, v in engines.items()))


if __name__ == "__main__":
    cli()
