"""What every ``bench`` command shares: the typer app, the console and the one-line error policy."""

from __future__ import annotations

import functools
import sys

import typer
from rich.console import Console

from benchmark.core.errors import BenchError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)
console = Console()


def print_version(value: bool) -> None:
    if value:
        from benchmark import __version__

        print(f"bench {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    version: bool = typer.Option(False, "--version", callback=print_version, is_eager=True, help="print the version"),
) -> None:
    """Group-robustness benchmark: train methods on grouped datasets, report worst-group leaderboards."""


def cli_errors(command):
    """Turn BenchError into one line on stderr and exit code 2, and Ctrl-C outside a sweep into one line and
    exit code 130."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            print("interrupted: nothing was trained or written", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper
