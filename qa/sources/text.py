"""Plain text: decoding with charset-normalizer, telling text from binary, a title.

Encodings other than UTF-8 (Windows-1252, Latin-1...) are detected by charset-normalizer,
not guessed. Nothing here rewrites the text (no newline or Unicode normalisation): it is
what passages' offsets refer to.
"""

from __future__ import annotations

from pathlib import Path

from charset_normalizer import from_bytes

from qa.sources.base import Decoded

#: Bytes looked at to tell text from binary.
_SNIFF = 8192
#: Control characters that never occur in text files (NUL, and the C0 set minus \t\n\v\f\r, ESC).
_BINARY_BYTES = bytes(range(0, 9)) + bytes(range(14, 27)) + bytes(range(28, 32))
TITLE_CHARS = 90

#: Encodings tried first: what Norwegian text that is not UTF-8 is almost always in. Short
#: texts are ambiguous between single-byte code pages, and these read æ, ø, å right.
WESTERN = ["cp1252", "latin_1", "iso8859_15", "mac_roman", "cp865", "cp850"]
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def make_title(text: str, fallback: str) -> str:
    """The first non-empty line, cut at a word boundary: a readable label for a citation."""
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            if len(line) <= TITLE_CHARS:
                return line
            cut = line[:TITLE_CHARS].rsplit(" ", 1)[0]
            return cut.rstrip(" ,.;:–-") + "…"
    return fallback


def looks_binary(head: bytes) -> bool:
    """Whether the first bytes of a file are not text (NUL, or many control characters)."""
    if b"\x00" in head:
        return True
    bad = sum(head.count(bytes([b])) for b in _BINARY_BYTES)
    return bad > max(2, len(head) // 100)


def bom_encoding(data: bytes) -> str | None:
    """The encoding a byte order mark at the start of ``data`` names, if there is one."""
    return next((enc for bom, enc in _BOMS if data.startswith(bom)), None)


def decode(data: bytes) -> tuple[str, str]:
    """Decode bytes as UTF-8 (or the BOM's encoding), else as charset-normalizer detects.

    Raises ValueError when the bytes are not text in any encoding it knows.
    """
    bom = bom_encoding(data)
    if bom:
        try:
            return data.decode(bom), bom
        except UnicodeDecodeError as exc:
            raise ValueError(f"undecodable (broken {bom})") from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data, cp_isolation=WESTERN).best() or from_bytes(data).best()
    if best is None or best.encoding is None:
        raise ValueError("undecodable: not text in any known encoding")
    return str(best), best.encoding


class TextReader:
    """Any file that is text in some encoding. Also the fallback for suffixes no reader
    takes: every regular file has always been tried as text."""

    suffixes: tuple[str, ...] = (".txt",)

    def read(self, path: Path, data: bytes) -> Decoded:
        if not bom_encoding(data) and looks_binary(data[:_SNIFF]):
            raise ValueError("binary file")
        text, encoding = decode(data)
        return Decoded(text, encoding)
