"""What every ``bench`` command shares: the typer app, the console, the one-line error policy, list and seed
parsing."""

from __future__ import annotations

import functools
import sys

import typer
from rich.console import Console

from benchmark.core.errors import BenchError
from benchmark.core.settings import MAX_SEEDS

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


def parse_list(text: str, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise BenchError(f"{what} is empty")
    return items


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """``0,1,2`` or ``0-4`` (inclusive) or a mix: at most :data:`MAX_SEEDS` seeds, each a valid generator seed."""
    from benchmark.core.settings import SEED

    seeds: list[int] = []
    for item in parse_list(text, option):
        low, dash, high = item.partition("-")
        try:
            start, end = (int(low), int(high)) if dash and low else (int(item), int(item))
        except ValueError:
            raise BenchError(f"bad {option} '{text}': expected integers like 0,1,2 or 0-4") from None
        if start not in SEED or end not in SEED:
            raise BenchError(f"bad {option} '{text}': seeds must be {SEED}")
        if end < start:
            raise BenchError(f"bad {option} '{text}': the range {item} ends before it starts")
        if len(seeds) + end - start + 1 > MAX_SEEDS:
            raise BenchError(f"bad {option} '{text}': more than {MAX_SEEDS} seeds")
        seeds += range(start, end + 1)
    return list(dict.fromkeys(seeds))
