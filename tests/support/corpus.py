"""Tiny test corpora written into a temporary folder, and where the repository's files are."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "sources"
SHARED = ROOT.parent / "shared"

TINY = {
    "kultur.txt": (
        "Kulturskolen i kommunen\n\nKommunene skal gi et kulturskoletilbud til barn og unge. "
        "Opplæringsloven pålegger alle kommuner dette.\n\nKulturskolen samarbeider med "
        "grunnskolen om musikk, dans og teater."
    ),
    "veg.txt": (
        "Vegvedlikehold\n\nFylkeskommunen har ansvar for fylkesvegene. Vedlikeholdet av "
        "vegene koster 3,2 milliarder kroner i 2024.\n\nBruer og tunneler skal inspiseres "
        "hvert femte år."
    ),
    "sub/helse.txt": (
        "Helse og omsorg\n\nKommunene har ansvar for sykehjem og hjemmetjenester. "
        "Fastlegeordningen er under press i mange kommuner."
    ),
}
LATIN1 = "Økonomi og særavgift\n\nFørste kvartal gav et overskudd på 12 millioner kroner."


def write_tiny_sources(folder: Path) -> Path:
    """Three UTF-8 files (one in a subfolder) and one Latin-1 file."""
    for name, text in TINY.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (folder / "okonomi.txt").write_bytes(LATIN1.encode("latin-1"))
    return folder
