"""The index folder: building it (build), reading it (load), its files (manifest), search halves."""

from qa.index.build import BuildReport, IndexBusy, build_index, up_to_date
from qa.index.load import LoadedIndex, current_version, load_index
from qa.index.manifest import IndexCorrupt, IndexMismatch, IndexNotFound, IndexProblem

__all__ = [
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
