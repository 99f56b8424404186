#!/usr/bin/env python
"""Load test: concurrent clients against a real ``qa serve``, optionally re-indexing mid-load.

    python -m bench.loadtest                        # 16 clients, 60 s
    python -m bench.loadtest --reindex --out r.json

It copies the sources (default: the seeds) to a temporary folder, starts ``qa serve`` on
127.0.0.1 (a free port; it builds the index) with ``QA_RATE_LIMIT=off`` (all clients share
one address, so the per-client limit would otherwise be what is measured), then runs the
clients: each loops over the gold questions (``eval/gold.jsonl``), GET and POST in turn, and
every answer that is not a 200 with a result list counts as an error.

``--reindex``: at ``--reindex-at`` seconds a new source file with a unique word is written
and ``qa index`` runs (a subprocess) on the same index folder while the load goes on; a
probe asks for the word every 0.2 s. Reported: whether any request failed across the swap,
and the seconds from the end of ``qa index`` to the first answer citing the new passage.
The load is extended (at most ``--max-wait`` s) until that answer comes.

Everything is bounded: clients <= 64, duration <= 600 s, the wait <= 600 s, every request
has a timeout, and the server is stopped at the end. Exit status 0 when there were no
errors (and, with --reindex, the new passage was served), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):  # `python bench/loadtest.py` as well as `python -m bench.loadtest`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.server import QA, Server, free_port, qa_env, serve_args, start, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
MAX_CLIENTS = 64
MAX_SECONDS = 600
FALLBACK_QUERIES = [
    "Hva heter kulturprosjektet til KS?",
    "Hvem ledet konsultasjonsmøtet?",
    "kulturskole i kommunene",
    "Who chaired the consultation meeting?",
]


@dataclass
class LoadConfig:
    """What to run; the defaults are the issue's 16 clients for 60 seconds."""

    clients: int = 16
    duration_s: float = 60.0
    reindex: bool = False
    reindex_at_s: float | None = None  # default: a quarter into the run
    max_wait_s: float = 180.0  # extra load time allowed until the new passage is served
    sources: Path = ROOT / "sources"
    gold: Path = ROOT / "eval" / "gold.jsonl"
    workdir: Path | None = None  # default: a temporary folder, removed afterwards
    request_timeout_s: float = 60.0
    server_start_timeout_s: float = 600.0
    reload_interval_s: float = 2.0
    out: Path | None = None

    def check(self) -> None:
        """Refuse unbounded runs: this tool must stop by itself."""
        if not 1 <= self.clients <= MAX_CLIENTS:
            raise ValueError(f"clients must be 1..{MAX_CLIENTS}")
        for name in ("duration_s", "max_wait_s", "request_timeout_s"):
            if not 0 < getattr(self, name) <= MAX_SECONDS:
                raise ValueError(f"{name} must be in (0, {MAX_SECONDS}]")


@dataclass
class Sample:
    """One request: when it started (s since the load began), how long, how it ended."""

    t: float
    ms: float
    status: int  # 0: no HTTP answer (connection error, timeout)
    error: str | None
    version: str | None


@dataclass
class Reindex:
    """What the re-index did and when (seconds since the load began)."""

    word: str
    file: str
    started_s: float | None = None
    ended_s: float | None = None
    returncode: int | None = None
    output_tail: str = ""
    swapped_s: float | None = None  # when `current` pointed at the new build
    first_served_s: float | None = None
    probe_errors: list[str] = field(default_factory=list)

    @property
    def served_after_s(self) -> float | None:
        """From the end of `qa index` to the first answer citing the new passage."""
        if self.ended_s is None or self.first_served_s is None:
            return None
        return round(self.first_served_s - self.ended_s, 3)

    @property
    def served_after_swap_s(self) -> float | None:
        """From the atomic swap of `current` to the first answer citing the new passage."""
        if self.swapped_s is None or self.first_served_s is None:
            return None
        return round(self.first_served_s - self.swapped_s, 3)


def load_queries(gold: Path) -> list[str]:
    try:
        rows = [json.loads(x) for x in gold.read_text("utf-8").splitlines() if x.strip()]
        return [r["question"] for r in rows if r.get("question")] or FALLBACK_QUERIES
    except (OSError, ValueError, KeyError):
        return FALLBACK_QUERIES


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return round(ordered[rank - 1], 1)


