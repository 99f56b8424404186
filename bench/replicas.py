#!/usr/bin/env python
"""Throughput of one against two ``qa serve`` replicas over one index folder.

    python -m bench.replicas                   # 16 clients, 20 s a round, 4 rounds
    python -m bench.replicas --duration 30 --out bench/results/replicas.json

It indexes the seed sources once (``qa index``), starts two real servers on that one folder
(127.0.0.1, free ports, ``QA_RATE_LIMIT=off``: every client is 127.0.0.1), then alternates
rounds: all clients on replica A; the clients split over A and B (round-robin, what a load
balancer does); again split; again A alone. Each client is ``bench.loadtest``'s loop (GET
and POST in turn over the gold questions). Reported per round: requests/s, p50/p95, errors;
and the median 2-replica / 1-replica ratio. Both servers run in every round (the idle one
costs nothing but memory), so only where the clients' requests go differs. On a machine
with fewer cores than replicas × what one replica uses, the ratio stays near 1: the
replicas share the cores (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loadtest import ROOT, Sample, client_loop, latency_summary, load_queries
from tests.support.server import QA, qa_env, qa_serve


def one_round(urls: list[str], clients: int, duration_s: float, queries: list[str]) -> dict:
    """``clients`` loops for ``duration_s``, client n on ``urls[n % len(urls)]``."""
    stop = threading.Event()
    samples: list[list[Sample]] = [[] for _ in range(clients)]
    t0 = time.monotonic()
    threads = [
        threading.Thread(
            target=client_loop,
            args=(n, urls[n % len(urls)], queries, t0, stop, 60.0, samples[n]),
            daemon=True,
        )
        for n in range(clients)
    ]
    for t in threads:
        t.start()
    time.sleep(duration_s)
    stop.set()
    for t in threads:
        t.join(timeout=90)
    elapsed = time.monotonic() - t0
    done = [s for per in samples for s in per]
    errors = [s for s in done if s.error is not None]
    return {
        "replicas": len(urls),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(done) / elapsed, 2),
        "errors": len(errors),
        "5xx": sum(1 for s in errors if s.status >= 500),
        **latency_summary(done),
    }


def run(clients: int, duration_s: float, sources: Path) -> dict[str, Any]:
    """Index ``sources`` once, start two replicas, alternate 1 / 2 / 2 / 1 replica rounds."""
    queries = load_queries(ROOT / "eval" / "gold.jsonl")
    with tempfile.TemporaryDirectory(prefix="qa-replicas-") as tmp:
        work = Path(tmp)
        src, index = work / "sources", work / "index"
        shutil.copytree(sources, src)
        env = qa_env(QA_RATE_LIMIT="off")
        built = subprocess.run(
            [*QA, "index", "--sources", str(src), "--index", str(index), "--quiet"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if built.returncode != 0:
            raise RuntimeError(f"qa index failed: {built.stderr[-2000:]}")
        with contextlib.ExitStack() as stack:
            servers = [
                stack.enter_context(qa_serve(index, src, env=env, cwd=work)) for _ in range(2)
            ]
            urls = [s.url for s in servers]
            one_round(urls, clients, 3, queries)  # warm both (first requests load lazily)
            rounds = []
            for n in (1, 2, 2, 1):
                r = one_round(urls[:n], clients, duration_s, queries)
                print(f"  {r}", flush=True)
                rounds.append(r)
    by = {n: [r["requests_per_s"] for r in rounds if r["replicas"] == n] for n in (1, 2)}
    return {
        "clients": clients,
        "round_s": duration_s,
        "rounds": rounds,
        "ratio_2_over_1": round(statistics.median(by[2]) / statistics.median(by[1]), 3),
        "errors": sum(r["errors"] for r in rounds),
    }


def main(argv: list[str] | None = None) -> int:
    from bench.common import machine

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--duration", type=float, default=20.0, help="seconds a round (<= 300)")
    p.add_argument("--sources", type=Path, default=ROOT / "sources")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "replicas.json")
    args = p.parse_args(argv)
    if not (1 <= args.clients <= 64 and 0 < args.duration <= 300):
        p.error("clients 1..64, duration (0, 300]")
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    result = run(args.clients, args.duration, args.sources)
    out: dict[str, Any] = {"command": "python -m bench.replicas " + " ".join(argv or [])}
    out["started"] = started
    out |= {"machine": machine(), "replicas": result}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"2 replicas / 1: {result['ratio_2_over_1']} ({result['errors']} errors); {args.out}")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
