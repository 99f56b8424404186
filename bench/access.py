"""Access rules and filters: search time with half the files hidden and a filter, beside
the same searches unrestricted (goal: within 1.2 x the unrestricted median).

The NorQuAD index is copied and re-built from a copy of its sources with every other file
moved into ``hr/`` and an ``access.toml`` giving ``hr/**`` to group ``hr`` only (no vector
re-embedded: the files' bytes are unchanged). Then every gold question is searched as an
anonymous caller with a filter (format ``txt``, modified after 2000-01-01: both let every
visible file through, so the filter's cost is measured, not a smaller corpus) and without
either, alternating, over the same precomputed query vectors (the model's time is the same
for both and would hide the difference); end-to-end times (embedding included) beside them.
"""

from __future__ import annotations

import shutil
import time
from datetime import date
from pathlib import Path

from bench.common import Context, median, ms

RULES = '[[rule]]\npath = "hr/**"\ngroups = ["hr"]\n[[rule]]\npath = "**"\ngroups = ["*"]\n'
ROUNDS = 3


def _hidden_half(ctx: Context) -> tuple[Path, Path]:
    """Sources with every other file under ``hr/``, and a copy of the NorQuAD index."""
    src = ctx.workdir / "access-sources"
    files = sorted(p for p in ctx.source_dir().iterdir() if p.is_file())
    (src / "hr").mkdir(parents=True)
    for i, f in enumerate(files):
        shutil.copy2(f, src / ("hr" if i % 2 else "") / f.name)
    (src / "access.toml").write_text(RULES, encoding="utf-8")
    index = ctx.workdir / "access-index"
    shutil.copytree(ctx.norquad_index(), index, symlinks=True)
    return src, index


def run(ctx: Context) -> dict:
    from qa.access import ANONYMOUS, Filters
    from qa.index import build_index
    from qa.retriever import Retriever

    src, index = _hidden_half(ctx)
    s = ctx.settings(sources_dir=src, index_dir=index)
    t0 = time.perf_counter()
    report = build_index(s, ctx.embedder, progress=False)
    rebuild_s = time.perf_counter() - t0
    retriever = Retriever.load(index, s, ctx.embedder)
    questions = [q["question"] for q in ctx.questions()]
    vectors = ctx.embedder.embed_queries(questions)
    filters = Filters(formats=("txt",), modified_after=date(2000, 1, 1))
    modes = {"plain": (None, None), "restricted": (ANONYMOUS, filters)}
    times: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(ROUNDS):
        for q, v in zip(questions, vectors, strict=True):
            for mode, (caller, wanted) in modes.items():
                t = time.perf_counter()
                retriever.search_vector(q, v, 5, caller, wanted)
                times[mode].append(time.perf_counter() - t)
    e2e: dict[str, list[float]] = {m: [] for m in modes}
    for q in questions[:100]:
        for mode, (caller, wanted) in modes.items():
            t = time.perf_counter()
            retriever.search(q, 5, caller, wanted)
            e2e[mode].append(time.perf_counter() - t)
    visible = len(retriever.visible_sources(ANONYMOUS))
    plain, restricted = median(times["plain"]), median(times["restricted"])
    return {
        "files": len(retriever.sources()),
        "visible_files": visible,
        "passages": len(retriever.passages),
        "questions": len(questions),
        "rules_rebuild_s": round(rebuild_s, 2),
        "rules_rebuild_embedded": report.embedded,
        "search_median_ms": ms(plain),
        "restricted_median_ms": ms(restricted),
        "ratio": round(restricted / plain, 3),
        "end_to_end_median_ms": ms(median(e2e["plain"])),
        "end_to_end_restricted_median_ms": ms(median(e2e["restricted"])),
        "end_to_end_ratio": round(median(e2e["restricted"]) / median(e2e["plain"]), 3),
    }
