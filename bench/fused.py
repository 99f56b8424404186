"""The light engine's graph fused against the plain one (``qa.embedding.onnx.fuse_graph``).

    python -m bench.fused [--rounds 3] [--out bench/results/fused.json]

Exports the model twice into a temporary folder, as ``export_engine`` does (the plain
graph, and the eager trace rewritten with ONNX Runtime's fused transformer kernels), then
embeds the same NorQuAD texts with both, alternating (plain, fused, fused, plain) so a
neighbour's load hits both alike: passages as a build embeds them (every core, calls by
padded tokens), answer-span sentences, and single questions on one thread as the server
runs them. Also the lowest cosine of each graph to PyTorch float32 and to each other.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.batches import _texts
from bench.common import NORQUAD, load, machine, median


def _reference(settings: Any) -> tuple[Any, Any]:
    """(the sentence-transformers model, the PyTorch float32 embedder over it), loaded once
    for both exports (the trace puts the model's own attention back after)."""
    from sentence_transformers import SentenceTransformer

    from qa.embedding.factory import resolve_model
    from qa.embedding.fingerprint import model_fingerprint
    from qa.embedding.torch import TorchEmbedder

    location = resolve_model(settings)
    st = SentenceTransformer(location, device="cpu")
    return st, TorchEmbedder(settings, st, model_fingerprint(settings, location, st))


def _export(settings: Any, st: Any, reference: Any, fuse: bool, folder: Path) -> tuple[Any, float]:
    """(light engine, export seconds) for one recipe."""
    from qa.embedding import light

    folder.mkdir()
    t0 = time.perf_counter()
    cosine, _ = light._export(settings, st, reference, folder, fuse)
    seconds = time.perf_counter() - t0
    if cosine < light.MIN_COSINE:
        raise SystemExit(f"the {'fused' if fuse else 'plain'} export disagrees: {cosine}")
    return light.LightEmbedder(settings, folder), seconds


def _lowest(a: np.ndarray, b: np.ndarray) -> float:
    return round(float((a * b).sum(axis=1).min()), 7)


def run(rounds: int) -> dict:
    from qa.config import Settings

    settings = Settings()
    questions = [json.loads(line)["question"] for line in (NORQUAD / "gold.jsonl").open()]
    with tempfile.TemporaryDirectory(prefix="qa-fused-") as tmp:
        st, reference = _reference(settings)
        plain, plain_s = _export(settings, st, reference, False, Path(tmp) / "plain")
        fused, fused_s = _export(settings, st, reference, True, Path(tmp) / "fused")
        texts = _texts(fused)
        engines = {"plain": plain, "fused": fused}
        out: dict[str, Any] = {
            "export_seconds": {"plain": round(plain_s, 1), "fused": round(fused_s, 1)},
            "fused_ops": json.loads((Path(tmp) / "fused" / "engine.json").read_text())["fused"],
        }
        sample = questions[:200]
        for kind, batch in (*texts.items(), ("questions", sample)):
            side = "embed_queries" if kind == "questions" else "embed_passages"
            vectors = {name: getattr(e, side)(batch) for name, e in engines.items()}
            want = getattr(reference, side)(batch)
            out[f"{kind}_lowest_cosine"] = {
                "plain_to_pytorch": _lowest(vectors["plain"], want),
                "fused_to_pytorch": _lowest(vectors["fused"], want),
                "fused_to_plain": _lowest(vectors["fused"], vectors["plain"]),
            }
        for kind, batch in texts.items():  # a build's calls: every core
            seconds: dict[str, list[float]] = {"plain": [], "fused": []}
            for _ in range(rounds):
                for name in ("plain", "fused", "fused", "plain"):
                    t0 = time.perf_counter()
                    engines[name].embed_passages(batch)
                    seconds[name].append(time.perf_counter() - t0)
            rate = {n: len(batch) / median(s) for n, s in seconds.items()}
            out[kind] = {
                "texts": len(batch),
                "plain_per_s": round(rate["plain"], 2),
                "fused_per_s": round(rate["fused"], 2),
                "fused_over_plain": round(rate["fused"] / rate["plain"], 3),
            }
        single: dict[str, list[float]] = {"plain": [], "fused": []}
        for _ in range(rounds):  # the server's calls: one question, one thread
            for question in sample:
                for name in ("plain", "fused"):
                    t0 = time.perf_counter()
                    engines[name].embed_queries([question])
                    single[name].append(time.perf_counter() - t0)
        ms = {n: median(s) * 1000 for n, s in single.items()}
        out["one_question"] = {
            "questions": len(sample) * rounds,
            "plain_ms": round(ms["plain"], 2),
            "fused_ms": round(ms["fused"], 2),
            "plain_over_fused": round(ms["plain"] / ms["fused"], 3),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/fused.json"))
    args = parser.parse_args()
    started = load()
    result = {"machine": machine(), "load_start": started, **run(args.rounds)}
    result["load_end"] = load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