def latency_summary(samples: list[Sample]) -> dict[str, Any]:
    ms = [s.ms for s in samples if s.error is None]
    return {
        "requests": len(samples),
        "ok": len(ms),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "max_ms": round(max(ms), 1) if ms else None,
        "mean_ms": round(statistics.fmean(ms), 1) if ms else None,
    }


def start_server(cfg: LoadConfig, work: Path) -> Server:
    """``qa serve`` of ``work/index`` and ``work/sources`` (it builds the index), not waited
    for; the rate limit is off because every client is 127.0.0.1."""
    port = free_port()
    env = qa_env(QA_RATE_LIMIT="off", QA_RELOAD_INTERVAL_S=str(cfg.reload_interval_s))
    command = [*QA, *serve_args(work / "index", work / "sources", port)]
    url = f"http://127.0.0.1:{port}"
    return start(command, url, log=work / "qa-serve.log", env=env, cwd=work)


def check_answer(r: httpx.Response) -> str | None:
    """None for a good answer, else a short description of what was wrong."""
    if r.status_code != 200:
        return f"HTTP {r.status_code}: {r.text[:200]}"
    try:
        body = r.json()
    except ValueError:
        return "200 without JSON"
    if not isinstance(body.get("results"), list):
        return "200 without a result list"
    return None


def client_loop(
    n: int,
    url: str,
    queries: list[str],
    t0: float,
    stop: threading.Event,
    timeout_s: float,
    out: list[Sample],
) -> None:
    """One client: requests back to back until ``stop``; every outcome is recorded."""
    rng = random.Random(n)
    i = n
    with httpx.Client(base_url=url, timeout=timeout_s) as http:
        while not stop.is_set():
            query = queries[i % len(queries)]
            k = rng.randint(1, 10)
            start = time.monotonic()
            status, error, version = 0, None, None
            try:
                if i % 2:
                    r = http.post("/search", json={"query": query, "k": k})
                else:
                    r = http.get("/search", params={"q": query, "k": k})
                status, error = r.status_code, check_answer(r)
                if error is None:
                    version = r.json().get("index_version")
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            out.append(
                Sample(start - t0, (time.monotonic() - start) * 1000, status, error, version)
            )
            i += 1


def reindex_run(
    cfg: LoadConfig, url: str, work: Path, state: Reindex, t0: float, stop: threading.Event
) -> None:
    """Add a file with a unique word, run `qa index` on the served folder, probe for the word."""
    at = cfg.reindex_at_s if cfg.reindex_at_s is not None else cfg.duration_s / 4
    if stop.wait(max(0.0, t0 + at - time.monotonic())):
        return
    text = (
        f"Lasttest {state.word}\n\nKommunen innfører en ny ordning kalt {state.word} for "
        "brøyting av gang- og sykkelveier om vinteren. Ordningen gjelder fra neste sesong."
    )
    sources, index = work / "sources", work / "index"
    (sources / state.file).write_text(text, encoding="utf-8")
    cmd = [*QA, "index", "--quiet", "--sources", str(sources), "--index", str(index)]
    prober = threading.Thread(target=probe, args=(url, state, t0, stop), daemon=True)
    watcher = threading.Thread(target=watch_swap, args=(index, state, t0, stop), daemon=True)
    state.started_s = time.monotonic() - t0
    prober.start()
    watcher.start()
    try:
        done = subprocess.run(
            cmd, cwd=work, env=qa_env(), capture_output=True, text=True,
            errors="replace", timeout=MAX_SECONDS, check=False,
        )  # fmt: skip
        state.returncode = done.returncode
        state.output_tail = done.stderr[-2000:]
    except subprocess.TimeoutExpired:
        state.returncode = -1
        state.output_tail = "qa index timed out"
    state.ended_s = time.monotonic() - t0
    prober.join()
    watcher.join()


