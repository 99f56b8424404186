"""Which embedder a command or the server gets: injected, so tests pass a fake one in.

The CLI (``cli(obj=CliContext(factory))``) and ``create_app(..., embedder_factory=...)``
take an ``EmbedderFactory``; the default one loads the configured model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.types import Embedder


class EmbedderFactory(Protocol):
    """Makes the embedder that ``settings`` asks for."""

    def load(self, settings: Settings) -> Embedder:
        """The loaded model; raises ``EmbedderError`` with what to change."""
        ...

    def expected_fingerprint(self, settings: Settings) -> str | None:
        """The fingerprint ``load`` would report, when known without loading the model."""
        ...


class ModelFactory:
    """The real one: the model ``settings.model`` names, on ``settings.backend``."""

    def load(self, settings: Settings) -> Embedder:
        from qa.embedding.core import load_embedder

        return load_embedder(settings)

    def expected_fingerprint(self, settings: Settings) -> str | None:
        from qa.embedding.core import expected_fingerprint

        return expected_fingerprint(settings)
