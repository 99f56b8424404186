"""Reading hostile files safely: each reader runs in a worker process with time and memory limits.

A PDF bomb, a zip bomb posing as .docx, a parser that hangs or crashes stops one worker, not
the build: the file is named with the reason ("timed out after 30 s", "ran out of memory
(limit 1024 MB)", "reader crashed (signal 11)") and the other files go on. Workers are
started with "spawn" (forking a process that holds threads is unsafe) and each reads many
files, one at a time, so starting them costs little and a dead worker loses only the file it
was reading: that file gets the reason, a fresh worker takes the rest. Files whose reader
is not ``isolated`` (plain text, Markdown: no parser of binary formats) are read in this
process.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path

from qa.sources.document import Extracted, UnreadableFile
from qa.sources.registry import read_document, reader_for

Reader = Callable[[bytes, str], Extracted]
#: A worker is replaced after this many files, so that memory a parser leaks is returned.
FILES_PER_WORKER = 200
#: Workers that die before reading anything (a broken installation): then every file left
#: is named with the reason instead of starting workers without end.
START_FAILURES = 3
READY = "ready"
#: A worker's exit status when a file sent to it did not fit under its memory limit.
NO_MEMORY_EXIT = 86


def _oom_reason(memory_mb: int) -> str:
    return f"ran out of memory (limit {memory_mb} MB)"


def _read_one(reader: Reader, name: str, source: bytes | Path, memory_mb: int) -> Extracted | str:
    """Read one file; every failure becomes its reason."""
    try:
        data = source.read_bytes() if isinstance(source, Path) else source
        return reader(data, name)
    except UnreadableFile as exc:
        return str(exc) or "unreadable file"
    except MemoryError:
        return _oom_reason(memory_mb)
    except RecursionError:
        return "unreadable file (nested too deeply)"
    except Exception as exc:  # a reader's bug on odd input must not stop the build
        return f"reader failed ({type(exc).__name__}: {exc})"


def _worker(conn: Connection, reader: Reader, memory_mb: int) -> None:
    """Worker process: limit own memory, then read files sent over ``conn`` until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn.send(READY)  # a file's time limit starts now, not while the worker starts
    while True:
        try:
            job = conn.recv()
        except MemoryError:  # the file itself does not fit: the pipe is mid-message, so quit
            os._exit(NO_MEMORY_EXIT)
        if job is None:
            return
        name, source = job
        conn.send(_read_one(reader, name, source, memory_mb))


@dataclass
class _Slot:
    """One worker process and the file it is reading (None: idle)."""

    process: BaseProcess
    conn: Connection
    ready: bool = False
    name: str | None = None
    deadline: float = 0.0
    done: int = 0


def _death_reason(process: BaseProcess, memory_mb: int) -> str:
    process.join(timeout=5)
    code = process.exitcode
    if code == NO_MEMORY_EXIT:
        return _oom_reason(memory_mb)
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else ""
        return f"reader crashed (signal {-code}{' ' + name if name else ''})"
    return f"reader crashed (exit status {code})"


class _Run:
    """Hands files out one at a time to up to ``workers`` workers, enforcing the limits."""

    def __init__(self, reader: Reader, timeout_s: float, memory_mb: int, workers: int) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.reader, self.timeout_s, self.memory_mb = reader, timeout_s, memory_mb
        self.workers = max(1, workers)
        self.slots: list[_Slot] = []
        self.queue: list[tuple[str, bytes | Path]] = []
        self.results: dict[str, Extracted | str] = {}
        self.start_failures = 0

    def start(self) -> None:
        parent, child = self.context.Pipe()
        args = (child, self.reader, self.memory_mb)
        process = self.context.Process(target=_worker, args=args, daemon=True)
        process.start()
        child.close()
        self.slots.append(_Slot(process, parent))

    def stop(self, slot: _Slot, kill: bool = False) -> None:
        self.slots.remove(slot)
        if not kill:
            try:
                slot.conn.send(None)
            except OSError:
                kill = True
        if kill and slot.process.is_alive():
            slot.process.kill()
        slot.process.join(timeout=5)
        slot.conn.close()

    def run(self, pending: list[tuple[str, bytes | Path]]) -> dict[str, Extracted | str]:
        self.queue = list(reversed(pending))
        try:
            while self.queue or any(slot.name is not None for slot in self.slots):
                self.step()
        finally:
            for slot in list(self.slots):
                self.stop(slot, kill=True)
        return self.results

    def step(self) -> None:
        """Start and feed workers, then wait for an answer, a death or a deadline."""
        while len(self.slots) < min(self.workers, len(self.queue)):
            self.start()
        for slot in [s for s in self.slots if s.ready and s.name is None]:
            if not self.queue:
                self.stop(slot)
                continue
            name, source = self.queue.pop()
            slot.name, slot.deadline = name, time.monotonic() + self.timeout_s
            try:
                slot.conn.send((name, source))
            except OSError:  # the worker died while idle (out of memory, killed): this file
                self.results[name] = _death_reason(
                    slot.process, self.memory_mb
                )  # is named, the rest go on
                self.stop(slot, kill=True)
        if not self.slots:  # every worker stopped above: start new ones on the next step
            return
        busy = [s for s in self.slots if s.name is not None]
        timeout = max(0.0, min(s.deadline for s in busy) - time.monotonic()) if busy else None
        ready = wait([s.conn for s in self.slots], timeout=timeout)
        for slot in list(self.slots):
            if slot.conn in ready:
                self.collect(slot)
            elif slot.name is not None and time.monotonic() > slot.deadline:
                self.results[slot.name] = f"timed out after {self.timeout_s:g} s"
                self.stop(slot, kill=True)

    def collect(self, slot: _Slot) -> None:
        """Take a worker's answer, or name its file as the cause when the worker died."""
        try:
            answer = slot.conn.recv()
        except (EOFError, OSError):
            reason = _death_reason(slot.process, self.memory_mb)
            self.stop(slot, kill=True)
            if slot.name is not None:
                self.results[slot.name] = reason
                return
            self.start_failures += 1
            if self.start_failures >= START_FAILURES:
                while self.queue:
                    self.results[self.queue.pop()[0]] = f"{reason} before reading the file"
            return
        if not slot.ready:
            slot.ready = answer == READY
            return
        assert slot.name is not None
        self.results[slot.name] = answer
        slot.name, slot.done = None, slot.done + 1
        if slot.done >= FILES_PER_WORKER:
            self.stop(slot)


def extract_many(
    jobs: list[tuple[str, bytes | Path]],
    timeout_s: float = 30.0,
    memory_mb: int = 1024,
    workers: int = 2,
    reader: Reader = read_document,
) -> dict[str, Extracted | str]:
    """Read every file: its ``Extracted``, or the reason it could not be read.

    ``jobs`` are (name, bytes or path); the name picks the format. ``reader`` must be a
    module-level function (it is sent to the workers); tests pass their own. Called from a
    program's ``__main__``, that module must be importable ("spawn" re-imports it).
    """
    results: dict[str, Extracted | str] = {}
    pending: list[tuple[str, bytes | Path]] = []
    for name, source in jobs:
        if reader is read_document and not reader_for(name).isolated:
            results[name] = _read_one(reader, name, source, memory_mb)
        else:
            pending.append((name, source))
    if pending:
        results.update(_Run(reader, timeout_s, memory_mb, workers).run(pending))
    return results
