"""Reading the sources folder: which files are indexed, their decoded text, and what is skipped.

``base`` (documents, the reader interface), ``registry`` (reader by suffix), ``text`` (plain
text in any encoding), ``scan`` (walk the folder, skip and name bad files).
"""

from qa.sources.base import Decoded, Reader, Skipped, SourceDoc
from qa.sources.registry import reader_for, register
from qa.sources.scan import read_source, scan_sources
from qa.sources.text import decode, make_title

__all__ = [
    "Decoded",
    "Reader",
    "Skipped",
    "SourceDoc",
    "decode",
    "make_title",
    "read_source",
    "reader_for",
    "register",
    "scan_sources",
]
