"""Property: whatever the rules, files, caller and filters, a search only returns files the
rules let the caller see and the filters let through."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.access import AccessRules, Caller, Filters, can_see
from qa.config import Settings
from qa.index import build_index
from qa.retriever import Retriever
from tests.support.fake import FakeEmbedder

GROUPS = ["*", "hr", "ledelse", "it"]
FOLDERS = ["", "hr/", "ledelse/", "hr/arkiv/"]
GLOBS = ["**", "hr/**", "ledelse/**", "*.txt", "**/*.md", "hr/arkiv/**", "*"]
WORDS = ["lønn", "budsjett", "vei", "vann", "skole", "styre", "møte", "avtale"]

files = st.dictionaries(
    st.tuples(st.sampled_from(FOLDERS), st.integers(0, 5), st.sampled_from(["txt", "md"])),
    st.lists(st.sampled_from(WORDS), min_size=3, max_size=12),
    min_size=1,
    max_size=10,
)
rules = st.lists(
    st.tuples(st.sampled_from(GLOBS), st.lists(st.sampled_from(GROUPS), max_size=2)),
    max_size=4,
)
callers = st.frozensets(st.sampled_from(GROUPS[1:]), max_size=2)
filters = st.builds(
    Filters,
    sources=st.lists(st.sampled_from(GLOBS), max_size=2).map(tuple),
    formats=st.lists(st.sampled_from(["txt", "md", "pdf"]), max_size=1).map(tuple),
)


def _toml(pairs: list[tuple[str, list[str]]]) -> str:
    return "".join(f'[[rule]]\npath = "{glob}"\ngroups = {groups!r}\n' for glob, groups in pairs)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files, rules, callers, filters, st.sampled_from(WORDS), st.integers(1, 8))
def test_responses_only_hold_allowed_files(
    corpus: dict, rule_pairs: list, groups: frozenset, wanted: Filters, word: str, k: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        for (folder, n, ext), words in corpus.items():
            path = src / f"{folder}f{n}.{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(" ".join(words) + ".\n", "utf-8")
        (src / "access.toml").write_text(_toml(rule_pairs), "utf-8")
        s = Settings(
            sources_dir=src, index_dir=Path(tmp) / "index", cache_dir=Path(tmp), _env_file=None
        )
        embedder = FakeEmbedder()
        build_index(s, embedder, progress=False)
        retriever = Retriever.load(s.index_dir, s, embedder)
        caller = Caller("u", groups)
        table = AccessRules.load(src / "access.toml")
        info = retriever.manifest["sources"]
        allowed = {
            p for p in info if can_see(table.groups_for(p), caller) and wanted.matches(p, info[p])
        }
        result = retriever.search(word, k, caller, wanted)
        got = {h.passage.source for h in result.hits}
        assert got <= allowed
        rows = sum(1 for p in retriever.passages if p.source in allowed)
        assert len(result.hits) == min(k, rows)  # k come back when k are allowed
        assert {x.path for x in retriever.sources(caller)} <= {
            p for p in info if can_see(table.groups_for(p), caller)
        }
