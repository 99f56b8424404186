"""``qa eval``: ask a gold question set (run), judge it (metrics), print it (report); the
client of a running server (http) and the command (cli)."""
