"""Keep the index in step with the sources folder while the service runs (``--watch``).

``qa serve --watch`` (or ``QA_WATCH_SOURCES=true``) re-indexes with the model the service
has already loaded, so a saved file is searchable about a second later instead of after
a ``qa index`` run that starts Python and loads the model again (several seconds). The
folder is watched with watchfiles (inotify on Linux, polling where events do not reach,
``QA_WATCH_POLLING=true``); a burst of changes (a copy of many files) becomes one build.

A build that fails (an emptied folder, a full disk, another ``qa index`` holding the lock)
is logged and the service goes on answering from the index it has; the next change tries
again. Only changed files are embedded (``build_index`` reuses vectors by content hash).
Skipped files and files with warnings (scanned pages, mixed encodings) are logged as
warnings, each named, when they first appear.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from qa.config import Settings
from qa.index import BuildReport, IndexBusy, IndexProblem, build_index
from qa.index.access import rules_path
from qa.sources import shown
from qa.types import Embedder

log = logging.getLogger(__name__)


class SourceWatcher:
    """A thread that rebuilds the index when files under ``settings.sources_dir`` change."""

    def __init__(
        self, settings: Settings, embedder: Embedder, on_built: Callable[[], object]
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.on_built = on_built  # e.g. LiveRetriever.reload_if_changed: serve it at once
        self.last_report: BuildReport | None = None
        self.last_error: str | None = None
        self.builds = 0
        self._named: set[tuple[str, str]] = set()  # (path, problem) logged already
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bring the index up to date (files may have changed while the service was down),
        then watch. Raises FileNotFoundError when the sources folder does not exist."""
        folder = Path(self.settings.sources_dir)
        if not folder.is_dir():
            raise FileNotFoundError(f"sources folder to watch not found: {folder}")
        self._thread = threading.Thread(target=self._run, name="source-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def rebuild(self) -> BuildReport | None:
        """One ``build_index`` run; failures are logged and kept in ``last_error``."""
        try:
            report = build_index(self.settings, self.embedder, progress=False)
        except IndexBusy as exc:  # a `qa index` is writing it: its build will be served
            log.info("re-index skipped: %s", exc)
            return None
        except (IndexProblem, OSError) as exc:
            self.last_error = str(exc)
            log.error("re-index failed, still serving the previous index: %s", exc)
            return None
        self.last_report, self.last_error = report, None
        self._name_problems(report)
        if report.changed:
            self.builds += 1
            log.info(
                "re-indexed %s: %d embedded, %d reused, %d removed in %.2f s",
                self.settings.sources_dir,
                report.embedded,
                report.reused,
                len(report.removed),
                report.seconds,
            )
            self.on_built()
        return report

    def _name_problems(self, report: BuildReport) -> None:
        """Log each skipped file and each file warning, named, once: again only when it
        comes back after a build without it (every build rescans every file)."""
        problems = {(s.path, f"skipped: {s.reason}") for s in report.skipped}
        problems.update(report.warnings)
        for path, problem in sorted(problems - self._named):
            log.warning("%s: %s", shown(path), problem)
        self._named = problems

    def _run(self) -> None:
        from watchfiles import Change, DefaultFilter, watch

        default = DefaultFilter()
        # changes inside the index folder (when it sits in the sources) are our own writes
        index_dir = Path(self.settings.index_dir).resolve()

        def relevant(change: Change, path: str) -> bool:
            return default(change, path) and not Path(path).resolve().is_relative_to(index_dir)

        while not self._stop.is_set():
            armed = False
            try:
                for batch in watch(
                    *self._watched(),
                    watch_filter=relevant,
                    stop_event=self._stop,
                    debounce=self.settings.watch_debounce_ms,
                    step=100,
                    rust_timeout=500,
                    yield_on_timeout=True,  # the first (empty) yield: watching has begun
                    force_polling=self.settings.watch_polling or None,
                    raise_interrupt=False,
                ):
                    # Build once as soon as the watch is armed, so a change made while the
                    # service was down, or before the watch began, is not missed.
                    if batch or not armed:
                        log.debug("sources changed: %d paths", len(batch))
                        armed = True
                        self._guarded(self.rebuild)
            except Exception as exc:  # e.g. the folder went away: look again in a while
                log.error("cannot watch %s (%s); trying again", self.settings.sources_dir, exc)
                self._stop.wait(self.settings.reload_interval_s)

    def _watched(self) -> list[Path]:
        """The sources folder, and the access rules file when it lies elsewhere
        (``QA_ACCESS_FILE``): a changed rule takes effect at the next build."""
        paths = [Path(self.settings.sources_dir)]
        rules = self.settings.access_file
        if rules is not None and rules_path(self.settings) is None and Path(rules).is_file():
            paths.append(Path(rules))
        return paths

    def _guarded(self, step: Callable[[], object]) -> None:
        try:
            step()
        except Exception:  # the watcher must outlive any bug in one build
            log.exception("re-index failed")
