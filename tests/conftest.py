"""Shared fixtures: a fake embedder for fast tests, tiny real indexes in a temporary folder."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.index import build_index
from qa.retriever import Retriever

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "sources"
SHARED = ROOT.parent / "shared"


class FakeEmbedder:
    """Bag of hashed words and character trigrams: deterministic, fast, and roughly topical."""

    name = "fake-embedder"
    fingerprint = "fake-embedder-v1"
    dim = 64
    max_tokens = 512

    def __init__(self) -> None:
        self.calls = 0
        self.embedded = 0

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        words = re.findall(r"\w+", text.lower())
        grams = [w[i : i + 3] for w in words for i in range(max(1, len(w) - 2))]
        for g in words + grams:
            h = int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little")
            v[h % self.dim] += 1.0 if h & 1 << 31 else -1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim))

    def embed_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        self.calls += 1
        self.embedded += len(texts)
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim))

    def count_tokens(self, text: str) -> int:
        return len(text.split()) * 2 + 2


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


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def tiny_sources(tmp_path: Path) -> Path:
    return write_tiny_sources(tmp_path / "sources")


@pytest.fixture
def settings(tmp_path: Path, tiny_sources: Path) -> Settings:
    """Settings for a tiny corpus, small chunks so files give several passages."""
    return Settings(
        sources_dir=tiny_sources,
        index_dir=tmp_path / "index",
        cache_dir=tmp_path / "cache",
        chunk_size=120,
        chunk_overlap=30,
        reload_interval_s=0.1,
        _env_file=None,
    )


@pytest.fixture
def tiny_index(settings: Settings, fake_embedder: FakeEmbedder) -> Path:
    build_index(settings, fake_embedder, progress=False)
    return Path(settings.index_dir)


@pytest.fixture
def retriever(tiny_index: Path, settings: Settings, fake_embedder: FakeEmbedder) -> Retriever:
    return Retriever.load(tiny_index, settings, fake_embedder)


@pytest.fixture
def seed_sources(tmp_path: Path) -> Path:
    """A copy of the seed documents (tests may add or change files)."""
    dest = tmp_path / "seeds"
    shutil.copytree(SEEDS, dest)
    return dest
