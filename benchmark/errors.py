"""The one exception type for user-facing errors: the CLI prints its message as one line and exits 2."""


class BenchError(Exception):
    """Bad input or configuration, reported to the user without a traceback."""
