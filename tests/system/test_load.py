"""Load during a re-index: the load test (``bench/loadtest.py``), short, against a real
`qa serve` with the real model, while `qa index` adds a file to the index it serves.

What must hold: no request fails across the swap, the server logs no traceback, and the
new passage is served within seconds of the swap.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import loadtest


@pytest.mark.slow
def test_load_with_a_reindex_has_no_errors(tmp_path: Path) -> None:
    """8 clients for 8 s, `qa index` adding a file at once; the load goes on (at most
    240 s more) until the new passage is served."""
    cfg = loadtest.LoadConfig(
        clients=8,
        duration_s=8,
        reindex=True,
        reindex_at_s=0,
        max_wait_s=240,
        workdir=tmp_path / "work",
        out=tmp_path / "load.json",
    )
    report = loadtest.run(cfg)
    print(loadtest.summary(report))
    assert report["errors"] == 0, report["error_samples"]
    assert report["server_tracebacks"] == 0
    r = report["reindex"]
    assert r["qa_index_exit"] == 0, r["qa_index_output_tail"]
    assert not r["probe_errors"], r["probe_errors"]
    assert r["served_after_swap_s"] is not None and r["served_after_swap_s"] < 15, r
    assert len(report["index_versions_served"]) == 2  # before and after the swap
    assert json.loads((tmp_path / "load.json").read_text("utf-8"))["errors"] == 0
