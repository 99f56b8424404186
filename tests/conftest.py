"""Shared fixtures: a fake embedder for fast tests, tiny real indexes in a temporary folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.config import Settings
from qa.index import build_index
from qa.retriever import Retriever
from tests.support.corpus import SEEDS, write_tiny_sources
from tests.support.fake import FakeEmbedder


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
