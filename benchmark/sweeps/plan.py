"""Planning a sweep: every name and ``--set`` value validated, then the runs of methods × trials × seeds."""

from __future__ import annotations

from benchmark.core.errors import BenchError
from benchmark.core.hparams import trial_values
from benchmark.core.registry import DATASETS, METHODS
from benchmark.core.settings import apply_sets, check_choice, split_sets
from benchmark.plugins import load_plugins
from benchmark.runs.spec import LOGGERS, Execution, Run, RunSpec, TrainConfig, check_train, train_config
from benchmark.training.devices import resolve_device


def dataset_options(dataset: str, sets: dict[str, str], data_root: str | None) -> dict:
    """The dataset's resolved options (``data.*`` keys of ``sets`` over its defaults), validated."""
    builder = DATASETS.get(dataset)
    if builder.needs_data_root and data_root is None:
        raise BenchError(f"dataset {dataset} reads files: give --data-root PATH")
    return builder.check_options(apply_sets("data", builder.option_defaults(), sets))


def plan_sweep(
    methods: list[str],
    dataset: str,
    seeds: list[int],
    epochs: int | None = None,
    select: str = "val-wga",
    device: str = "auto",
    plugins: tuple[str, ...] = (),
    sets: list[str] = (),
    data_root: str | None = None,
    trials: int = 1,
    threads: int = 1,
    deterministic: bool | None = None,
    save_model: bool = False,
    log: tuple[str, ...] = (),
) -> list[Run]:
    """Validate every name and ``--set`` value, then return the runs of methods × trials × seeds (nothing is
    written).

    ``methods`` may be ``["all"]`` (every registered method, plugins included). ``--set`` keys are
    ``train.*``, ``data.*`` or ``<method>.*`` for a method in the sweep; they are fixed in every trial, while
    trials 1.. draw the other entries of the method's ``search_space()`` (trial 0 is the defaults). ``threads`` and
    ``deterministic``: how each run executes (see :class:`~benchmark.runs.spec.Execution`); ``save_model``: keep
    each run's selected model, ``log``: extra loggers (:class:`~benchmark.runs.spec.Run`).
    """
    for logger in log:
        check_choice("--log", logger, LOGGERS)
    plugins = load_plugins(plugins)
    names = METHODS.names() if methods == ["all"] else [METHODS.get(m).name for m in methods]
    parsed = split_sets(list(sets))
    data_options = dataset_options(dataset, parsed, data_root)
    for key in parsed:
        section = key.partition(".")[0]
        if section in METHODS and section not in names:
            raise BenchError(f"--set {key}: method '{section}' is not among --methods ({', '.join(names)})")
        if section not in ("train", "data", *names):
            raise BenchError(f"unknown setting '{key}'; sections: train, data, {', '.join(names)}")
    config = train_config(parsed, DATASETS.get(dataset).train_defaults, epochs)
    fingerprint = DATASETS.get(dataset).fingerprint(data_root)
    resolve_device(device)
    execution = Execution(device, threads, deterministic, data_root, plugins)
    planned = []
    for name in names:
        cls = METHODS.get(name)
        fixed = {key.partition(".")[2] for key in parsed if key.startswith(f"{name}.")}
        fixed |= {key for key in parsed if key.startswith("train.")}
        base = apply_sets(name, cls.defaults(), parsed)
        family = ""
        for trial in range(trials):
            drawn = trial_values(name, cls.search_space(), trial, fixed)
            hparams = cls.check_hparams({**base, **{k: v for k, v in drawn.items() if not k.startswith("train.")}})
            drawn_train = {k[6:]: v for k, v in drawn.items() if k.startswith("train.")}
            train = TrainConfig(**check_train({**config.to_dict(), **drawn_train}))
            specs = [RunSpec(dataset, data_options, name, hparams, seed, train, fingerprint) for seed in seeds]
            family = family or specs[0].config_id
            planned += [Run(spec, execution, select, trial, family, save_model, tuple(log)) for spec in specs]
    return planned
