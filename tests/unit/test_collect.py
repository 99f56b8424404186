"""Old builds are dropped oldest first, also when two were made in the same second."""

from __future__ import annotations

import os
from pathlib import Path

from qa.index.store import KEEP_BUILDS, collect, swap


def test_builds_of_one_second_are_dropped_by_age_not_by_suffix(tmp_path: Path) -> None:
    builds = tmp_path / "builds"
    names = ["20260101T000000-ffffff", "20260101T000000-000000", "20260101T000001-aaaaaa"]
    for age, name in enumerate(names):  # made in this order; suffixes sort the other way
        (builds / name).mkdir(parents=True)
        os.utime(builds / name, ns=(1_000_000_000 * (age + 1),) * 2)
    (builds / ".tmp-crashed").mkdir()
    swap(tmp_path, names[-1])
    collect(tmp_path)
    kept = sorted(p.name for p in builds.iterdir())
    assert KEEP_BUILDS == 2
    assert kept == sorted(names[1:])  # current and the one made just before it
