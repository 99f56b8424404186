"""What every ``qa`` command shares: settings from the environment, the embedder factory
(injected: tests pass a fake one as ``obj``), and failing with a message, not a traceback."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.embedding.factory import EmbedderFactory
    from qa.types import Embedder


def default_factory() -> EmbedderFactory:
    from qa.embedding.factory import ModelFactory

    return ModelFactory()


@dataclass
class CliContext:
    """What the commands share: the embedder factory (tests pass a fake one as ``obj``)."""

    embedder_factory: EmbedderFactory = field(default_factory=default_factory)


def factory() -> EmbedderFactory:
    ctx = click.get_current_context()
    obj = ctx.find_object(CliContext)
    return obj.embedder_factory if obj is not None else default_factory()


def settings_or_fail(**overrides: Any) -> Settings:
    """Settings from the environment, with the options the user gave on top."""
    from pydantic import ValidationError

    from qa.config import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise click.UsageError(f"invalid setting: {exc}") from exc


def k_or_fail(k: int | None, settings: Settings) -> int:
    """``--k`` checked against the server's limit (``QA_MAX_K``); ``QA_DEFAULT_K`` if absent."""
    if k is None:
        return settings.default_k
    if not 1 <= k <= settings.max_k:
        message = f"{k} is not between 1 and {settings.max_k} (the largest k, QA_MAX_K)"
        raise click.BadParameter(message, param_hint="'--k'")
    return k


def fail(message: str) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)


def embedder_or_fail(settings: Settings) -> Embedder:
    try:
        return factory().load(settings)
    except Exception as exc:  # the message names the model; a traceback helps nobody here
        fail(f"could not load the model {settings.model!r}: {exc}")
