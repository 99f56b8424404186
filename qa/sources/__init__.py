"""Reading the sources folder: which files are indexed, their text, and what is skipped.

``base`` (documents, the reader interface), ``registry`` (reader by suffix: where a format
is added), ``document`` (what readers return), ``text`` (plain text in any encoding),
``pdf``/``docx``/``odt``/``html``/``markdown`` (the format readers), ``isolate`` (parsers in
worker processes with limits), ``scan`` (walk the folder, skip and name bad files).
"""

from qa.sources.base import Reader, ReadKey, Skipped, SourceDoc, shown
from qa.sources.document import Extracted, UnreadableFile
from qa.sources.registry import read_document, reader_for, register
from qa.sources.scan import read_bytes, scan_sources
from qa.sources.text import decode, make_title

__all__ = [
    "Extracted",
    "ReadKey",
    "Reader",
    "Skipped",
    "SourceDoc",
    "UnreadableFile",
    "decode",
    "make_title",
    "read_bytes",
    "read_document",
    "reader_for",
    "register",
    "scan_sources",
    "shown",
]
