"""Question-answering search over Norwegian public-sector documents, with exact citations."""

from qa.config import Settings
from qa.types import Hit, Passage, SearchResult

__version__ = "0.1.0"
__all__ = ["Hit", "Passage", "SearchResult", "Settings", "__version__"]
