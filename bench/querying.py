"""Querying: latency and throughput of a real ``qa serve`` over HTTP, beside the bare model.

The server is a subprocess on 127.0.0.1 with ``QA_RATE_LIMIT=off`` (the bench sends far
more than a client's share from one address). Clients are asyncio tasks on one httpx
client, each sending the NorQuAD questions one after another (POST /search, k=5), so N
tasks keep N requests in flight. The bare model's time is ``embed_queries([question])`` in
this process while the server is idle, measured before and after the HTTP runs.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import ORIGINAL_ENV, Context, median, ms, percentile

CLIENTS = (1, 4, 16)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(index_dir: Path, log_path: Path, **env: str) -> tuple[subprocess.Popen, str]:
    """``qa serve`` on a free local port; returns once /health answers 200."""
    port = _free_port()
    qa_cmd = Path(sys.executable).with_name("qa")
    cmd = [str(qa_cmd), "serve", "--index", str(index_dir), "--host", "127.0.0.1"]
    cmd += ["--port", str(port)]
    full_env = ORIGINAL_ENV | {"HF_HUB_OFFLINE": "1", "QA_RATE_LIMIT": "off"} | env
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"qa serve exited ({proc.returncode}); see {log_path}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"qa serve did not become ready; see {log_path}")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM (graceful), SIGKILL after 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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


def run(ctx: Context) -> dict:
    """Server RSS, bare query time, and latency/throughput at 1, 4 and 16 clients."""
    import psutil

    index_dir = ctx.norquad_index()
    questions = [q["question"] for q in ctx.questions()]
    per_client = 15 if ctx.quick else 60
    n_bare = 30 if ctx.quick else 100
    embedder = ctx.embedder
    bare_query_ms(embedder, questions[:5])  # warm-up
    proc, url = start_server(index_dir, ctx.workdir / "serve.log")
    try:
        server = psutil.Process(proc.pid)
        rss_idle = server.memory_info().rss
        bare = bare_query_ms(embedder, questions[:n_bare])
        asyncio.run(_load(url, questions[-20:], 1, 10))  # warm-up (lazy loads in the server)
        rows = []
        for clients in CLIENTS:
            total = per_client * max(4, clients) if clients > 1 else per_client * 2
            rows.append(asyncio.run(_load(url, questions, clients, total)))
        bare += bare_query_ms(embedder, questions[:n_bare])
        rss_after = server.memory_info().rss
    finally:
        stop_server(proc)
    bare_ms = ms(median(bare))
    single = rows[0]
    top = rows[-1]
    return {
        "index_passages": _passages(index_dir),
        "rate_limit": "off (QA_RATE_LIMIT=off)",
        "bare_query_embed_ms": bare_ms,
        "levels": rows,
        "single_over_bare": round(single["p50_ms"] / bare_ms, 2),
        "target_single_over_bare": 1.5,
        "throughput_16_over_1": round(top["rps"] / single["rps"], 2),
        "target_throughput_16_over_1": 2.0,
        "server_rss_mb_idle": round(rss_idle / 2**20, 1),
        "server_rss_mb_after": round(rss_after / 2**20, 1),
    }


def _passages(index_dir: Path) -> int:
    import json

    manifest = json.loads((Path(index_dir) / "current" / "manifest.json").read_text())
    return int(manifest["passages"])
