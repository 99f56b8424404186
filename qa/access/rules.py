"""``access.toml``: which groups may see which files, the first matching rule deciding.

::

    [[rule]]
    path = "hr/**"            # glob on the path relative to the sources folder
    groups = ["hr", "ledelse"]
    [[rule]]
    path = "**"
    groups = ["*"]            # "*": every caller, signed in or not

With a rules file a file no rule matches is visible to nobody (deny by default: a new
folder is hidden until someone decides); without one everything is public, as before
access control existed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.access.caller import PUBLIC
from qa.access.globs import compile_glob, glob_match

#: The rules file's name at the root of the sources folder (never indexed as a source).
RULES_FILE = "access.toml"


class AccessRulesError(ValueError):
    """The rules file cannot be used; the message names the file and the rule."""


@dataclass(frozen=True, slots=True)
class Rule:
    path: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class AccessRules:
    """The rules of one file (``file`` None: no file, everything public)."""

    rules: tuple[Rule, ...]
    file: Path | None = None

    @classmethod
    def public(cls) -> AccessRules:
        return cls((Rule("**", (PUBLIC,)),))

    @classmethod
    def load(cls, path: Path) -> AccessRules:
        """The rules in ``path``; AccessRulesError saying what is wrong and where."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except OSError as exc:
            raise AccessRulesError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
        except UnicodeDecodeError as exc:
            raise AccessRulesError(f"{path}: not UTF-8 text ({exc.reason})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise AccessRulesError(f"{path}: not valid TOML ({exc})") from exc
        extra = sorted(set(data) - {"rule"})
        if extra:
            raise AccessRulesError(f"{path}: unknown key {extra[0]!r}; only [[rule]] tables")
        raw = data.get("rule", [])
        if not isinstance(raw, list):
            raise AccessRulesError(f"{path}: 'rule' must be [[rule]] tables")
        return cls(tuple(_rule(path, i, r) for i, r in enumerate(raw, start=1)), path)

    @classmethod
    def for_sources(cls, sources_dir: Path, access_file: Path | None = None) -> AccessRules:
        """The rules of a sources folder: ``access_file`` if set (it must exist), else its
        ``access.toml`` if there is one, else everything public."""
        if access_file is not None:
            return cls.load(access_file)
        default = Path(sources_dir) / RULES_FILE
        return cls.load(default) if default.is_file() else cls.public()

    def groups_for(self, rel_path: str) -> tuple[str, ...]:
        """The groups of the first rule matching ``rel_path``; () when none does."""
        for rule in self.rules:
            if glob_match(rule.path, rel_path):
                return rule.groups
        return ()


def _rule(file: Path, n: int, raw: Any) -> Rule:
    """Rule number ``n`` checked: a glob ``path`` and a list of group names."""
    where = f"{file}: rule {n}"
    if not isinstance(raw, dict):
        raise AccessRulesError(f"{where} is not a table")
    extra = sorted(set(raw) - {"path", "groups"})
    if extra:
        raise AccessRulesError(f"{where}: unknown key {extra[0]!r} (only path and groups)")
    path, groups = raw.get("path"), raw.get("groups")
    if not isinstance(path, str) or not path.strip():
        raise AccessRulesError(f"{where}: 'path' must be a non-empty glob string")
    if path.startswith("/") or "\\" in path:
        raise AccessRulesError(f"{where}: 'path' {path!r} must be relative, with / separators")
    try:
        compile_glob(path)
    except ValueError as exc:
        raise AccessRulesError(f"{where}: {exc}") from exc
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise AccessRulesError(f"{where}: 'groups' must be a list of group names")
    bad = [g for g in groups if not g.strip() or "," in g or g != g.strip()]
    if bad:
        raise AccessRulesError(f"{where}: bad group name {bad[0]!r} (no commas, no spaces)")
    return Rule(path, tuple(groups))
