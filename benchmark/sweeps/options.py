"""Every option of a sweep, defined once: its name (the keyword argument of ``bm.run`` and ``bm.sweep``; with
dashes, the flag of ``bench run``), default, help, how the command line's text is read, and its check.

``bench run``'s options, the keyword arguments of ``bm.run`` and ``bm.sweep`` and their documentation are made from
:data:`OPTIONS` (:func:`takes_sweep_options`, :func:`typer_parameters`); :meth:`SweepConfig.checked` checks the
values, and planning and every launcher read the checked :class:`SweepConfig`. A bad value is one
:class:`~benchmark.core.errors.BenchError` line, whether it came from the command line or from Python.
"""

from __future__ import annotations

import dataclasses
import inspect
import numbers
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Mapping, Optional, Sequence

from benchmark.core.errors import BenchError, require
from benchmark.core.selection import SELECT_RULES
from benchmark.core.settings import (
    DEFAULT_DATASET,
    MAX_SEEDS,
    MAX_TRIALS,
    QUICK_EPOCHS,
    SEED,
    check_choice,
    check_seeds,
)

DEVICES = ("auto", "cpu", "cuda")
LAUNCHERS = ("local", "ray", "slurm")
LOGGERS = ("tensorboard",)  # extra loggers of every evaluation besides log.jsonl
SLURM_CLUSTERS = ("slurm", "local")
MAX_COUNT = 1024  # workers, runs per device, stacked runs, threads


def names(value, flag: str) -> list[str]:
    """A list of names from ``a,b`` or a sequence; an empty list or an empty name is an error."""
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [str(item).strip() for item in items]
    if not any(items):
        raise BenchError(f"{flag} is empty")
    if "" in items:
        raise BenchError(f"bad {flag} '{','.join(items)}': an empty name between commas")
    return items


def seeds_text(text: str, flag: str) -> list[int]:
    """``0,1,2`` or ``0-4`` (inclusive) or a mix: at most :data:`MAX_SEEDS` seeds, each a valid generator seed."""
    seeds: list[int] = []
    for item in names(text, flag):
        low, dash, high = item.partition("-")
        try:
            start, end = (int(low), int(high)) if dash and low else (int(item), int(item))
        except ValueError:
            raise BenchError(f"bad {flag} '{text}': expected integers like 0,1,2 or 0-4") from None
        if start not in SEED or end not in SEED:
            raise BenchError(f"bad {flag} '{text}': seeds must be {SEED}")
        if end < start:
            raise BenchError(f"bad {flag} '{text}': the range {item} ends before it starts")
        if len(seeds) + end - start + 1 > MAX_SEEDS:
            raise BenchError(f"bad {flag} '{text}': more than {MAX_SEEDS} seeds")
        seeds += range(start, end + 1)
    return list(dict.fromkeys(seeds))


def count(low: int, high: int = MAX_COUNT) -> Callable:
    """A check that a whole number (or None) lies in [low, high]."""

    def check(value, flag: str):
        if value is None:
            return None
        whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if not whole or value < low or high is not None and value > high:
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise BenchError(f"bad {flag} {value}: must be {bound}")
        return int(value)

    return check


def choice(choices: Sequence[str]) -> Callable:
    """A check that the value is one of ``choices``."""

    def check(value, flag: str):
        check_choice(flag, value, choices)
        return value

    return check


def each_choice(choices: Sequence[str]) -> Callable:
    """A check that every value of a sequence is one of ``choices``; returns them as a tuple."""

    def check(values, flag: str):
        values = (values,) if isinstance(values, str) else tuple(values)
        for value in values:
            check_choice(flag, value, choices)
        return values

    return check


def seeds(value, flag: str) -> list[int] | None:
    """The seeds, each once and in order (None stays None)."""
    return None if value is None else check_seeds(value, flag)


def folder(value, flag: str) -> Path:
    """A folder to write into: a non-empty path."""
    if not str(value).strip():
        raise BenchError(f"bad {flag} '{value}': give a folder (e.g. results)")
    return Path(value)


