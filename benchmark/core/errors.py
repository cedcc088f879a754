"""The one exception type for user-facing errors: the CLI prints its message as one line and exits 2."""


class BenchError(Exception):
    """Bad input or configuration, reported to the user without a traceback."""


def one_line(exc: Exception) -> str:
    """``Type: first line of the message``, for an error another library raised."""
    return f"{type(exc).__name__}: {next(iter(str(exc).strip().splitlines()), '')}".rstrip(": ")


def did_you_mean(value: str, choices) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to a misspelt ``value``, or an empty string."""
    import difflib

    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def require(module: str, needed_for: str, extra: str) -> None:
    """A BenchError naming the extra to install when the optional dependency ``module`` is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise BenchError(f"{needed_for} needs {module}: pip install -e '.[{extra}]'")
