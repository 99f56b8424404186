"""``qa feedback``: export the votes as a gold set, print statistics, delete old entries.

The file is ``--db``, else ``QA_FEEDBACK_DB``, else ``feedback.sqlite3`` beside the index
folder (``QA_INDEX_DIR``). Opening it deletes entries older than ``QA_FEEDBACK_DAYS``, so
nothing expired is ever exported. Exit status 1 with the file named when it cannot be used.
"""

from __future__ import annotations

from pathlib import Path

import click

from qa.cli_context import fail, settings_or_fail
from qa.feedback.store import FeedbackError, FeedbackStore, feedback_path

DB = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Feedback file [QA_FEEDBACK_DB; feedback.sqlite3 beside the index folder].",
)


def _store(db: Path | None, days: int | None = None) -> FeedbackStore:
    """The store of an existing file (a missing one is an error: nothing to read)."""
    settings = settings_or_fail(feedback_db=db)
    path = feedback_path(settings)
    if not path.is_file():
        fail(f"no feedback database at {path} (set QA_FEEDBACK_DB or --db)")
    return FeedbackStore(path, days if days is not None else settings.feedback_days)


@click.group("feedback")
def feedback_group() -> None:
    """Votes from the widget (POST /feedback): gold set, statistics, deletion."""


@feedback_group.command("export")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON Lines file to write (the gold format of `qa eval --gold`).",
)
@DB
def export_cmd(out: Path, db: Path | None) -> None:
    """Write up-voted spans as gold questions and "none" votes as unanswerable ones."""
    from qa.feedback.export import write_gold

    store = _store(db)
    try:
        report = write_gold(store.entries(), out)
    except FeedbackError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    for line in report.lines():
        click.echo(line, err=True)
    click.echo(f"-> {out} (run: qa eval --gold {out} --sources <folder>)", err=True)


@feedback_group.command("stats")
@DB
def stats_cmd(db: Path | None) -> None:
    """Votes per kind, the share of searches with no click, questions with no good answer."""
    from qa.feedback.stats import compute

    store = _store(db)
    try:
        stats = compute(store.entries(), store.searches())
    except FeedbackError as exc:
        fail(str(exc))
    click.echo(f"feedback in {store.path} (last {store.days} days)")
    for line in stats.lines():
        click.echo(line)


@feedback_group.command("purge")
@click.option(
    "--older-than-days",
    type=click.IntRange(min=0),
    help="Delete entries older than this [QA_FEEDBACK_DAYS].",
)
@click.option("--all", "everything", is_flag=True, help="Delete every entry.")
@click.option("--yes", is_flag=True, help="Do not ask before --all.")
@DB
def purge_cmd(older_than_days: int | None, everything: bool, yes: bool, db: Path | None) -> None:
    """Delete old feedback now (a server also does it on start and every hour)."""
    if everything and older_than_days is not None:
        raise click.UsageError("give --older-than-days or --all, not both")
    store = _store(db, days=older_than_days)
    if everything and not yes:
        click.confirm(f"Delete all feedback in {store.path}?", abort=True)
    try:
        store.purge(everything=everything)  # opening it applies the retention first
    except FeedbackError as exc:
        fail(str(exc))
    which = "all" if everything else f"older than {store.days} days:"
    click.echo(f"deleted {which} {store.deleted} entries from {store.path}")
