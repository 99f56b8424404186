"""Ray: the same passages embedded by a local cluster of one node, then of two (1 CPU each).

    python -m bench.run --only ray           # or: python -m bench.ray_embed [--passages N]

The cluster is real (tests.support.ray_cluster: loopback only, started and stopped here).
Passages go through ``RayEmbedder.embed_passages`` in the calls ``build_index`` makes
(``EMBED_BATCH`` texts), after each pool has loaded its model (that start is reported apart).
"The same index": the actors' model fingerprint against the local one, and the lowest
cosine between the cluster's vectors and the local model's on the same passages.
On a 2-core machine two 1-CPU nodes can at best double one; the machine is shared, so the
ratio is only meaningful side by side in one run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import ROOT, Context

PASSAGES = 400  # the first 400 NorQuAD passages
QUICK_PASSAGES = 100


def _embed(embedder: object, texts: list[str]) -> tuple[float, np.ndarray]:
    """(seconds, vectors) in ``build_index``'s calls."""
    from qa.index.build import EMBED_BATCH

    t0 = time.perf_counter()
    parts = [
        embedder.embed_passages(texts[lo : lo + EMBED_BATCH])  # type: ignore[attr-defined]
        for lo in range(0, len(texts), EMBED_BATCH)
    ]
    return time.perf_counter() - t0, np.concatenate(parts)


def _on_cluster(ctx: Context, address: str, texts: list[str]) -> dict:
    from qa.index.ray_embed import RayEmbedder

    settings = ctx.settings().model_copy(update={"ray_address": address})
    t0 = time.perf_counter()
    with RayEmbedder(settings, ctx.embedder) as remote:
        start_s = time.perf_counter() - t0
        remote.embed_passages(texts[: 4 * len(remote.actors)])  # warm every actor
        seconds, vectors = _embed(remote, texts)
        fingerprints = {w[0] for w in remote.workers}
        actors = len(remote.actors)
    return {
        "actors": actors,
        "start_s": round(start_s, 1),
        "seconds": round(seconds, 2),
        "per_s": round(len(texts) / seconds, 1),
        "fingerprints": sorted(fingerprints),
        "vectors": vectors,
    }


def run(ctx: Context, passages: int | None = None) -> dict:
    sys.path.insert(0, str(ROOT))
    from tests.support.ray_cluster import LocalCluster

    n = passages or (QUICK_PASSAGES if ctx.quick else PASSAGES)
    texts = [p.text for p in ctx.passages()[:n]]
    local_s, local = _embed(ctx.embedder, texts)
    cluster = LocalCluster(nodes=1, cpus=1)
    try:
        cluster.start()
        one = _on_cluster(ctx, cluster.address, texts)
        cluster.add_node()
        two = _on_cluster(ctx, cluster.address, texts)
    finally:
        cluster.stop()
    cosine = min(float((v * local).sum(1).min()) for v in (one["vectors"], two["vectors"]))
    same = one["fingerprints"] == two["fingerprints"] == [ctx.embedder.fingerprint]
    return {
        "passages": len(texts),
        "local_per_s": round(len(texts) / local_s, 1),
        "one_node": {k: v for k, v in one.items() if k != "vectors"},
        "two_nodes": {k: v for k, v in two.items() if k != "vectors"},
        "ratio": round(two["per_s"] / one["per_s"], 2),
        "same_fingerprint": same,
        "min_cosine_vs_local": round(cosine, 6),
    }


def rows(r: dict) -> list[tuple[str, str, str, str]]:
    """The bench table's rows (bench.report)."""
    one, two = r["one_node"], r["two_nodes"]
    same = r["same_fingerprint"] and r["min_cosine_vs_local"] >= 0.9999
    return [
        ("ray", f"{r['passages']} passages/s: two 1-CPU nodes / one",
         f"{two['per_s']} / {one['per_s']} = {r['ratio']} x", "> 1 x (at most 2 x here)"),
        ("ray", "same index: fingerprint, lowest cosine vs local",
         f"{'same' if r['same_fingerprint'] else 'DIFFERENT'}, {r['min_cosine_vs_local']}",
         f">= 0.9999: {'yes' if same else 'NO'}"),
    ]  # fmt: skip


if __name__ == "__main__":
    import argparse
    import json
    import os
    import tempfile

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=PASSAGES)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Context(quick=False, workdir=Path(tmp)), args.passages), indent=2))
