"""``qa eval``: score retrieval on a gold question set (run), report it (report), the command (cli)."""
