"""Text -> L2-normalised vectors, behind one interface whatever runs the model."""

from qa.embedding.core import (
    BaseEmbedder,
    EmbedderError,
    ModelLoadError,
    ModelNotFoundError,
    _digest,
    bundled_fingerprint,
    expected_fingerprint,
    folder_fingerprint,
    load_embedder,
    resolve_model,
)

__all__ = [
    "BaseEmbedder",
    "EmbedderError",
    "ModelLoadError",
    "ModelNotFoundError",
    "_digest",
    "bundled_fingerprint",
    "expected_fingerprint",
    "folder_fingerprint",
    "load_embedder",
    "resolve_model",
]