def watch_swap(index: Path, state: Reindex, t0: float, stop: threading.Event) -> None:
    """Note when `current` starts pointing at another build (one readlink every 20 ms)."""

    def target() -> str | None:
        try:
            return os.readlink(index / "current")
        except OSError:
            return None

    before = target()
    while True:
        ended = state.ended_s is not None  # read first: a swap before the end is still seen
        if target() != before:
            state.swapped_s = time.monotonic() - t0
            return
        if ended or stop.wait(0.02):
            return


def probe(url: str, state: Reindex, t0: float, stop: threading.Event) -> None:
    """Ask for the new word every 0.2 s until an answer cites it (or the run ends)."""
    with httpx.Client(base_url=url, timeout=30) as http:
        while not stop.is_set():
            try:
                r = http.get("/search", params={"q": state.word, "k": 3})
                if r.status_code != 200:
                    state.probe_errors.append(f"HTTP {r.status_code}")
                elif any(state.word in hit["text"] for hit in r.json()["results"]):
                    state.first_served_s = time.monotonic() - t0
                    return
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                state.probe_errors.append(f"{type(exc).__name__}: {exc}")
            stop.wait(0.2)


def run(cfg: LoadConfig) -> dict[str, Any]:
    """Run the whole test and return the report (also written to ``cfg.out``)."""
    cfg.check()
    own_work = cfg.workdir is None
    work = Path(tempfile.mkdtemp(prefix="qa-load-")) if cfg.workdir is None else cfg.workdir
    work.mkdir(parents=True, exist_ok=True)
    shutil.copytree(cfg.sources, work / "sources", dirs_exist_ok=True)
    queries = load_queries(cfg.gold)
    server = start_server(cfg, work)
    samples: list[list[Sample]] = [[] for _ in range(cfg.clients)]
    state = Reindex(word=f"zq{uuid.uuid4().hex[:10]}", file=f"lasttest-{uuid.uuid4().hex[:6]}.txt")
    stop = threading.Event()
    extended = False
    try:
        started = time.monotonic()
        wait_healthy(server, cfg.server_start_timeout_s, poll_s=0.5)
        startup_s = time.monotonic() - started
        with httpx.Client(base_url=server.url, timeout=cfg.request_timeout_s) as http:
            for q in queries[:3]:  # warm-up, not counted
                http.get("/search", params={"q": q})
        t0 = time.monotonic()
        threads = [
            threading.Thread(
                target=client_loop,
                args=(n, server.url, queries, t0, stop, cfg.request_timeout_s, samples[n]),
                daemon=True,
            )
            for n in range(cfg.clients)
        ]
        if cfg.reindex:
            threads.append(
                threading.Thread(
                    target=reindex_run,
                    args=(cfg, server.url, work, state, t0, stop),
                    daemon=True,
                )
            )
        for t in threads:
            t.start()
        deadline = t0 + cfg.duration_s
        stop.wait(max(0.0, deadline - time.monotonic()))
        if cfg.reindex and state.first_served_s is None:
            extended = True  # keep the load on until the new passage is served (bounded)
            hard = deadline + cfg.max_wait_s
            while state.first_served_s is None and time.monotonic() < hard:
                if state.returncode not in (None, 0, 3):
                    break  # the re-index failed: the word will never come
                stop.wait(0.2)
            stop.wait(1.0)  # a little load after the swap too
        stop.set()
        for t in threads:
            t.join(timeout=cfg.request_timeout_s + 30)
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        server_rc = server.stop()
    log_text = server.output()
    report = build_report(cfg, samples, state, elapsed, startup_s, extended, server_rc, log_text)
    if cfg.out:
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    if own_work:
        shutil.rmtree(work, ignore_errors=True)
    return report


