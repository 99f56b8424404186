"""The benchmark, one command: indexing, reading formats, querying, FAISS at scale, a peer.

    python -m bench.run                       # everything: about 10 minutes on 2 cores
    python -m bench.run --quick               # smoke run: small data, a few minutes
    python -m bench.run --only querying,peer  # some parts
    python -m bench.run --only reading        # PDF/DOCX/ODT/HTML/MD reading vs `qa index`

Prints a Markdown table and writes every number to bench/results/bench.json (--out).
Parts run in the order indexing, reading, querying, peer, scale and share one loaded model
and one NorQuAD index (built by the indexing part, else a cached one under QA_CACHE_DIR/bench).
A part that fails is recorded as failed and the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py` as well as `python -m bench.run`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, Context, load, machine, workdir

PARTS = ("indexing", "reading", "querying", "cold", "peer", "scale", "access", "ray")


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)}")
    p.add_argument("--quick", action="store_true", help="smoke run on small data")
    p.add_argument("--out", type=Path, default=None, help="JSON file [bench/results/bench.json]")
    p.add_argument("--repeats", type=int, default=2, help="runs of bare and pipeline each")
    p.add_argument("--sizes", default=None, help="scale sizes, e.g. 10000,100000,1000000")
    p.add_argument("--types", default="flat,hnsw,ivf", help="scale index types")
    args = p.parse_args(argv)
    args.parts = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        p.error(f"unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}")
    if args.out is None:
        name = "bench-quick.json" if args.quick else "bench.json"
        args.out = ROOT / "bench" / "results" / name
    return args


def _git() -> str:
    """The commit measured, marked dirty when the tree had changes (read-only git calls)."""
    import subprocess

    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return proc.stdout.strip()

    return git("rev-parse", "--short", "HEAD") + (" (dirty)" if git("status", "--short") else "")


def _run_part(name: str, ctx: Context, args: argparse.Namespace) -> dict:
    if name == "indexing":
        from bench import indexing

        return indexing.run(ctx, repeats=args.repeats)
    if name == "reading":
        from bench import reading

        return reading.run(ctx, repeats=args.repeats)
    if name == "querying":
        from bench import querying

        return querying.run(ctx)
    if name == "cold":
        from bench import coldstart

        return coldstart.run(ctx)
    if name == "peer":
        from bench import peer

        return peer.run(ctx)
    if name == "access":
        from bench import access

        return access.run(ctx)
    if name == "ray":  # a local two-node Ray cluster against one (bench/ray_embed.py)
        from bench import ray_embed

        return ray_embed.run(ctx)
    from bench import scale

    sizes = tuple(int(x) for x in args.sizes.split(",")) if args.sizes else None
    return scale.run(ctx, sizes, tuple(args.types.split(",")))


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from bench.report import table

    command = "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])
    out: dict = {"command": command.strip(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with workdir() as tmp:
        ctx = Context(quick=args.quick, workdir=tmp)
        out["machine"] = machine()
        for name in (p for p in PARTS if p in args.parts):
            print(f"== {name} (load {load()})", flush=True)
            t0 = time.perf_counter()
            try:
                ctx.results[name] = _run_part(name, ctx, args)
            except Exception as exc:  # record it; the other parts still run
                traceback.print_exc()
                ctx.results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            ctx.results[name]["seconds"] = round(time.perf_counter() - t0, 1)
            ctx.results[name]["loadavg_end"] = load()
    out |= ctx.results
    if ctx._embedder is not None:
        out["machine"]["model"] = repr(ctx._embedder)
    out["machine"]["git"] = _git()
    out["machine"]["loadavg_end"] = load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table(out))
    print(f"\nwritten {args.out}")
    return 1 if any("error" in ctx.results[p] for p in ctx.results) else 0


if __name__ == "__main__":
    sys.exit(main())
