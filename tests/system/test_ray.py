"""``qa index --ray``: embedding on a real two-node Ray cluster on 127.0.0.1, started here.

The cluster (tests.support.ray_cluster) is one per module: a head and a second node of one
CPU each, loopback only, stopped by its temp dir even when a test fails. Each build is
compared with a local build of the same seeds with the real model: same passages, same
fingerprint, vectors at cosine >= 0.9999. A worker that dies has its block retried; when
all die, the build fails and the served index stays. The fast tests at the end need no
cluster (a closed port, Ray missing).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa.config import Settings
from qa.index import build_index, current_version
from qa.index.ray_embed import RayEmbedder, RayProblem
from qa.retriever import Retriever
from tests.support.corpus import SEEDS
from tests.support.procs import index_args, no_traceback, qa_env, run_qa
from tests.support.ray_cluster import LocalCluster, free_port

slow = pytest.mark.slow
QUESTION = "Hva heter kulturprosjektet som KS og Norsk kulturskoleråd har samarbeidet om?"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    if importlib.util.find_spec("ray") is None:  # not imported: it reads its settings then
        pytest.skip("ray is not installed (pip install -e '.[ray]')")
    pytest.importorskip("psutil")
    nodes = LocalCluster(nodes=2, cpus=1)
    try:
        yield nodes.start()
    finally:
        nodes.stop()
    assert not nodes.processes()  # nothing of it left running


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Any]:
    """The seeds indexed here with the real model: what every cluster build must equal."""
    from qa.embedding import load_embedder

    root = tmp_path_factory.mktemp("local")
    shutil.copytree(SEEDS, root / "seeds")
    settings = Settings(sources_dir=root / "seeds", index_dir=root / "index", _env_file=None)
    embedder = load_embedder(settings)
    build_index(settings, embedder, progress=False)
    return settings, embedder


def _on(settings: Settings, cluster: LocalCluster, index: Path) -> Settings:
    return settings.model_copy(update={"index_dir": index, "ray_address": cluster.address})


def _same_index(built: Path, reference: Path) -> None:
    """Same passages (text, offsets), fingerprint, and vectors at cosine >= 0.9999 a row."""
    a, b = built / "current", reference / "current"
    assert (a / "passages.jsonl").read_text("utf-8") == (b / "passages.jsonl").read_text("utf-8")
    model_a = json.loads((a / "manifest.json").read_text("utf-8"))["model"]
    model_b = json.loads((b / "manifest.json").read_text("utf-8"))["model"]
    assert model_a["fingerprint"] == model_b["fingerprint"]
    for name in ("embeddings.npy", "sentence_vectors.npy"):
        x = np.load(a / name).astype(np.float32)
        y = np.load(b / name).astype(np.float32)
        assert x.shape == y.shape and len(x) > 0
        cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
        assert cos.min() >= 0.9999, (name, float(cos.min()))


@slow
def test_the_cluster_is_two_nodes_on_loopback_only(cluster: LocalCluster) -> None:
    """No traffic to any other address: every node is 127.0.0.1, every socket loopback."""
    import psutil
    import ray

    ray.init(address=cluster.address, log_to_driver=False)
    try:
        nodes = [n for n in ray.nodes() if n["Alive"]]
    finally:
        ray.shutdown()
    assert len(nodes) == 2 and {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}
    addresses = set()
    for proc in cluster.processes():
        try:
            for conn in proc.net_connections(kind="inet"):
                addresses |= {a.ip for a in (conn.laddr, conn.raddr) if a}
        except psutil.NoSuchProcess:
            continue
    assert addresses and addresses <= {"127.0.0.1", "::ffff:127.0.0.1"}, addresses


@slow
def test_qa_index_on_ray_equals_a_local_build_and_reuses(
    cluster: LocalCluster, local: tuple[Settings, Any], tmp_path: Path
) -> None:
    """The real command: same index as a local build; unchanged: no Ray at all; one file
    changed: only its passages embedded (the re-use before the embedder is unchanged)."""
    settings, _ = local
    sources, index = tmp_path / "seeds", tmp_path / "index"
    shutil.copytree(settings.sources_dir, sources)
    args = index_args(sources, index, "--ray", cluster.address, "--quiet")
    first = run_qa(args, tmp_path, env=qa_env(), timeout=600)
    assert first.returncode == 0, first.stderr
    _same_index(index, Path(settings.index_dir))
    again = run_qa(args, tmp_path, env=qa_env(), timeout=600)
    assert again.returncode == 0 and "already up to date" in again.stderr, again.stderr
    changed = sorted(sources.glob("*.txt"))[-1]  # the other file stays
    changed.write_text(changed.read_text("utf-8") + "\n\nEt nytt avsnitt om kulturskolen.\n")
    third = run_qa(args, tmp_path, env=qa_env(), timeout=600)
    assert third.returncode == 0, third.stderr
    embedded, reused = map(int, re.search(r"(\d+) embedded, (\d+) reused", third.stderr).groups())
    assert embedded > 0 and reused > 0  # only the changed file's passages embedded
    no_traceback(first.stderr + again.stderr + third.stderr)


@slow
def test_a_dead_worker_has_its_block_embedded_by_another(
    cluster: LocalCluster, local: tuple[Settings, Any], tmp_path: Path
) -> None:
    settings, embedder = local
    on_ray = _on(settings, cluster, tmp_path / "index")
    with RayEmbedder(on_ray, embedder, exit_ranks={0}) as remote:
        assert len(remote.actors) == 2
        report = build_index(on_ray, remote, progress=False)
        assert len(remote.actors) == 1  # the one that exited is gone, its block redone
    assert report.embedded == report.passages > 0
    _same_index(tmp_path / "index", Path(settings.index_dir))


@slow
def test_all_workers_dying_fails_the_build_and_leaves_the_served_index(
    cluster: LocalCluster, local: tuple[Settings, Any], tmp_path: Path
) -> None:
    settings, embedder = local
    index = tmp_path / "index"
    shutil.copytree(settings.index_dir, index, symlinks=True)
    served = current_version(index)
    on_ray = _on(settings, cluster, index)
    with (
        RayEmbedder(on_ray, embedder, exit_ranks={0, 1}) as remote,
        pytest.raises(RayProblem, match=r"died while embedding.*previous index is unchanged"),
    ):
        build_index(on_ray, remote, progress=False, rebuild=True)
    assert current_version(index) == served
    assert not [p for p in (index / "builds").iterdir() if p.name.startswith(".tmp-")]
    hits = Retriever.load(index, on_ray, embedder).search(QUESTION, 3).hits
    assert hits and "Oppspill" in " ".join(h.passage.text for h in hits)


# --- no cluster needed ------------------------------------------------------------------


def test_an_unreachable_address_is_a_message_not_a_traceback(
    tmp_path: Path, tiny_sources: Path
) -> None:
    port = free_port()  # nothing listens there
    args = index_args(tiny_sources, tmp_path / "index", "--ray", f"127.0.0.1:{port}")
    r = run_qa(args, tmp_path, fake=True, env=qa_env(), timeout=120)
    assert r.returncode == 1, r.stderr
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in r.stderr
    no_traceback(r.stderr)
    assert not (tmp_path / "index").exists()
    bad = run_qa([*args[:-1], "nowhere"], tmp_path, fake=True, env=qa_env(), timeout=120)
    assert bad.returncode == 1 and "is not host:port" in bad.stderr, bad.stderr


def test_ray_not_installed_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, fake_embedder: Any
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:  # reachable: only Ray is missing
        port = listening.getsockname()[1]
        monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
        on_ray = settings.model_copy(update={"ray_address": f"127.0.0.1:{port}"})
        with pytest.raises(RayProblem, match=r"pip install 'qa\[ray\]'"):
            RayEmbedder(on_ray, fake_embedder)


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_RAY_ADDRESS", "10.0.0.5:6379")
    assert Settings(_env_file=None).ray_address == "10.0.0.5:6379"
