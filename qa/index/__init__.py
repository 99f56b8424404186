"""The index folder: ``build`` writes it, ``load`` reads it, ``manifest`` says what made it,
``store`` keeps it whole on disk, ``reuse`` spares re-embedding unchanged files, ``dense`` and
``lexical`` are its two search halves and ``watch`` re-indexes while the service runs."""

from qa.index.build import BuildReport, build_index, up_to_date
from qa.index.load import LoadedIndex, load_index
from qa.index.manifest import FORMAT, IndexCorrupt, IndexMismatch, IndexNotFound, IndexProblem
from qa.index.store import IndexBusy, current_version

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
