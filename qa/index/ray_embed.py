"""Embedding a build's new passages on a Ray cluster (``qa index --ray ADDRESS``).

Reading, chunking, re-use of unchanged files and the atomic swap stay in ``build_index``;
only ``embed_passages`` (passages and answer-span sentences) leaves this machine. Each
``embed_passages`` call is cut into blocks (texts sorted by length, so a block pads little)
that go to a pool of Ray actors, one per node, each holding the model once with as many
threads as its node has CPUs. Plain actors rather than Ray Data ``map_batches``: the build
embeds in calls of ``EMBED_BATCH`` texts, and an actor pool that lives across those calls
loads the model once per node, where a Dataset per call would start (and load) a pool each
time; a dead actor's block is also easy to send to another one.

A worker that dies (its process or its node) has its block retried on another actor; with
none left the build fails with ``RayProblem`` before anything is written, so the index being
served stays as it was. Ray is imported only here, and only with ``--ray``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import SecretStr

from qa.index.manifest import IndexProblem

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.types import Embedder

log = logging.getLogger(__name__)
#: Seconds to wait for a TCP connection to the cluster's address before saying it is down
#: (Ray itself retries for minutes).
CONNECT_TIMEOUT_S = 5.0
#: Seconds for every actor to load its model; a node short of memory fails here, named.
READY_TIMEOUT_S = 900.0
#: Times one block is sent again after the actor running it died.
RETRIES = 2
#: Blocks per actor in one call: a slow block does not hold the other actors idle long.
BLOCKS_PER_ACTOR = 2
UNCHANGED = "the previous index is unchanged"


class RayProblem(IndexProblem):
    """Ray is missing, the cluster cannot be reached, or its workers failed: what and why."""


class _Worker:
    """The actor: the model loaded once on one node, embedding the blocks sent to it."""

    def __init__(self, settings: Settings, exit_at_first_block: bool = False) -> None:
        from qa.embedding.factory import load_embedder

        self.embedder = load_embedder(settings)
        self.exit_at_first_block = exit_at_first_block  # tests: a worker dying mid-build

    def describe(self) -> tuple[str, str, int]:
        """(fingerprint, node address, process id): checked against the local model."""
        import ray

        return self.embedder.fingerprint, ray.util.get_node_ip_address(), os.getpid()

    def embed(self, texts: list[str]) -> np.ndarray:
        if self.exit_at_first_block:
            os._exit(1)
        return self.embedder.embed_passages(texts)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayProblem(
            f"--ray needs Ray on this machine and the cluster: pip install 'qa[ray]' ({exc})"
        ) from exc
    return ray


def check_reachable(address: str) -> None:
    """Fail in seconds, with the address named, when nothing listens there."""
    if address == "auto":  # Ray finds the cluster `ray start` made on this machine
        return
    where = address.removeprefix("ray://")
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        raise RayProblem(f"Ray address {address!r} is not host:port (e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise RayProblem(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}): is it "
            f"running (`ray start --head`)? {UNCHANGED}"
        ) from exc


def _shipped(settings: Settings, threads: int) -> Settings:
    """The settings an actor loads the model with: these, less any secret (the cluster
    needs no API key), with the node's CPUs as threads."""
    secrets = {name: None for name, value in settings if isinstance(value, SecretStr)}
    # a worker only embeds passages: PyTorch with all its threads, never the 1-thread
    # query engine that small local jobs use (same vectors either way: same fingerprint)
    return settings.model_copy(update={**secrets, "threads": threads, "query_engine": "model"})


