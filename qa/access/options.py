"""``--groups`` and the filter options of ``qa ask`` and ``qa eval``: search as a given
group would, so quality can be measured for what that group may see."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from qa.access.caller import Caller
from qa.access.filters import Filters
from qa.access.globs import compile_glob

F = TypeVar("F", bound=Callable[..., Any])
_DAY = click.DateTime(formats=["%Y-%m-%d"])
_NAMES = ("groups", "source", "format_", "language", "modified_after", "modified_before")


def access_options(command: F) -> F:
    """Add the options; the command reads them back with ``caller_and_filters``."""
    options = [
        click.option(
            "--groups",
            help="Search as a caller in these groups (comma-separated; '' = anonymous). "
            "Without it: no access check.",
        ),
        click.option("--source", multiple=True, help="Only files matching this glob (repeat)."),
        click.option("--format", "format_", multiple=True, help="Only this format (pdf, ...)."),
        click.option("--language", multiple=True, help="Only files in this language (nb, en)."),
        click.option("--modified-after", type=_DAY, help="Modified on or after this day."),
        click.option("--modified-before", type=_DAY, help="Modified before this day."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def caller_and_filters(values: dict[str, Any]) -> tuple[Caller | None, Filters]:
    """Pop the options' values from a command's keyword arguments."""
    groups, source, formats, languages, after, before = (values.pop(n, None) for n in _NAMES)
    for glob in source or ():
        try:
            compile_glob(glob)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--source") from exc
    caller = None
    if groups is not None:
        names = frozenset(g.strip() for g in groups.split(",") if g.strip())
        caller = Caller("cli", names)
    filters = Filters(
        tuple(source or ()),
        tuple(formats or ()),
        tuple(languages or ()),
        _day(after),
        _day(before),
    )
    return caller, filters


def _day(value: datetime | None) -> Any:
    return value.date() if value is not None else None
