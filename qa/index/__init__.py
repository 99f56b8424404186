"""The index folder: ``build`` writes it, ``load`` reads it, ``manifest`` says what made it,
``store`` keeps it whole on disk, ``reuse`` spares re-embedding unchanged files, ``dense`` and
``lexical`` are its two search halves, ``quick`` tells an unchanged folder from file times
and ``watch`` re-indexes while the service runs.

Names are imported on first use (PEP 562): ``qa index`` on an unchanged folder needs none of
FAISS, bm25s or lingua, and importing them costs most of its run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qa.index.build import build_index
    from qa.index.load import LoadedIndex, load_index
    from qa.index.manifest import (
        FORMAT,
        IndexCorrupt,
        IndexMismatch,
        IndexNotFound,
        IndexProblem,
    )
    from qa.index.quick import up_to_date
    from qa.index.report import BuildReport
    from qa.index.store import IndexBusy, current_version

_WHERE = {
    "FORMAT": "qa.index.manifest",
    "BuildReport": "qa.index.report",
    "IndexBusy": "qa.index.store",
    "IndexCorrupt": "qa.index.manifest",
    "IndexMismatch": "qa.index.manifest",
    "IndexNotFound": "qa.index.manifest",
    "IndexProblem": "qa.index.manifest",
    "LoadedIndex": "qa.index.load",
    "build_index": "qa.index.build",
    "current_version": "qa.index.store",
    "load_index": "qa.index.load",
    "up_to_date": "qa.index.quick",
}

__all__ = [
    "FORMAT",
    "BuildReport",
    "IndexBusy",
    "IndexCorrupt",
    "IndexMismatch",
    "IndexNotFound",
    "IndexProblem",
    "LoadedIndex",
    "build_index",
    "current_version",
    "load_index",
    "up_to_date",
]


def __getattr__(name: str) -> Any:
    """The name from its module, imported now (then cached here like a plain import)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
