"""Access and filters enforced in the index and the retriever: before ranking, k results."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from qa.access import ANONYMOUS, Caller, Filters
from qa.config import Settings
from qa.index import IndexProblem, build_index, dense, up_to_date
from qa.index.lexical import LexicalIndex
from qa.retriever import Retriever
from tests.support.fake import FakeEmbedder

TOPIC = "lønnsforhandling for ansatte i avdelingen, lønn og tillegg avtalt i møtet"
FOLDERS = {"hr/**": ["hr"], "ledelse/**": ["ledelse"], "pub/**": ["*"]}
RULES = "".join(
    f'[[rule]]\npath = "{glob}"\ngroups = {groups!r}\n' for glob, groups in FOLDERS.items()
)


def _corpus(root: Path) -> Path:
    """Hidden folders hold the best answers to TOPIC; public files only weaker ones."""
    for folder in ("hr", "ledelse"):
        for i in range(4):
            (root / folder).mkdir(parents=True, exist_ok=True)
            (root / folder / f"sak{i}.txt").write_text(f"{TOPIC} sak {i}.\n", "utf-8")
    (root / "pub").mkdir()
    for i in range(8):
        text = f"Åpent dokument {i} om vei og vann, med et ord om lønn {i}.\n"
        (root / "pub" / f"doc{i}.md").write_text(text, "utf-8")
    (root / "annet.txt").write_text(f"{TOPIC} uten regel.\n", "utf-8")  # no rule matches
    (root / "access.toml").write_text(RULES, "utf-8")
    return root


@pytest.fixture
def access_settings(tmp_path: Path, settings: Settings) -> Settings:
    """The shared test settings on the access corpus, one passage a file."""
    update = {"sources_dir": _corpus(tmp_path / "src"), "chunk_size": 400, "chunk_overlap": 0}
    return settings.model_copy(update=update)


@pytest.fixture
def access_retriever(access_settings: Settings, fake_embedder: FakeEmbedder) -> Retriever:
    build_index(access_settings, fake_embedder, progress=False)
    return Retriever.load(access_settings.index_dir, access_settings, fake_embedder)


def _sources(r: Retriever, caller: Caller | None, filters: Filters | None = None) -> list[str]:
    return [h.passage.source for h in r.search(TOPIC, 5, caller, filters).hits]


def test_rules_are_recorded_and_the_rules_file_is_not_indexed(
    access_retriever: Retriever,
) -> None:
    sources = access_retriever.manifest["sources"]
    assert "access.toml" not in sources
    assert sources["hr/sak0.txt"]["groups"] == ["hr"] and sources["annet.txt"]["groups"] == []
    assert sources["pub/doc0.md"]["modified"].endswith("+00:00")
    assert access_retriever.manifest["access"]["unmatched"] == 1
    assert access_retriever.visible_sources(ANONYMOUS) == {f"pub/doc{i}.md" for i in range(8)}
    assert not access_retriever.can_see("annet.txt", Caller("x", frozenset({"hr", "ledelse"})))


def test_hidden_best_answers_still_leave_k_visible_results(access_retriever: Retriever) -> None:
    everything = _sources(access_retriever, None)
    assert everything[0].startswith(("hr/", "ledelse/", "annet"))
    anonymous = _sources(access_retriever, ANONYMOUS)
    assert len(anonymous) == 5 and all(s.startswith("pub/") for s in anonymous)
    hr = _sources(access_retriever, Caller("kari", frozenset({"hr"})))
    assert hr[0].startswith("hr/") and all(s.startswith(("hr/", "pub/")) for s in hr)
    assert len(hr) == 5


def test_filters_restrict_before_ranking(access_retriever: Retriever) -> None:
    only_md = _sources(access_retriever, None, Filters(formats=("md",)))
    assert len(only_md) == 5 and all(s.endswith(".md") for s in only_md)
    one = _sources(access_retriever, None, Filters(sources=("pub/doc3.md",)))
    assert one == ["pub/doc3.md"]
    assert _sources(access_retriever, ANONYMOUS, Filters(sources=("hr/**",))) == []
    assert _sources(access_retriever, None, Filters(modified_before=date(1990, 1, 1))) == []


def test_search_without_caller_or_filters_is_unchanged(
    access_retriever: Retriever,
) -> None:
    plain = access_retriever.search(TOPIC, 5)
    again = access_retriever.search(TOPIC, 5, None, Filters())
    assert plain == again


def test_a_changed_rules_file_rebuilds_without_re_embedding(
    access_settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    build_index(access_settings, fake_embedder, progress=False)
    assert up_to_date(access_settings, fake_embedder.fingerprint) is not None
    embedded = fake_embedder.embedded
    rules = Path(access_settings.sources_dir) / "access.toml"
    rules.write_text(RULES.replace("['hr']", "['*']"), "utf-8")
    assert up_to_date(access_settings, fake_embedder.fingerprint) is None
    report = build_index(access_settings, fake_embedder, progress=False)
    assert report.changed and report.embedded == 0 and fake_embedder.embedded == embedded
    fresh = Retriever.load(access_settings.index_dir, access_settings, fake_embedder)
    assert fresh.groups_of("hr/sak1.txt") == ("*",)


def test_a_bad_rules_file_fails_the_build_and_keeps_the_index(
    access_settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    first = build_index(access_settings, fake_embedder, progress=False)
    rules = Path(access_settings.sources_dir) / "access.toml"
    rules.write_text("[[rule]]\npath = 3\n", "utf-8")
    with pytest.raises(IndexProblem, match=r"access\.toml: rule 1"):
        build_index(access_settings, fake_embedder, progress=False)
    with pytest.raises(IndexProblem, match=r"access\.toml"):
        up_to_date(access_settings, fake_embedder.fingerprint)
    kept = Retriever.load(access_settings.index_dir, access_settings, fake_embedder)
    assert kept.version == first.build_id


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
@pytest.mark.parametrize("every", [7, 1500])  # many rows allowed, and only two
def test_faiss_searches_only_allowed_rows_and_returns_k(kind: str, every: int) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    mask = np.arange(3000) % every == 0
    ids, _ = dense.search(dense.build(vectors, kind), vectors[:3], 10, dense.Allowed(mask))
    assert ids.shape == (3, min(10, int(mask.sum())))
    assert (ids >= 0).all() and mask[ids].all()


def test_bm25_mask_ranks_only_allowed_rows() -> None:
    lex = LexicalIndex.build(["lønn og tillegg", "lønn", "vei og vann", "lønnstillegg lønn"])
    mask = np.array([0, 1, 1, 0], dtype=np.float32)
    assert lex.search("lønn", 3, mask)[0].tolist() == [1]
    assert set(lex.search("lønn", 3)[0].tolist()) == {0, 1, 3}
    assert lex.coverage("vann tillegg") == 1.0
    assert lex.coverage("vann tillegg", mask) == 0.5  # "tillegg": only in hidden rows


def test_an_anonymous_caller_of_an_all_public_index_gets_the_same_results(
    retriever: Retriever,
) -> None:
    for query in ("fylkesveger", "skole og kultur"):
        assert retriever.search(query, 4, ANONYMOUS) == retriever.search(query, 4)


def test_eval_as_a_group_only_gets_what_the_group_may_see(
    tmp_path: Path, tiny_index: Path, fake_embedder: FakeEmbedder
) -> None:
    """`qa eval --source`: every result comes from the allowed files; --url refuses them."""
    from tests.unit.eval_hand import TINY_QUESTIONS, write_gold
    from tests.unit.test_eval_cli import run_eval

    gold = write_gold(tmp_path / "gold.jsonl", TINY_QUESTIONS)
    out = tmp_path / "run"
    ok = run_eval("--gold", gold, "--index", tiny_index, "--out", out, "--source", "sub/**")
    assert ok.exit_code == 0, ok.output
    saved = json.loads((out / "results.json").read_text("utf-8"))
    got = {r["source"] for q in saved["questions"] for r in q["results"]}
    assert got == {"sub/helse.txt"} and saved["access"]["groups"] is None
    url = run_eval("--gold", gold, "--url", "http://127.0.0.1:9", "--groups", "hr")
    assert url.exit_code == 2 and "not --url" in url.output


def test_hidden_files_do_not_change_the_scores_a_caller_sees(
    tmp_path: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    """The lexical weight depends on the corpus's languages: counted over what the caller may
    see, a hidden folder in another language changes no anonymous score."""
    public = {
        f"pub/doc{i}.txt": f"Kommunen har ansvar for vei og vann nummer {i}, og skolene."
        for i in range(6)
    }
    hidden = {
        f"hr/case{i}.txt": f"The employee salary negotiation for case {i} was agreed today."
        for i in range(6)
    }

    def scores(files: dict[str, str], name: str) -> list[float]:
        root = tmp_path / name
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text + "\n", "utf-8")
        (root / "access.toml").write_text(
            '[[rule]]\npath = "hr/**"\ngroups = ["hr"]\n[[rule]]\npath = "**"\ngroups = ["*"]\n'
        )
        s = settings.model_copy(update={"sources_dir": root, "index_dir": tmp_path / f"i-{name}"})
        build_index(s, fake_embedder, progress=False)
        found = Retriever.load(s.index_dir, s, fake_embedder).search(
            "Who in the kommunen is responsible for vei, vann and the schools?", 5, ANONYMOUS
        )
        return [round(h.score, 9) for h in found.hits]

    assert scores(public, "alone") == scores(public | hidden, "with-hidden")