def sets(value, flag: str) -> tuple[str, ...]:
    """``{"train.lr": 1e-3}`` or ``["train.lr=1e-3"]`` as ``KEY=VALUE`` strings, parsed like ``--set``."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return tuple(f"{key}={str(item).lower() if isinstance(item, bool) else item}" for key, item in value.items())
    return (value,) if isinstance(value, str) else tuple(value)


def strings(value, flag: str) -> tuple[str, ...]:
    """One string or a sequence of them, as a tuple."""
    return (value,) if isinstance(value, str) else tuple(value)


def as_is(value, flag: str):
    return value


@dataclass(frozen=True)
class Option:
    """One option: ``name`` (the keyword argument), ``default``, ``help``; ``check(value, flag)`` returns the value
    checked and normalised (a :class:`BenchError` names the flag); on the command line the option is of type
    ``cli`` (text read by ``text(text, flag)`` where given: lists, seed ranges; ``List[str]``: given once per value),
    declared as ``decls`` (default: ``--name-with-dashes``)."""

    name: str
    default: Any
    help: str
    cli: Any
    check: Callable[[Any, str], Any] = as_is
    text: Callable[[str, str], Any] | None = None
    decls: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        """The flag errors name: ``--seeds``, ``--set``, ``--deterministic``."""
        return (self.decls or (f"--{self.name.replace('_', '-')}",))[0].split("/")[0]

    def typer_parameter(self) -> inspect.Parameter:
        """The option as a keyword-only parameter of a typer command (its default a ``typer.Option``)."""
        import typer

        default = self.default
        if self.text is not None and default is not None:
            default = default if isinstance(default, str) else ",".join(map(str, default))
        elif isinstance(default, (tuple, Path)):
            default = list(default) if isinstance(default, tuple) else str(default)
        shown = not (default is None or default is False or default == [])
        option = typer.Option(default, *(self.decls or (self.flag,)), help=self.help, show_default=shown)
        return inspect.Parameter(self.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=self.cli)

    def value(self, given, from_command_line: bool = False):
        """The checked value of what was given (the command line's text read first)."""
        if from_command_line and self.text is not None and isinstance(given, str):
            given = self.text(given, self.flag)
        return self.check(given, self.flag)


def option_table(*options: Option) -> dict[str, Option]:
    return {option.name: option for option in options}


OPTIONS = option_table(
    Option("methods", "all", "all, or a comma-separated list of methods", str, names, names),
    Option("dataset", DEFAULT_DATASET, "dataset name", str),
    Option("seeds", (0, 1, 2), "training seeds, e.g. 0,1,2 or 0-4", str, seeds, seeds_text),
    Option("epochs", None, "epoch budget (overrides the dataset's default)", Optional[int], count(1, 100_000)),
    Option("quick", False, f"smoke-test budget: {QUICK_EPOCHS} epochs", bool, decls=("--quick",)),
    Option("trials", 1, "random-search hparam trials per method (trial 0: the defaults)", int, count(1, MAX_TRIALS)),
    Option(
        "tune_seeds",
        None,
        "two-phase tuning: the trials on these seeds only, then each method's best trial on --seeds",
        Optional[str],
        seeds,
        seeds_text,
    ),
    Option(
        "select",
        "val-wga",
        "model selection (epoch, trial): val-wga, val-wca, val-acc or oracle",
        str,
        choice(SELECT_RULES),
    ),
    Option("device", "auto", "auto, cpu or cuda", str, choice(DEVICES)),
    Option("launcher", "local", "local, ray or slurm", str, choice(LAUNCHERS)),
    Option(
        "workers",
        None,
        "parallel runs (local: processes, default one per core on CPU and one per GPU; ray: CPUs of a local "
        "instance; slurm: array limit)",
        Optional[int],
        count(1),
    ),
    Option(
        "workers_per_device",
        None,
        "local: this many runs at once on each GPU (or on the CPU), after a check that they fit in its memory",
        Optional[int],
        count(1),
    ),
    Option(
        "stack",
        1,
        "train up to this many runs that share the dataset and budget together, as one stacked model in one "
        "process (for GPUs; 1: each run alone)",
        int,
        count(1),
    ),
    Option("threads", 1, "torch CPU threads per run (metrics are reproducible for a given count)", int, count(1)),
    Option(
        "deterministic",
        None,
        "require PyTorch's deterministic algorithms, or leave them off (default: on for CUDA runs, where an "
        "operation without one is recorded in result.json)",
        Optional[bool],
        decls=("--deterministic/--no-deterministic",),
    ),
    Option("save_model", False, "keep each run's selected model (model.pt)", bool, decls=("--save-model",)),
    Option("log", (), "also log every evaluation to: tensorboard (repeatable)", List[str], each_choice(LOGGERS)),
    Option("out", "results", "results folder", str, folder),
    Option("plugins", (), "plugin file or module (repeatable)", List[str], strings, decls=("--plugin",)),
    Option("sets", (), "KEY=VALUE: train.*, data.*, <method>.* (repeatable)", List[str], sets, decls=("--set",)),
    Option("data_root", None, "folder with the dataset's files", Optional[str]),
    Option("force", False, "re-run runs that already finished", bool, decls=("--force",)),
    Option("retry_failed", False, "re-run runs recorded as failed", bool, decls=("--retry-failed",)),
    Option("ray_address", None, "Ray cluster to join (default: start a local instance)", Optional[str]),
    Option("slurm_partition", None, "SLURM partition", Optional[str]),
    Option("slurm_time", 60, "SLURM time limit per run, minutes", int, count(1, None)),
    Option("slurm_gpus", 0, "GPUs per SLURM task", int, count(0, None)),
    Option("slurm_cpus", 2, "CPUs per SLURM task", int, count(1, None)),
    Option("slurm_cluster", "slurm", "slurm, or local: submitit's local executor (testing)", str,
           choice(SLURM_CLUSTERS)),  # fmt: skip
)
REPORT = Option(
    "report", True, "write the leaderboard for these runs", bool, decls=("--report/--no-report",)
)  # bm.run and bench run: not an option of the sweep itself


def check_launcher(config: SweepConfig) -> None:
    """Fail before any training if the launcher cannot work here (extra not installed, no SLURM) or its options
    contradict each other."""
    if config.workers_per_device is not None and (config.workers is not None or config.launcher != "local"):
        raise BenchError("--workers-per-device is for the local launcher, instead of --workers")
    if config.launcher in ("ray", "slurm"):
        require({"ray": "ray", "slurm": "submitit"}[config.launcher], f"--launcher {config.launcher}", config.launcher)
    if config.launcher == "slurm" and config.slurm_cluster == "slurm" and shutil.which("srun") is None:
        raise BenchError("--launcher slurm: no SLURM here (srun not found); use --slurm-cluster local to test locally")


def checked(cls, from_command_line: bool = False, **given) -> SweepConfig:
    """A :class:`SweepConfig` of ``given`` values (the others at their defaults), each checked by its option, then
    together: ``--epochs`` or ``--quick``, the launcher's options."""
    unknown = sorted(set(given) - set(OPTIONS))
    if unknown:
        raise TypeError(f"unknown sweep option {unknown[0]!r}")
    config = cls(**{name: o.value(given.get(name, o.default), from_command_line) for name, o in OPTIONS.items()})
    if config.epochs is not None and config.quick:
        raise BenchError("give either --epochs or --quick, not both")
    check_launcher(config)
    return config


SweepConfig = dataclasses.make_dataclass(
    "SweepConfig",
    [(name, Any, dataclasses.field(default=option.default)) for name, option in OPTIONS.items()],
    frozen=True,
    namespace={"checked": classmethod(checked), "__module__": __name__},
)
SweepConfig.__doc__ = """Every option of a sweep, checked (:meth:`checked`): one field per entry of :data:`OPTIONS`."""


def signature(*extra: inspect.Parameter) -> inspect.Signature:
    """Keyword-only parameters: every sweep option with its default, then ``extra``."""
    params = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=o.default) for n, o in OPTIONS.items()]
    return inspect.Signature([*params, *extra])