class RayEmbedder:
    """The local embedder, with ``embed_passages`` run on a Ray cluster's actors.

    Queries, token counts, the fingerprint and every other attribute are the local model's.
    A context manager: leaving it stops the actors and disconnects.
    """

    def __init__(
        self, settings: Settings, local: Embedder, *, exit_ranks: Iterable[int] = ()
    ) -> None:
        """Connect to ``settings.ray_address`` and start one actor per node with CPUs.

        ``exit_ranks``: actors (by rank) that exit at their first block, for tests.
        """
        self.local = local
        self.blocks_sent = 0
        self.texts_sent = 0
        address = settings.ray_address or "auto"
        check_reachable(address)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing sent to Ray's servers
        ray = self._ray = _import_ray()
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except Exception as exc:  # ConnectionError, RuntimeError, ValueError: all the same here
            raise RayProblem(
                f"could not join the Ray cluster at {address}: {exc}; {UNCHANGED}"
            ) from exc
        try:
            self.actors = self._start(settings, set(exit_ranks))
        except BaseException:
            self.close()
            raise

    def _start(self, settings: Settings, exit_ranks: set[int]) -> list[Any]:
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = [n for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU", 0) >= 1]
        if not nodes:
            raise RayProblem(f"the Ray cluster at {settings.ray_address} has no node with a CPU")
        worker = ray.remote(_Worker)
        actors = []
        for rank, node in enumerate(nodes):
            cpus = int(node["Resources"]["CPU"])
            strategy = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            options = {"num_cpus": cpus, "scheduling_strategy": strategy, "max_restarts": 0}
            shipped = _shipped(settings, cpus)
            actors.append(worker.options(**options).remote(shipped, rank in exit_ranks))
        try:
            described = ray.get([a.describe.remote() for a in actors], timeout=READY_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError as exc:
            raise RayProblem(
                f"the Ray workers did not load the model within {READY_TIMEOUT_S:.0f} s "
                f"(busy cluster, or too little memory on a node); {UNCHANGED}"
            ) from exc
        except ray.exceptions.RayError as exc:
            raise RayProblem(f"a Ray worker could not load the model: {exc}; {UNCHANGED}") from exc
        for fingerprint, node_ip, _ in described:
            if fingerprint != self.local.fingerprint:
                raise RayProblem(
                    f"the model on Ray node {node_ip} is {fingerprint}, here it is "
                    f"{self.local.fingerprint}: install the same qa and model on every node"
                )
        self.workers = described
        log.info("embedding on %d Ray actors: %s", len(actors), described)
        return actors

    def __enter__(self) -> RayEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the actors (their memory goes back to the cluster) and disconnect."""
        for actor in getattr(self, "actors", []):
            with contextlib.suppress(Exception):  # already dead: nothing to free
                self._ray.kill(actor)
        self.actors = []
        self._ray.shutdown()

    # --- the Embedder interface --------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        """Everything but ``embed_passages`` (name, dim, fingerprint, engines...) is local."""
        if name in ("local", "_ray", "actors"):  # not set yet: no recursion through them
            raise AttributeError(name)
        return getattr(self.local, name)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self.local.embed_queries(texts)

    def count_tokens(self, text: str) -> int:
        return self.local.count_tokens(text)

    def embed_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """The vectors of ``texts``, in order, embedded by the cluster's actors."""
        if not texts:
            return np.zeros((0, self.local.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        pieces = max(1, len(self.actors) * BLOCKS_PER_ACTOR)
        size = math.ceil(len(texts) / pieces)
        blocks = [order[lo : lo + size] for lo in range(0, len(order), size)]
        vectors = self._run([[texts[i] for i in block] for block in blocks])
        matrix = np.zeros((len(texts), self.local.dim), dtype=np.float32)
        for block, block_vectors in zip(blocks, vectors, strict=True):
            matrix[block] = block_vectors
        return matrix

    def _run(self, blocks: list[list[str]]) -> list[np.ndarray]:
        """Each block on an idle actor; a block whose actor died goes to another one."""
        ray = self._ray
        results: list[np.ndarray | None] = [None] * len(blocks)
        todo, tries = deque(range(len(blocks))), [0] * len(blocks)
        idle, running = list(self.actors), dict[Any, tuple[int, Any]]()
        while todo or running:
            while todo and idle:
                b, actor = todo.popleft(), idle.pop()
                running[actor.embed.remote(blocks[b])] = (b, actor)
                self.blocks_sent += 1
                self.texts_sent += len(blocks[b])
            (ref,), _ = ray.wait(list(running), num_returns=1)
            b, actor = running.pop(ref)
            try:
                results[b] = ray.get(ref)
            except ray.exceptions.RayActorError as exc:  # its process or its node died
                self.actors.remove(actor)
                tries[b] += 1
                log.warning("a Ray worker died (%s); block %d to another one", exc, b)
                if not self.actors or tries[b] > RETRIES:
                    raise RayProblem(
                        f"Ray workers died while embedding ({len(self.actors)} left; last: "
                        f"{type(exc).__name__}); {UNCHANGED}"
                    ) from exc
                todo.appendleft(b)
            except ray.exceptions.RayError as exc:
                failed = f"embedding failed on the Ray cluster: {exc}"
                raise RayProblem(f"{failed}; {UNCHANGED}") from exc
            else:
                idle.append(actor)
        return [r for r in results if r is not None]
