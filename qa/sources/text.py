"""Plain text: decoding with charset-normalizer, telling text from binary, a title.

Encodings other than UTF-8 (Windows-1252, Latin-1...) are detected by charset-normalizer,
not guessed; UTF-16 without a byte order mark is recognised by its zero bytes, and a file
mixing UTF-8 and Windows-1252 is read part by part, with a warning. Nothing here rewrites
the text (no newline or Unicode normalisation): it is what passages' offsets refer to.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

from qa.sources.document import Extracted, UnreadableFile

#: Bytes looked at to tell text from binary.
_SNIFF = 8192
#: Control characters that never occur in text files (NUL, and the C0 set minus \t\n\v\f\r, ESC).
_BINARY_BYTES = bytes(range(0, 9)) + bytes(range(14, 27)) + bytes(range(28, 32))
TITLE_CHARS = 90
#: The encoding of a file that is UTF-8 in parts and Windows-1252 in others.
MIXED = "utf-8+cp1252"
MIXED_WARNING = "mixed encodings: UTF-8 with parts in Windows-1252 (check its æ, ø, å)"

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


def utf16_without_bom(data: bytes) -> str | None:
    """ "utf-16-le"/"utf-16-be" when ``data`` looks like UTF-16 text without a byte order mark:
    most characters of Western text have a zero high byte, so NULs sit at almost every odd
    (little-endian) or even (big-endian) position and nowhere else; the bytes must decode."""
    head = data[: _SNIFF - _SNIFF % 2]
    if len(head) < 4 or len(data) % 2:
        return None
    pairs = len(head) // 2
    even, odd = head[0::2].count(0), head[1::2].count(0)
    for encoding, zeros, others in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if zeros >= 0.6 * pairs and others <= 0.02 * pairs:
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                return None
            return None if looks_binary(text[:_SNIFF].encode("utf-8")) else encoding
    return None


def _as_cp1252(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: a byte that is not UTF-8 read as Windows-1252 (Latin-1 for the
    five bytes Windows-1252 leaves undefined)."""
    assert isinstance(error, UnicodeDecodeError)
    byte = error.object[error.start : error.start + 1]
    try:
        return byte.decode("cp1252"), error.start + 1
    except UnicodeDecodeError:
        return byte.decode("latin-1"), error.start + 1


codecs.register_error("qa-cp1252", _as_cp1252)
#: A well-formed multi-byte UTF-8 sequence.
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)


def _mixed_utf8(data: bytes) -> bool:
    """Whether bytes that are not valid UTF-8 as a whole hold UTF-8 parts: multi-byte
    sequences that decode to Latin letters and punctuation (æ, ø, –, «). Windows-1252 text
    rarely forms such a sequence, and when it does the character is exotic."""
    chars = [m.group().decode("utf-8", "replace") for m in _UTF8_SEQUENCE.finditer(data)]
    latin = sum(1 for c in chars if c < "\u0250" or "\u2000" <= c <= "\u20cf")
    return bool(chars) and latin >= 0.9 * len(chars)


def decode(data: bytes) -> tuple[str, str]:
    """Decode bytes as UTF-8 (or the BOM's encoding, or UTF-16 without one), else as
    charset-normalizer detects. A file mixing UTF-8 and Windows-1252 (an edit in another
    editor) is read part by part; its encoding is then ``MIXED``.

    Raises ValueError when the bytes are not text in any encoding it knows.
    """
    bom = bom_encoding(data)
    if bom:
        try:
            return data.decode(bom), bom
        except UnicodeDecodeError as exc:
            raise ValueError(f"undecodable (broken {bom})") from exc
    utf16 = utf16_without_bom(data)
    if utf16:
        return data.decode(utf16), utf16
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if _mixed_utf8(data):
        return data.decode("utf-8", "qa-cp1252"), MIXED
    best = from_bytes(data, cp_isolation=WESTERN).best() or from_bytes(data).best()
    if best is None or best.encoding is None:
        raise ValueError("undecodable: not text in any known encoding")
    return str(best), best.encoding


def read_text(data: bytes, fmt: str) -> Extracted:
    """Bytes that must be text: decoded, with a warning when the encodings were mixed."""
    if not bom_encoding(data) and not utf16_without_bom(data) and looks_binary(data[:_SNIFF]):
        raise UnreadableFile("binary file")
    try:
        text, encoding = decode(data)
    except ValueError as exc:
        raise UnreadableFile(str(exc)) from exc
    warnings = [MIXED_WARNING] if encoding == MIXED else []
    return Extracted(text, fmt, warnings=warnings, encoding=encoding)


class TextReader:
    """Any file that is text in some encoding. Also the fallback for suffixes no reader
    takes: every regular file has always been tried as text."""

    format = "txt"
    suffixes: tuple[str, ...] = (".txt",)
    version = 1
    isolated = False

    def read(self, data: bytes, name: str) -> Extracted:
        return read_text(data, self.format)