def build_report(
    cfg: LoadConfig,
    per_client: list[list[Sample]],
    state: Reindex,
    elapsed: float,
    startup_s: float,
    extended: bool,
    server_rc: int | None,
    log_text: str,
) -> dict[str, Any]:
    samples = sorted((s for c in per_client for s in c), key=lambda s: s.t)
    errors = [s for s in samples if s.error is not None]
    statuses: dict[str, int] = {}
    for s in samples:
        statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
    report: dict[str, Any] = {
        "config": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in asdict(cfg).items()
            if k not in ("out",)
        },
        "rate_limit": "off (QA_RATE_LIMIT=off: every client is 127.0.0.1)",
        "server_startup_s": round(startup_s, 1),
        "load_seconds": round(elapsed, 1),
        "extended_for_reindex": extended,
        "throughput_rps": round(len(samples) / elapsed, 1) if elapsed else None,
        "errors": len(errors),
        "error_samples": [f"t={s.t:.1f}s {s.error}" for s in errors[:10]],
        "statuses": statuses,
        "latency": latency_summary(samples),
        "index_versions_served": sorted({s.version for s in samples if s.version}),
        "server_exit": server_rc,  # -15: SIGTERM re-raised by uvicorn after a clean shutdown
        "server_shutdown_clean": "Finished server process" in log_text,
        "server_tracebacks": log_text.count("Traceback"),
    }
    if cfg.reindex:
        during = [
            s
            for s in samples
            if state.started_s is not None
            and s.t >= state.started_s
            and (state.first_served_s is None or s.t <= state.first_served_s)
        ]
        report["reindex"] = {
            "word": state.word,
            "file": state.file,
            "qa_index_started_s": _round(state.started_s),
            "qa_index_ended_s": _round(state.ended_s),
            "qa_index_seconds": _round(
                None
                if state.ended_s is None or state.started_s is None
                else state.ended_s - state.started_s
            ),
            "qa_index_exit": state.returncode,
            "qa_index_output_tail": state.output_tail[-600:],
            "swapped_s": _round(state.swapped_s),
            "first_served_s": _round(state.first_served_s),
            "served_after_index_end_s": state.served_after_s,
            "served_after_swap_s": state.served_after_swap_s,
            "probe_errors": state.probe_errors[:10],
            "during_reindex": {
                **latency_summary(during),
                "errors": sum(s.error is not None for s in during),
            },
        }
    return report


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def passed(report: dict[str, Any]) -> bool:
    """No failed request, a clean server, and with --reindex the new passage served."""
    ok = report["errors"] == 0 and report["server_tracebacks"] == 0
    if "reindex" in report:
        r = report["reindex"]
        ok = ok and r["qa_index_exit"] == 0 and r["served_after_index_end_s"] is not None
        ok = ok and not r["probe_errors"]
    return ok


def summary(report: dict[str, Any]) -> str:
    lat = report["latency"]
    lines = [
        f"{report['config']['clients']} clients, {report['load_seconds']} s: "
        f"{lat['requests']} requests ({report['throughput_rps']}/s), {report['errors']} errors",
        f"latency p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, p99 {lat['p99_ms']} ms, "
        f"max {lat['max_ms']} ms",
    ]
    if "reindex" in report:
        r = report["reindex"]
        d = r["during_reindex"]
        lines.append(
            f"re-index: qa index took {r['qa_index_seconds']} s (exit {r['qa_index_exit']}); "
            f"new passage served {r['served_after_swap_s']} s after the swap, "
            f"{r['served_after_index_end_s']} s after qa index exited; "
            f"during it: {d['requests']} requests, {d['errors']} errors, p95 {d['p95_ms']} ms"
        )
    lines.append("PASS" if passed(report) else "FAIL")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=16, help="concurrent clients (1..64) [16]")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load (<=600) [60]")
    p.add_argument("--reindex", action="store_true", help="add a file and re-index mid-load")
    p.add_argument("--reindex-at", type=float, help="seconds into the load [duration/4]")
    p.add_argument("--max-wait", type=float, default=180.0, help="extra s for the new passage")
    p.add_argument("--sources", type=Path, default=ROOT / "sources", help="sources to copy")
    p.add_argument("--workdir", type=Path, help="keep the work folder here (default: temp)")
    p.add_argument("--out", type=Path, help="write the JSON report here")
    a = p.parse_args(argv)
    cfg = LoadConfig(
        clients=a.clients,
        duration_s=a.duration,
        reindex=a.reindex,
        reindex_at_s=a.reindex_at,
        max_wait_s=a.max_wait,
        sources=a.sources,
        workdir=a.workdir,
        out=a.out,
    )
    try:
        report = run(cfg)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary(report))
    if a.out:
        print(f"report: {a.out}")
    return 0 if passed(report) else 1


if __name__ == "__main__":
    sys.exit(main())
