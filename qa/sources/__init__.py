"""Reading the sources folder: which files are indexed, their decoded text, and what is skipped."""

from qa.sources.scan import Skipped, SourceDoc, decode, make_title, read_source, scan_sources

__all__ = ["Skipped", "SourceDoc", "decode", "make_title", "read_source", "scan_sources"]
