"""The answer inside the passage: sentences cut with exact offsets (``sentences``), the one
most likely to answer chosen (``span``), and set on a search's hits (``locate``)."""
