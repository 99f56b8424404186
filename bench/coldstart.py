"""Cold commands: what a fresh process costs before it answers.

- ``qa ask`` on the NorQuAD index as a fresh process (median of 3);
- ``qa serve`` from spawn to ``/health`` 200 (median of 2);
- the first ``qa eval`` (NorQuAD, 472 questions) after set-up: numba's cache emptied into a
  new ``NUMBA_CACHE_DIR``, then ``python -m qa.eval.warm`` as ``scripts/setup.sh`` runs it,
  then ``qa eval`` timed; and ``qa eval`` once more with no warm-up in another empty cache
  (what a user paid before set-up warmed it).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ORIGINAL_ENV, Context, median
from bench.querying import serving

QA = [sys.executable, "-m", "qa.cli"]
QUESTION = "Hvem vedtar budsjettet i kommunen?"


def _timed_run(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
    seconds = time.perf_counter() - t0
    if out.returncode not in (0, 3):
        raise RuntimeError(f"{' '.join(args)} failed ({out.returncode}): {out.stderr[-2000:]}")
    return seconds


def run(ctx: Context) -> dict:
    index_dir = ctx.norquad_index()
    env = ORIGINAL_ENV | {"HF_HUB_OFFLINE": "1"}
    ask = [_timed_run([*QA, "ask", QUESTION, "--index", str(index_dir)], env) for _ in range(3)]
    serve: list[float] = []
    for _ in range(2):
        t0 = time.perf_counter()
        with serving(index_dir, ctx.workdir / "cold-serve.log"):
            serve.append(time.perf_counter() - t0)
    evals: dict[str, float] = {}
    gold = str(ctx.gold)
    for warmed in (True, False):
        with tempfile.TemporaryDirectory(prefix="numba-", dir=ctx.workdir) as cache:
            cold = env | {"NUMBA_CACHE_DIR": cache}
            if warmed:
                evals["warm_up_s"] = round(
                    _timed_run([sys.executable, "-m", "qa.eval.warm"], cold), 2
                )
            key = "first_eval_after_setup_s" if warmed else "first_eval_without_warm_up_s"
            out = Path(cache) / "reports"
            command = [*QA, "eval", "--gold", gold, "--index", str(index_dir), "--quiet"]
            evals[key] = round(_timed_run([*command, "--out", str(out)], cold), 2)
    return {
        "index": str(Path(index_dir)),
        "ask_s": [round(x, 2) for x in ask],
        "ask_median_s": round(median(ask), 2),
        "serve_ready_s": [round(x, 2) for x in serve],
        "serve_ready_median_s": round(median(serve), 2),
        **evals,
        "target_first_eval_s": 25,
    }
