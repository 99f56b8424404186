"""Who may see what: rules from ``access.toml``, callers and their groups, search filters.

Enforced before ranking (``qa.retriever``): a search only ever ranks passages of files the
caller may see and the filters let through.
"""

from qa.access.caller import ANONYMOUS, PUBLIC, Caller, can_see
from qa.access.filters import Filters
from qa.access.globs import glob_match
from qa.access.rules import RULES_FILE, AccessRules, AccessRulesError, Rule

__all__ = [
    "ANONYMOUS",
    "PUBLIC",
    "RULES_FILE",
    "AccessRules",
    "AccessRulesError",
    "Caller",
    "Filters",
    "Rule",
    "can_see",
    "glob_match",
]
