"""Access rules, globs, callers and filters (``qa.access``), without an index."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from qa.access import (
    ANONYMOUS,
    AccessRules,
    AccessRulesError,
    Caller,
    Filters,
    can_see,
    glob_match,
)

RULES = """
[[rule]]
path = "hr/**"
groups = ["hr", "ledelse"]
[[rule]]
path = "hr/public/**"   # never reached: the first match decides
groups = ["*"]
[[rule]]
path = "*.txt"
groups = ["*"]
"""


@pytest.mark.parametrize(
    ("glob", "path", "hit"),
    [
        ("hr/**", "hr/a.txt", True),
        ("hr/**", "hr/x/y/a.pdf", True),
        ("hr/**", "hrx/a.txt", False),
        ("**", "a/b/c", True),
        ("**/*.pdf", "a.pdf", True),
        ("**/*.pdf", "x/y/a.pdf", True),
        ("*.txt", "x/a.txt", False),
        ("?.md", "a.md", True),
        ("[!a]*.md", "a.md", False),
        ("rapport[0-9].txt", "rapport7.txt", True),
    ],
)
def test_globs_match_whole_paths_with_double_star_crossing_folders(
    glob: str, path: str, hit: bool
) -> None:
    assert glob_match(glob, path) is hit


def test_first_matching_rule_decides_and_unmatched_files_have_no_groups(tmp_path: Path) -> None:
    file = tmp_path / "access.toml"
    file.write_text(RULES, "utf-8")
    rules = AccessRules.load(file)
    assert rules.groups_for("hr/public/a.txt") == ("hr", "ledelse")
    assert rules.groups_for("note.txt") == ("*",)
    assert rules.groups_for("ledelse/budget.pdf") == ()  # deny by default


def test_without_a_rules_file_everything_is_public(tmp_path: Path) -> None:
    rules = AccessRules.for_sources(tmp_path)
    assert rules.file is None and rules.groups_for("any/where.pdf") == ("*",)
    (tmp_path / "access.toml").write_text(RULES, "utf-8")
    assert AccessRules.for_sources(tmp_path).file == tmp_path / "access.toml"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[[rule]\npath=", "not valid TOML"),
        ('[[rule]]\npath = "a/**"\n', "'groups' must be a list"),
        ('[[rule]]\ngroups = ["a"]\n', "rule 1: 'path'"),
        ('[[rule]]\npath = "/abs/**"\ngroups = ["a"]\n', "must be relative"),
        ('[[rule]]\npath = "a"\ngroups = ["a,b"]\n', "bad group name"),
        ('[[rule]]\npath = "a"\ngroups = ["a"]\nuser = "x"\n', "unknown key 'user'"),
        ('[[rule]]\npath = "[a"\ngroups = ["a"]\n', "unclosed"),
        ('rule = "x"\n', "[[rule]] tables"),
        ("[other]\nx = 1\n", "unknown key 'other'"),
    ],
)
def test_a_bad_rules_file_is_an_error_naming_the_file(tmp_path: Path, text: str, says: str) -> None:
    file = tmp_path / "access.toml"
    file.write_text(text, "utf-8")
    with pytest.raises(AccessRulesError) as err:
        AccessRules.load(file)
    assert str(file) in str(err.value) and says in str(err.value)


def test_a_missing_configured_rules_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AccessRulesError, match="cannot be read"):
        AccessRules.for_sources(tmp_path, tmp_path / "nope.toml")


def test_callers_see_public_files_and_files_of_their_groups_only() -> None:
    hr = Caller("kari", frozenset({"hr"}))
    assert can_see(["*"], ANONYMOUS) and can_see(["hr", "ledelse"], hr)
    assert not can_see(["ledelse"], hr) and not can_see(["hr"], ANONYMOUS)
    assert not can_see([], Caller("root", frozenset({"*", "admin"})))  # no rule: nobody


def test_filters_combine_fields_and_any_value_within_a_field() -> None:
    info = {"format": "pdf", "language": "nb", "modified": "2024-03-05T10:00:00+00:00"}
    assert Filters().empty and Filters().matches("a.pdf", info)
    assert Filters(sources=("x/**", "*.pdf")).matches("a.pdf", info)
    assert not Filters(sources=("x/**",)).matches("a.pdf", info)
    assert Filters(formats=("docx", "pdf"), languages=("nb",)).matches("a.pdf", info)
    assert not Filters(formats=("pdf",), languages=("en",)).matches("a.pdf", info)


def test_date_filters_take_after_inclusive_and_before_exclusive() -> None:
    info = {"modified": "2024-03-05T23:59:00+00:00"}
    assert Filters(modified_after=date(2024, 3, 5)).matches("a", info)
    assert not Filters(modified_after=date(2024, 3, 6)).matches("a", info)
    assert Filters(modified_before=date(2024, 3, 6)).matches("a", info)
    assert not Filters(modified_before=date(2024, 3, 5)).matches("a", info)
    assert not Filters(modified_after=date(2000, 1, 1)).matches("a", {})  # unknown time


def test_globs_match_without_backtracking_and_refuse_bad_classes() -> None:
    """A filter is untrusted input: ``**?`` repeated made the old regular expression take
    minutes on one path; a reversed range or an empty class is a clear ValueError."""
    from qa.access.globs import compile_glob, glob_match

    assert not glob_match("**?" * 12 + "Q", "x" * 200 + "/" + "y" * 200)
    assert glob_match("**?" * 12 + "Q", "x" * 200 + "/" + "y" * 200 + "Q")
    assert glob_match("a/**/b", "a/b") and glob_match("a/**/b", "a/x/y/b")
    assert glob_match("[a-c]*.pdf", "b1.pdf") and not glob_match("[!a-c]*.pdf", "b1.pdf")
    for bad in ("[z-a]", "[!]", "[abc"):
        with pytest.raises(ValueError):
            compile_glob(bad)
