"""`qa index` as a fresh process after one file of 1,000 changed, with no model held here.

    python -m bench.reindex_cli [--runs 5] [--out bench/results/reindex_cli.json]

The indexing part of ``bench.run`` times the same command, but from a process that holds
the model and a built index, and on this kind of machine (a microVM) another process's
memory slows a fresh one's page allocation by seconds (bench/README, 30 Nov evening). Here
every step is a ``qa index`` subprocess and this process loads nothing: the 1,000-file
corpus (NorQuAD's files copied under numbered names) is indexed once (passages and vectors
reused from a NorQuAD index by content hash when ``--seed`` names one), then for each run
one more file is edited and ``qa index`` is timed; last, once with nothing changed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import NORQUAD, load, machine, median

EDIT = "\n\nTillegg: dette avsnittet ble endret for å måle hvor raskt indeksen oppdateres.\n"
SEED = Path(os.environ.get("QA_CACHE_DIR", Path.home() / ".cache/qa")) / "bench" / "norquad"


def _qa_index(corpus: Path, index: Path) -> tuple[float, str]:
    qa = Path(sys.executable).with_name("qa")
    cmd = [str(qa), "index", "--sources", str(corpus), "--index", str(index), "--quiet"]
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"qa index failed ({out.returncode}): {out.stderr[-2000:]}")
    return seconds, out.stderr


def run(runs: int, seed: Path | None, workdir: Path) -> dict:
    originals = sorted((NORQUAD / "sources").glob("*.txt"))
    corpus, index = workdir / "corpus", workdir / "index"
    corpus.mkdir()
    files = []
    for i in range(1000):
        src = originals[i % len(originals)]
        files.append(corpus / f"{src.stem}-{i // len(originals):02d}.txt")
        shutil.copyfile(src, files[-1])
    if seed is not None and (seed / "current").exists():
        shutil.copytree(seed, index, symlinks=True)
    first, _ = _qa_index(corpus, index)
    changed: list[float] = []
    builds: list[float] = []
    for r in range(runs):
        with open(files[(len(files) // 3 + 37 * r) % len(files)], "a", encoding="utf-8") as fh:
            fh.write(EDIT)
        seconds, log = _qa_index(corpus, index)
        changed.append(seconds)
        inner = re.search(r"in ([\d.]+)s ->", log)
        builds.append(float(inner.group(1)) if inner else float("nan"))
    unchanged, _ = _qa_index(corpus, index)
    return {
        "files": len(files),
        "seeded_from": str(seed) if seed else None,
        "first_index_s": round(first, 2),
        "one_changed_s": [round(x, 2) for x in changed],
        "one_changed_median_s": round(median(changed), 2),
        "one_changed_build_s": builds,
        "nothing_changed_s": round(unchanged, 2),
        "target_one_changed_s": 5.0,
        "target_nothing_changed_s": 0.6,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--seed", type=Path, default=SEED, help="an index of the NorQuAD sources")
    p.add_argument("--out", type=Path, default=Path("bench/results/reindex_cli.json"))
    args = p.parse_args()
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    before = load()
    with tempfile.TemporaryDirectory(prefix="qa-reindex-") as tmp:
        result = run(args.runs, args.seed, Path(tmp))
    after = load()  # machine() imports torch: only now, after the runs
    out = {"command": "python -m bench.reindex_cli", "started": started, "machine": machine()}
    out["machine"] |= {"loadavg_start": before, "loadavg_end": after}
    out["reindex_cli"] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
