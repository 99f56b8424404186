"""Reading the sources folder: encodings detected, bad files skipped and named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qa.sources import Decoded, decode, make_title, reader_for, register, registry, scan_sources
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

    suffixes = (".upper",)

    def read(self, path: Path, data: bytes) -> Decoded:
        return Decoded(data.decode("utf-8").upper(), "upper")


def test_the_reader_is_chosen_by_suffix_and_text_is_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(reader_for(Path("a.txt")), TextReader)
    assert reader_for(Path("a.TXT")) is reader_for(Path("ingen-endelse")) is registry.FALLBACK
    monkeypatch.setattr(registry, "READERS", dict(registry.READERS))  # undone after the test
    register(_Upper())
    (tmp_path / "a.upper").write_text("hei på deg", encoding="utf-8")
    (tmp_path / "b.ukjent").write_text("hei på deg", encoding="utf-8")  # no reader: as text
    docs, skipped = scan_sources(tmp_path)
    assert not skipped
    assert [(d.path, d.text, d.encoding) for d in docs] == [
        ("a.upper", "HEI PÅ DEG", "upper"),
        ("b.ukjent", "hei på deg", "utf-8"),
    ]
