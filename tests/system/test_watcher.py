"""``qa serve --watch``: a changed source file is re-indexed and served without a restart."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from qa.config import Settings
from qa.index import current_version
from qa.index.watch import SourceWatcher
from qa.retriever import LiveRetriever
from tests.support.procs import qa_env, run_qa, serving

SEEDS = Path(__file__).resolve().parents[2] / "sources"


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def served_texts(live: LiveRetriever, query: str) -> list[str]:
    return [h.passage.text for h in live.get().search(query, 5).hits]


@pytest.fixture
def watched(settings: Settings, tiny_index: Path, fake_embedder):  # type: ignore[no-untyped-def]
    live = LiveRetriever(settings, fake_embedder)
    live.start()
    watcher = SourceWatcher(settings, fake_embedder, live.reload_if_changed)
    watcher.start()
    yield live, watcher
    watcher.stop()
    live.stop()
    assert watcher._thread is not None and not watcher._thread.is_alive()


def test_edit_add_and_remove_are_served_and_only_changes_embedded(
    watched, settings: Settings, fake_embedder
) -> None:  # type: ignore[no-untyped-def]
    live, watcher = watched
    before = live.get().version
    embedded = fake_embedder.embedded
    veg = Path(settings.sources_dir) / "veg.txt"
    veg.write_text(veg.read_text("utf-8") + "\n\nFergekaiene får ny kvasirbelegning.", "utf-8")
    assert wait_for(lambda: any("kvasirbelegning" in t for t in served_texts(live, "kvasir")))
    assert live.get().version != before
    report = watcher.last_report
    assert report is not None and report.embedded <= 3  # the edited file's passages, not all
    assert fake_embedder.embedded - embedded == report.embedded + report.sentences
    text = live.get().source_text("veg.txt")
    for hit in live.get().search("kvasirbelegning", 5).hits:
        p = hit.passage
        assert live.get().source_text(p.source)[p.start : p.end] == p.text
    assert text is not None and text.endswith("kvasirbelegning.")

    (Path(settings.sources_dir) / "ny.txt").write_text("Snøbrøyting i Tromsø.", "utf-8")
    assert wait_for(lambda: live.get().source_text("ny.txt") is not None)
    (Path(settings.sources_dir) / "kultur.txt").unlink()
    assert wait_for(lambda: live.get().source_text("kultur.txt") is None)
    assert watcher.last_error is None and watcher.builds >= 3


def test_an_emptied_folder_keeps_the_served_index(watched, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    live, watcher = watched
    assert wait_for(lambda: watcher.last_report is not None)  # the start-up check ran
    before = live.get().version
    for f in Path(settings.sources_dir).rglob("*.txt"):
        f.unlink()
    assert wait_for(lambda: watcher.last_error is not None)
    assert "nothing to index" in watcher.last_error
    assert live.get().version == before == current_version(settings.index_dir)
    assert live.get().search("kulturskole", 3).hits  # still answering
    (Path(settings.sources_dir) / "igjen.txt").write_text("Kulturskolen er tilbake.", "utf-8")
    assert wait_for(lambda: live.get().source_text("igjen.txt") is not None)
    assert watcher.last_error is None


def test_changes_made_while_down_are_indexed_at_start(
    settings: Settings, tiny_index: Path, fake_embedder
) -> None:  # type: ignore[no-untyped-def]
    (Path(settings.sources_dir) / "veg.txt").unlink()
    live = LiveRetriever(settings, fake_embedder)
    live.start()
    assert live.get().source_text("veg.txt") is not None
    watcher = SourceWatcher(settings, fake_embedder, live.reload_if_changed)
    watcher.start()
    try:
        assert wait_for(lambda: live.get().source_text("veg.txt") is None)
    finally:
        watcher.stop()
        live.stop()


def test_a_missing_sources_folder_is_named(settings: Settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    shutil.rmtree(settings.sources_dir)
    watcher = SourceWatcher(settings, fake_embedder, lambda: None)
    with pytest.raises(FileNotFoundError, match="sources folder to watch not found"):
        watcher.start()


@pytest.mark.slow
def test_real_server_with_watch_serves_an_edit(tmp_path: Path) -> None:
    """Real model, real `qa serve` with QA_WATCH_SOURCES: an appended paragraph is found
    by a search seconds later, with an exact citation."""
    src, index = tmp_path / "src", tmp_path / "index"
    shutil.copytree(SEEDS, src)
    first = run_qa(["index", "--sources", str(src), "--index", str(index), "--quiet"], tmp_path)
    assert first.returncode == 0, first.stderr
    with serving(index, src, tmp_path, env=qa_env(QA_WATCH_SOURCES="true")) as server:
        target = sorted(src.glob("*.txt"))[0]
        word = "Kvasirfjellprosjektet"
        with target.open("a", encoding="utf-8") as fh:
            fh.write(f"\n\n{word} skal gi alle kommuner bredband innen 2030.\n")

        def found() -> list[dict]:
            r = httpx.get(f"{server.url}/search", params={"q": word, "k": 3}, timeout=60)
            assert r.status_code == 200, r.text
            return [h for h in r.json()["results"] if word in h["text"]]

        assert wait_for(lambda: bool(found()), timeout=90), server.output()[-3000:]
        hit = found()[0]
        source = httpx.get(f"{server.url}/sources/{hit['source']}", timeout=10).text
        assert source[hit["start"] : hit["end"]] == hit["text"]
        assert hit["source"] == target.name


def test_skipped_files_are_logged_by_name_once(
    settings: Settings, tiny_index: Path, fake_embedder, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    """D4: with --watch, skipped files were never named in the log."""
    src = Path(settings.sources_dir)
    (src / "tom.txt").write_bytes(b"")
    (src / "farge\x1b[31m.txt").write_text("Kommunen brøyter.", encoding="utf-8")
    watcher = SourceWatcher(settings, fake_embedder, lambda: None)
    with caplog.at_level(logging.WARNING, logger="qa.index.watch"):
        watcher.rebuild()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "farge\\x1b[31m.txt: skipped: file name holds a control character (rename the file)",
        "tom.txt: skipped: empty file",
    ]
    caplog.clear()
    (src / "veg.txt").write_text("Nye regler for vegene.", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="qa.index.watch"):
        watcher.rebuild()  # the same files skipped again: not repeated at every change
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
