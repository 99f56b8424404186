"""A real Ray cluster on 127.0.0.1 only: a head and more nodes, started and stopped here.

Ray resolves "127.0.0.1" to the machine's network address for a multi-node cluster (and then
listens on every interface). So the head starts with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
(loopback only, a supported single-machine mode), and each further node through a small
wrapper that keeps the given loopback address (``_JOIN``). The driver (this process) joins
with the same variable set, so it too stays on 127.0.0.1. Dashboard, usage stats and metrics
export are off. Processes are stopped by the cluster's own temp dir, never by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

#: Ray's environment: no usage report, no metrics, the loopback address kept.
QUIET = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_enable_metrics_collection": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}
#: A node joining on 127.0.0.1: Ray's `ray start`, with the localhost rewrite left out.
_JOIN = (
    "import sys; import ray._private.services as s; s.resolve_ip_for_localhost = lambda h: h; "
    "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalCluster:
    """``nodes`` Ray nodes of ``cpus`` CPUs each on 127.0.0.1; ``address`` is the head's."""

    nodes: int = 2
    cpus: int = 1
    temp_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="qr", dir="/tmp")))
    port: int = field(default_factory=free_port)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {**os.environ, **QUIET}

    def start(self) -> LocalCluster:
        """The head, then the other nodes; raises with Ray's output when one fails."""
        ray = str(Path(sys.executable).with_name("ray"))
        head = [ray, "start", "--head", "--port", str(self.port), "--include-dashboard=false"]
        try:
            self._run([*head, *self._common()], self.env())
            for _ in range(self.nodes - 1):
                self.add_node()
        except BaseException:
            self.stop()
            raise
        os.environ.update(QUIET)  # the driver joins on 127.0.0.1 too (read when ray loads)
        constants = sys.modules.get("ray._private.ray_constants")
        if constants is not None:  # ray loaded already: else ray.init would try 192.x and hang
            constants.ENABLE_RAY_CLUSTER = False
        return self

    def _common(self) -> list[str]:
        common = ["--node-ip-address", "127.0.0.1", "--num-cpus", str(self.cpus)]
        return [*common, "--temp-dir", str(self.temp_dir), "--disable-usage-stats"]

    def add_node(self) -> None:
        """One more node of ``cpus`` CPUs, joining the head on 127.0.0.1."""
        join = {**self.env(), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}
        command = [sys.executable, "-c", _JOIN, "start", "--address", self.address]
        self._run([*command, *self._common()], join)

    @staticmethod
    def _run(command: list[str], env: dict[str, str]) -> None:
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
        if proc.returncode != 0:
            raise RuntimeError(f"{command[:3]} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")

    def processes(self) -> list:  # type: ignore[type-arg]
        """The cluster's processes: those naming its temp dir, and their children."""
        import psutil

        found = []
        for p in psutil.process_iter(["cmdline"]):
            if p.pid != os.getpid() and str(self.temp_dir) in " ".join(p.info["cmdline"] or []):
                found.append(p)
                found.extend(p.children(recursive=True))
        return found

    def stop(self) -> None:
        """Kill every process of this cluster (by its temp dir) and remove the temp dir."""
        import psutil

        procs = self.processes()
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(procs, timeout=20)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
