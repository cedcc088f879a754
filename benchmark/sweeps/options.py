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
import shutil
import textwrap
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence

from benchmark.core.errors import BenchError, require
from benchmark.core.selection import SELECT_RULES
from benchmark.core.settings import DEFAULT_DATASET, MAX_TRIALS, QUICK_EPOCHS
from benchmark.sweeps.checks import as_is, choice, count, each_choice, folder, names, seeds, seeds_text, sets, strings

DEVICES = ("auto", "cpu", "cuda")
LAUNCHERS = ("local", "ray", "slurm")
LOGGERS = ("tensorboard",)  # extra loggers of every evaluation besides log.jsonl
SLURM_CLUSTERS = ("slurm", "local")


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
        elif isinstance(default, tuple):
            default = list(default)
        shown = not (default is None or default is False or default == [])
        option = typer.Option(default, *(self.decls or (self.flag,)), help=self.help, show_default=shown)
        return inspect.Parameter(self.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=self.cli)

    def value(self, given, from_command_line: bool = False):
        """The checked value of what was given (the command line's text read first)."""
        if from_command_line and self.text is not None and isinstance(given, str):
            given = self.text(given, self.flag)
        return self.check(given, self.flag)


def option_table(*options: Option) -> dict[str, Option]:
    """The options by name, in the order given (the order of ``bench run --help``)."""
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
    Option("data_root", None, "folder with the dataset's files (table: the file)", Optional[str]),
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


def typer_parameters(*names: str) -> list[inspect.Parameter]:
    """The typer parameters of the named options (all when none are named)."""
    return [OPTIONS[name].typer_parameter() for name in names or OPTIONS]
