"""Hostile files: a reader that hangs, eats memory or crashes is stopped; the rest come back."""

from __future__ import annotations

import ctypes
import io
import os
import time
from pathlib import Path

import docx

from qa.sources.document import Extracted, UnreadableFile
from qa.sources.isolate import extract_many


def hostile_reader(data: bytes, name: str) -> Extracted:
    """Module-level (the workers import it): misbehaves as the file's name says."""
    if name.startswith("hang"):
        time.sleep(3600)
    elif name.startswith("hog"):
        hoard = [bytearray(256 * 1024 * 1024) for _ in range(16)]  # 4 GB
        del hoard
    elif name.startswith("segfault"):
        ctypes.string_at(0)
    elif name.startswith("exit"):
        os._exit(3)
    elif name.startswith("bad"):
        raise UnreadableFile("encrypted PDF")
    elif name.startswith("bug"):
        raise KeyError("word/document.xml")
    return Extracted(data.decode(), "txt", title=str(os.getpid()))


def test_hostile_files_are_stopped_and_the_rest_come_back(tmp_path: Path) -> None:
    (tmp_path / "fromdisk.txt").write_text("fra disk")
    jobs: list[tuple[str, bytes | Path]] = [
        ("ok1", b"en"),
        ("hang.pdf", b""),
        ("ok2", b"to"),
        ("hog.pdf", b""),
        ("ok3", b"tre"),
        ("segfault.pdf", b""),
        ("ok4", b"fire"),
        ("exit.pdf", b""),
        ("bad.pdf", b""),
        ("bug.docx", b""),
        ("ok5", tmp_path / "fromdisk.txt"),
    ]
    started = time.monotonic()
    results = extract_many(jobs, timeout_s=3, memory_mb=512, workers=2, reader=hostile_reader)
    assert time.monotonic() - started < 60
    texts = {name: r.text for name, r in results.items() if isinstance(r, Extracted)}
    assert texts == {"ok1": "en", "ok2": "to", "ok3": "tre", "ok4": "fire", "ok5": "fra disk"}
    assert results["hang.pdf"] == "timed out after 3 s"
    assert results["hog.pdf"] == "ran out of memory (limit 512 MB)"
    assert results["segfault.pdf"] == "reader crashed (signal 11 SIGSEGV)"
    assert results["exit.pdf"] == "reader crashed (exit status 3)"
    assert results["bad.pdf"] == "encrypted PDF"
    assert results["bug.docx"] == "reader failed (KeyError: 'word/document.xml')"


def test_one_worker_reads_a_batch_of_files() -> None:
    jobs: list[tuple[str, bytes | Path]] = [(f"f{n}", b"x") for n in range(5)]
    results = extract_many(jobs, timeout_s=30, memory_mb=512, workers=1, reader=hostile_reader)
    pids = {r.title for r in results.values() if isinstance(r, Extracted)}
    assert len(results) == 5 and len(pids) == 1 and pids != {str(os.getpid())}


def test_real_readers_in_workers_and_plain_text_in_process() -> None:
    document = docx.Document()
    document.add_heading("Kulturskolen", 1)
    document.add_paragraph("Undervisning i musikk.")
    out = io.BytesIO()
    document.save(out)
    jobs: list[tuple[str, bytes | Path]] = [
        ("a.docx", out.getvalue()),
        ("b.html", b"<title>Side</title><main><p>Hei</p></main>"),
        ("c.txt", "blåbær".encode("cp1252")),
        ("d.md", b"# Overskrift\n\ntekst"),
        ("e.docx", b"PK\x03\x04 not a zip"),
    ]
    results = extract_many(jobs, timeout_s=60, memory_mb=1024, workers=2)
    assert isinstance(results["a.docx"], Extracted)
    assert results["a.docx"].text == "Kulturskolen\n\nUndervisning i musikk."
    assert isinstance(results["b.html"], Extracted) and results["b.html"].title == "Side"
    assert isinstance(results["c.txt"], Extracted) and results["c.txt"].text == "blåbær"
    assert isinstance(results["d.md"], Extracted) and results["d.md"].headings
    assert results["e.docx"] == "not a Word document (not a zip file)"


def test_a_file_too_big_for_the_memory_limit_is_named_and_the_run_goes_on() -> None:
    """The worker cannot even receive it: that file is named, the next one still comes back
    (before, the parent's send raised BrokenPipeError and stopped the build, or waited
    forever on no worker)."""
    big = b"%PDF-1.4\n" + b"x" * 60_000_000 + b"\n%%EOF"
    jobs: list[tuple[str, bytes | Path]] = [("big.pdf", big), ("cut.pdf", b"%PDF-1.4 cut")]
    results = extract_many(jobs, timeout_s=60, memory_mb=192, workers=1)
    assert results["big.pdf"] == "ran out of memory (limit 192 MB)"
    assert results["cut.pdf"] == "truncated PDF (no end-of-file marker)"  # read by a new worker
