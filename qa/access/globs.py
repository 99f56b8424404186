"""Globs on paths relative to the sources folder, as in ``access.toml`` and ``source`` filters.

``*`` and ``?`` stay within one folder, ``**`` crosses folders (``hr/**`` is everything under
``hr/``, ``**/*.pdf`` every PDF at any depth, also at the top), ``[abc]``, ``[a-z]`` and
``[!abc]`` are character classes. A glob matches the whole path.

Matching walks the path once over the set of glob positions it may be at (no backtracking):
a caller's filter is untrusted input, and a regular expression made from ``**?**?**?...``
took seconds to minutes on one path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "lit", "any" (?), "star" (*), "dstar" (**), "dir" (**/), "class"
    text: str = ""  # the character of "lit"; the members of "class" (ranges expanded lazily)
    negate: bool = False

    def takes(self, char: str) -> bool:
        """Whether this one-character token matches ``char``."""
        if self.kind == "lit":
            return char == self.text
        if char == "/":
            return False
        if self.kind == "any":
            return True
        return _in_class(self.text, char) != self.negate


def _in_class(body: str, char: str) -> bool:
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            if body[i] <= char <= body[i + 2]:
                return True
            i += 3
        else:
            if body[i] == char:
                return True
            i += 1
    return False


def _class(glob: str, i: int) -> tuple[_Token, int]:
    """The class starting at ``glob[i] == "["`` and the index after its ``]``."""
    end = glob.find("]", i + 2)
    if end < 0:
        raise ValueError(f"unclosed '[' in the glob {glob!r}")
    body = glob[i + 1 : end]
    negate = body.startswith("!")
    body = body[1:] if negate else body
    if not body:
        raise ValueError(f"empty character class in the glob {glob!r}")
    for j in range(len(body) - 2):
        if body[j + 1] == "-" and body[j] > body[j + 2]:
            raise ValueError(f"bad range {body[j : j + 3]!r} in the glob {glob!r}")
    return _Token("class", body, negate), end + 1


@lru_cache(maxsize=1024)
def compile_glob(glob: str) -> tuple[_Token, ...]:
    """The tokens of ``glob``; ValueError (saying why) for an unclosed ``[`` or a bad class."""
    out: list[_Token] = []
    i, n = 0, len(glob)
    while i < n:
        if glob.startswith("**/", i):
            out.append(_Token("dir"))
            i += 3
        elif glob.startswith("**", i):
            out.append(_Token("dstar"))
            i += 2
        elif glob[i] in "*?":
            out.append(_Token("star" if glob[i] == "*" else "any"))
            i += 1
        elif glob[i] == "[":
            token, i = _class(glob, i)
            out.append(token)
        else:
            out.append(_Token("lit", glob[i]))
            i += 1
    return tuple(out)


def _closure(tokens: tuple[_Token, ...], states: set[int]) -> set[int]:
    """The states plus those reached without reading a character (wildcards matching "")."""
    todo, seen = list(states), set(states)
    while todo:
        i = todo.pop()
        if i < len(tokens) and tokens[i].kind in ("star", "dstar", "dir") and i + 1 not in seen:
            seen.add(i + 1)
            todo.append(i + 1)
    return seen


def glob_match(glob: str, path: str) -> bool:
    """True when ``glob`` matches the whole of ``path`` (POSIX separators)."""
    tokens = compile_glob(glob)
    states = _closure(tokens, {0})
    for char in path:
        following: set[int] = set()
        for i in states:
            if i == len(tokens):
                continue
            token = tokens[i]
            if token.kind == "dstar" or (token.kind == "star" and char != "/"):
                following.add(i)
            elif token.kind == "dir":
                following.add(i)
                if char == "/":
                    following.add(i + 1)
            elif token.kind not in ("star",) and token.takes(char):
                following.add(i + 1)
        if not following:
            return False
        states = _closure(tokens, following)
    return len(tokens) in states