def documented(options: Sequence[Option], indent: str = "    ") -> str:
    """The ``Args`` section of a docstring for ``options``, at a docstring's ``indent``."""
    lines = ["", "Args:"]
    for option in options:
        text = f"{option.name}: {option.help} (default {option.default!r}; ``bench run {option.flag}``)."
        lines += textwrap.wrap(text, 112, initial_indent="    ", subsequent_indent="        ")
    return textwrap.indent("\n".join(lines), indent)


def takes_sweep_options(*extra: Option) -> Callable:
    """Give a function of ``**options`` (and ``extra`` keyword arguments) the signature and documentation of every
    sweep option, so that ``help()``, a notebook's completion and ``inspect.signature`` show each one."""

    def decorate(function: Callable) -> Callable:
        own = [p for p in inspect.signature(function).parameters.values() if p.kind == p.KEYWORD_ONLY]
        function.__signature__ = signature(*own)
        function.__doc__ = (function.__doc__ or "") + "\n" + documented([*OPTIONS.values(), *extra]) + "\n"
        return function

    return decorate


def typer_parameters(*names: str, **replaced: Option) -> list[inspect.Parameter]:
    """The typer parameters of the named options (all when none are named), each possibly ``replaced`` by a variant
    (another default or help, e.g. ``bench profile``'s epochs)."""
    chosen = names or tuple(OPTIONS)
    return [replaced.get(name, OPTIONS.get(name)).typer_parameter() for name in chosen]
