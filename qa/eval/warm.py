"""Compile ranx's metrics once, at set-up: ``python -m qa.eval.warm``.

ranx's metrics are numba functions with ``cache=True``: the first process to use them
compiles them (about a minute on 2 cores) and writes the machine code to numba's cache
(beside ranx, else ``NUMBA_CACHE_DIR``); later processes load it in a fraction of a second.
``scripts/setup.sh`` runs this, so the first ``qa eval`` after installing does not pay for
the compilation. Same metrics and the same argument types as ``qa eval`` (``summarise``
over a few made-up questions): a type numba has not seen would compile again. Document
ids are part of that type (ranx makes fixed-width strings of them), which is why
``qa.eval.metrics`` gives ranx ids of one width (``ID_WIDTH``) whatever the file names.
"""

from __future__ import annotations

import sys
import time

from qa.eval.metrics import summarise


def _record(i: int, found: bool) -> dict:
    """A made-up ``run_questions`` record: the gold file at rank 2 when ``found``."""
    results = [
        {
            "rank": r,
            "score": 1.0 / r,
            "source": f"doc{(i + r) % 7}.txt" if not (found and r == 2) else "gold.txt",
            "has_answer": found and r == 2,
            "has_span": found and r == 2,
            "from_gold": found and r == 2,
        }
        for r in range(1, 11)
    ]
    return {
        "id": f"q{i}",
        "question": "?",
        "lang": ("nb", "nn", "en")[i % 3],
        "source": "gold.txt",
        "answerable": True,
        "results": results,
        "latency_ms": 1.0,
    }


def warm(questions: int = 40) -> float:
    """Seconds spent computing every metric ``qa eval`` reports (compiling, the first time)."""
    t0 = time.perf_counter()
    summarise([_record(i, i % 4 != 0) for i in range(questions)], k=10)
    return time.perf_counter() - t0


def main() -> int:
    print(f"ranx metrics ready ({warm():.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
