"""Who is asking: a user and the groups they belong to, and what a file's groups let them see."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: The group that holds every caller, signed in or not.
PUBLIC = "*"


@dataclass(frozen=True, slots=True)
class Caller:
    """A caller of the service. ``None`` in place of a Caller means no access check at all
    (an operator at the command line), never "anonymous": that is ``ANONYMOUS``."""

    user: str | None
    groups: frozenset[str] = frozenset()


ANONYMOUS = Caller(None, frozenset())


def can_see(file_groups: Iterable[str], caller: Caller) -> bool:
    """True iff the file is public or shares a group with the caller. A file without groups
    (no rule matched it: deny by default) is seen by no caller."""
    groups = set(file_groups)
    return PUBLIC in groups or bool(caller.groups & groups)
