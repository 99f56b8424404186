"""Reading: what extracting PDF, Word, OpenDocument, HTML and Markdown costs in ``qa index``.

On the format corpus (``eval/formats``: the NorQuAD texts as PDF, DOCX, ODT, HTML, Markdown
and text; built once into ``$QA_CACHE_DIR/bench/formats``), ``scan_sources`` (walk, read,
extract: what ``qa index`` does before chunking) is timed beside ``build_index`` into an
empty folder (the whole index build, that scan included) with the run's loaded model, runs
alternating. The figure: reading time as a share of the build (goal ≤ 10 %). The same scan
of the plain-text NorQuAD files says what the formats add over plain text; each reader's own
time per file is in the JSON (``read_document`` in this process, one file at a time).
"""

from __future__ import annotations

import time
from collections import defaultdict
from functools import partial
from pathlib import Path

from bench.common import Context, median, timed

GOAL = 0.10
QUICK_TEXTS = 42  # seven of each format


def corpus(ctx: Context) -> tuple[Path, Path]:
    """The format corpus (sources/ and gold.jsonl), built on first use and cached, and the
    plain-text sources it was made from."""
    from eval.formats import make

    name = "formats-quick" if ctx.quick else "formats"
    target = Path(ctx.settings().cache_dir) / "bench" / name
    src = make.NORQUAD
    if ctx.quick:
        src = make.cut(src, QUICK_TEXTS, ctx.workdir / "norquad-cut")
    make.build(src, target)
    return target, src / "sources"


def _per_format(sources: Path) -> dict[str, float]:
    """Median milliseconds one file takes each format's reader, in this process."""
    from qa.sources.registry import read_document, reader_for

    times: dict[str, list[float]] = defaultdict(list)
    for path in sorted(sources.iterdir()):
        data = path.read_bytes()
        t0 = time.perf_counter()
        read_document(data, path.name)
        times[reader_for(path.name).format].append(time.perf_counter() - t0)
    return {fmt: round(1000 * median(v), 2) for fmt, v in sorted(times.items())}


def run(ctx: Context, repeats: int = 2) -> dict:
    from qa.index import build_index
    from qa.sources import scan_sources

    made, plain = corpus(ctx)
    folder = made / "sources"
    s = ctx.settings()
    scan_sources(folder, s.max_file_bytes)  # warm-up: imports the readers' libraries
    ctx.embedder.embed_passages(["varm opp"])
    scans: list[float] = []
    plain_scans: list[float] = []
    builds: list[float] = []
    passages = 0
    for r in range(repeats):
        secs, (docs, skipped) = timed(lambda: scan_sources(folder, s.max_file_bytes))
        scans.append(secs)
        plain_scans.append(timed(lambda: scan_sources(plain, s.max_file_bytes))[0])
        target = ctx.workdir / f"reading-index-{r}"
        settings = ctx.settings(sources_dir=folder, index_dir=target)
        secs, report = timed(partial(build_index, settings, ctx.embedder, progress=False))
        builds.append(secs)
        passages = report.passages
    share = median(scans) / median(builds)
    extra = (median(scans) - median(plain_scans)) / median(builds)
    return {
        "files": len(docs) + len(skipped),
        "read": len(docs),
        "skipped": [f"{x.path}: {x.reason}" for x in skipped][:20],
        "passages": passages,
        "scan_s": [round(x, 3) for x in scans],
        "plain_scan_s": [round(x, 3) for x in plain_scans],
        "build_s": [round(x, 2) for x in builds],
        "reading_share": round(share, 4),
        "formats_over_plain_share": round(extra, 4),
        "reader_ms_per_file": _per_format(folder),
        "goal_share": GOAL,
    }


def rows(r: dict) -> list[tuple[str, str, str, str]]:
    """The bench table's rows (``bench.report``)."""
    share, scan, build = r["reading_share"], median(r["scan_s"]), median(r["build_s"])
    per = ", ".join(f"{k} {v}" for k, v in r["reader_ms_per_file"].items())
    return [
        ("reading", f"format corpus ({r['read']} of {r['files']} files read, "
         f"{r['passages']} passages): scan_sources / build_index (median)",
         f"{scan:.2f} s / {build:.1f} s: reading adds {100 * share:.1f} % to `qa index` time "
         f"({100 * r['formats_over_plain_share']:.1f} % over plain text)",
         f"≤ 10 %: {'yes' if share <= GOAL else '**no**'}"),
        ("reading", "one file read, by format (median ms)", per, ""),
    ]  # fmt: skip
