"""Votes on search results, stored for a while and turned into a gold set for ``qa eval``.

``store`` (the SQLite file), ``service`` (what a server keeps running), ``export`` (gold
JSON Lines), ``stats`` (what operators read), ``cli`` (``qa feedback``).
"""

from qa.feedback.service import Feedback
from qa.feedback.store import VOTES, Entry, FeedbackError, FeedbackStore, Vote, feedback_path

__all__ = ["VOTES", "Entry", "Feedback", "FeedbackError", "FeedbackStore", "Vote", "feedback_path"]
