"""Reading the sources folder: encodings detected, bad files skipped and named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qa.sources import (
    Extracted,
    decode,
    make_title,
    reader_for,
    register,
    registry,
    scan_sources,
    shown,
)
from qa.sources.text import TextReader


def test_latin1_and_cp1252_are_detected_not_guessed(tmp_path: Path) -> None:
    text = "Økonomi og særavgift – «sitat»: første kvartal gav 12 millioner kroner."
    (tmp_path / "cp.txt").write_bytes(text.encode("cp1252"))
    (tmp_path / "l1.txt").write_bytes(
        text.replace("–", "-").replace("«", '"').replace("»", '"').encode("latin-1")
    )
    docs, skipped = scan_sources(tmp_path)
    assert not skipped
    by_name = {d.path: d for d in docs}
    assert by_name["cp.txt"].text == text
    assert "Økonomi og særavgift" in by_name["l1.txt"].text
    assert by_name["cp.txt"].encoding != "utf-8"


def test_utf8_bom_and_utf16_are_read() -> None:
    assert decode("\ufeffHei på deg".encode("utf-8")) == ("Hei på deg", "utf-8-sig")
    assert decode("Hei på deg".encode("utf-16"))[0] == "Hei på deg"


def test_bad_files_are_skipped_and_named(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Kommunene har ansvar for skolene.", encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_text("   \n\n  ", encoding="utf-8")
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 2)
    (tmp_path / "big.txt").write_text("a" * 2000, encoding="utf-8")
    outside = tmp_path.parent / "outside.txt"
    outside.write_text("secret", encoding="utf-8")
    os.symlink(outside, tmp_path / "link.txt")
    (tmp_path / ".hidden.txt").write_text("hidden", encoding="utf-8")
    docs, skipped = scan_sources(tmp_path, max_bytes=1000)
    assert [d.path for d in docs] == ["good.txt"]
    reasons = {s.path: s.reason for s in skipped}
    assert set(reasons) == {"empty.txt", "blank.txt", "binary.bin", "big.txt", "link.txt"}
    assert "empty" in reasons["empty.txt"]
    assert "binary" in reasons["binary.bin"]
    assert "too large" in reasons["big.txt"]
    assert "link" in reasons["link.txt"]


def test_titles_are_first_line_cut_at_a_word() -> None:
    assert (
        make_title("\n\n Kulturmeldingen kommer snart \nmer", "x") == "Kulturmeldingen kommer snart"
    )
    long = make_title("ord " * 60, "x")
    assert long.endswith("…") and len(long) <= 91
    assert make_title("", "fallback") == "fallback"


class _Upper:
    """A reader for a made-up format: the text upper-cased, so its use shows."""

    format = "upper"
    suffixes = (".upper",)
    version = 1
    isolated = False

    def read(self, data: bytes, name: str) -> Extracted:
        return Extracted(data.decode("utf-8").upper(), self.format, encoding="upper")


def test_the_reader_is_chosen_by_suffix_and_text_is_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(reader_for(Path("a.txt")), TextReader)
    assert reader_for(Path("a.TXT")) is reader_for("ingen-endelse") is registry.FALLBACK
    assert reader_for("a.PDF").format == "pdf" and reader_for("a.PDF").isolated
    monkeypatch.setattr(registry, "READERS", dict(registry.READERS))  # undone after the test
    register(_Upper())
    (tmp_path / "a.upper").write_text("hei på deg", encoding="utf-8")
    (tmp_path / "b.ukjent").write_text("hei på deg", encoding="utf-8")  # no reader: as text
    docs, skipped = scan_sources(tmp_path)
    assert not skipped
    assert [(d.path, d.text, d.encoding, d.format) for d in docs] == [
        ("a.upper", "HEI PÅ DEG", "upper", "upper"),
        ("b.ukjent", "hei på deg", "utf-8", "txt"),
    ]


def test_control_characters_in_names_are_skipped_and_named(tmp_path: Path) -> None:
    """D1: such a file could be indexed but its citation never opened (the route refuses it)."""
    (tmp_path / "god.txt").write_text("Kommunen har ansvar for skolene.", encoding="utf-8")
    for name in ("new\nline.txt", "esc\x1b]0;x\x07.txt", "tab\tnavn.md", "del\x7f.txt"):
        (tmp_path / name).write_text("Kommunen har ansvar for skolene.", encoding="utf-8")
    docs, skipped = scan_sources(tmp_path)
    assert [d.path for d in docs] == ["god.txt"]
    assert len(skipped) == 4
    assert all(s.reason == "file name holds a control character (rename the file)" for s in skipped)
    assert {s.path for s in skipped} == {
        "new\nline.txt",
        "esc\x1b]0;x\x07.txt",
        "tab\tnavn.md",
        "del\x7f.txt",
    }


def test_a_backslash_in_a_name_is_skipped_and_named(tmp_path: Path) -> None:
    """The API refuses backslashes in source paths, so such a citation could never be opened."""
    (tmp_path / "notat\\2023.txt").write_text("Kommunen har ansvar for skolene.", "utf-8")
    docs, skipped = scan_sources(tmp_path)
    assert docs == []
    assert [(s.path, s.reason) for s in skipped] == [
        ("notat\\2023.txt", "file name holds a backslash (rename the file)")
    ]


def test_shown_escapes_what_could_forge_a_line_or_drive_a_terminal() -> None:
    assert shown("rapport.pdf") == "rapport.pdf"
    assert shown("ærlig navn – «sitat».txt") == "ærlig navn – «sitat».txt"
    assert shown("a\nindex updated: 9 sources") == "a\\nindex updated: 9 sources"
    assert shown("x\x1b]0;pwn\x07.txt") == "x\\x1b]0;pwn\\x07.txt"
    assert shown("fil\u202etxt.exe") == "fil\\u202etxt.exe"


TEXT = "Økonomi og særavgift – «sitat»: første kvartal gav 12 millioner kroner.\n"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_read_not_skipped_as_binary(tmp_path: Path, encoding: str) -> None:
    """D8: the README promises UTF-16; without a BOM it was skipped as "binary file"."""
    (tmp_path / "a.txt").write_bytes((TEXT * 3).encode(encoding))
    (tmp_path / "b.md").write_bytes(("# Tittel\n\n" + TEXT).encode(encoding))
    docs, skipped = scan_sources(tmp_path)
    assert not skipped
    assert [(d.text, d.encoding) for d in docs] == [
        (TEXT * 3, encoding),
        ("# Tittel\n\n" + TEXT, encoding),
    ]
    assert docs[1].title == "Tittel" and not docs[0].warnings


def test_binary_with_zero_bytes_is_still_binary(tmp_path: Path) -> None:
    (tmp_path / "tall.bin").write_bytes(b"".join(i.to_bytes(4, "little") for i in range(3000)))
    (tmp_path / "bilde.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(256))
    docs, skipped = scan_sources(tmp_path)
    assert not docs and {s.reason for s in skipped} == {"binary file"}


def test_mixed_utf8_and_cp1252_is_read_part_by_part_with_a_warning(tmp_path: Path) -> None:
    """D8: it was read as cp1252 (mojibake of every UTF-8 æ, ø, å) without a word."""
    utf8, cp1252 = "Første del: særavgift på øl.\n", "Andre del – lagt til i Notisblokk: blåbær.\n"
    (tmp_path / "blandet.txt").write_bytes(utf8.encode("utf-8") + cp1252.encode("cp1252"))
    (tmp_path / "ren.txt").write_bytes(cp1252.encode("cp1252") * 2)
    docs, skipped = scan_sources(tmp_path)
    assert not skipped
    mixed, clean = docs
    assert mixed.text == utf8 + cp1252 and mixed.encoding == "utf-8+cp1252"
    assert mixed.warnings == (
        "mixed encodings: UTF-8 with parts in Windows-1252 (check its æ, ø, å)",
    )
    assert clean.text == cp1252 * 2 and clean.encoding == "cp1252" and not clean.warnings
