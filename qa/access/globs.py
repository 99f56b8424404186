"""Globs on paths relative to the sources folder, as in ``access.toml`` and ``source`` filters.

``*`` and ``?`` stay within one folder, ``**`` crosses folders (``hr/**`` is everything under
``hr/``, ``**/*.pdf`` every PDF at any depth, also at the top), ``[abc]`` is a character
class. A glob matches the whole path.
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=1024)
def compile_glob(glob: str) -> re.Pattern[str]:
    """The regular expression of ``glob``; ValueError for an unclosed ``[``."""
    out, i, n = [], 0, len(glob)
    while i < n:
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "[":
            end = glob.find("]", i + 2)
            if end < 0:
                raise ValueError(f"unclosed '[' in the glob {glob!r}")
            body = glob[i + 1 : end]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace("\\-", "-")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = end + 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def glob_match(glob: str, path: str) -> bool:
    """True when ``glob`` matches the whole of ``path`` (POSIX separators)."""
    return compile_glob(glob).fullmatch(path) is not None
