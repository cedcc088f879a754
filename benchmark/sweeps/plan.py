"""Planning a sweep: every name and ``--set`` value validated, then the runs of methods × trials × seeds."""

from __future__ import annotations

from benchmark.core.errors import BenchError
from benchmark.core.hparams import trial_values
from benchmark.core.registry import DATASETS, METHODS
from benchmark.core.settings import QUICK_EPOCHS, apply_sets, split_sets
from benchmark.plugins import load_plugins
from benchmark.runs.spec import Execution, Run, RunSpec, TrainConfig, check_train, train_config
from benchmark.sweeps.options import SweepConfig
from benchmark.training.devices import resolve_device


def dataset_options(dataset: str, sets: dict[str, str], data_root: str | None) -> dict:
    """The dataset's resolved options (``data.*`` keys of ``sets`` over its defaults), validated."""
    builder = DATASETS.get(dataset)
    if builder.needs_data_root and data_root is None:
        raise BenchError(f"dataset {dataset} reads files: give --data-root PATH")
    return builder.check_options(apply_sets("data", builder.option_defaults(), sets))


def plan_sweep(config: SweepConfig) -> list[Run]:
    """Validate every name and ``--set`` value of the checked ``config``, then return the runs of methods × trials ×
    seeds (nothing is written).

    ``methods`` may be ``["all"]`` (every registered method, plugins included). ``--set`` keys are ``train.*``,
    ``data.*`` or ``<method>.*`` for a method in the sweep; they are fixed in every trial, while trials 1.. draw the
    other entries of the method's ``search_space()`` (trial 0 is the defaults). With ``tune_seeds`` those seeds come
    first. ``--quick`` is a budget of :data:`~benchmark.core.settings.QUICK_EPOCHS` epochs.
    """
    plugins = load_plugins(config.plugins)
    names = METHODS.names() if config.methods == ["all"] else [METHODS.get(m).name for m in config.methods]
    parsed = split_sets(list(config.sets))
    data_options = dataset_options(config.dataset, parsed, config.data_root)
    for key in parsed:
        section = key.partition(".")[0]
        if section in METHODS and section not in names:
            raise BenchError(f"--set {key}: method '{section}' is not among --methods ({', '.join(names)})")
        if section not in ("train", "data", *names):
            raise BenchError(f"unknown setting '{key}'; sections: train, data, {', '.join(names)}")
    epochs = QUICK_EPOCHS if config.quick else config.epochs
    train = train_config(parsed, DATASETS.get(config.dataset).train_defaults, epochs)
    fingerprint = DATASETS.get(config.dataset).fingerprint(config.data_root)
    resolve_device(config.device)
    execution = Execution(config.device, config.threads, config.deterministic, config.data_root, plugins)
    seeds = [*(config.tune_seeds or ()), *(seed for seed in config.seeds if seed not in (config.tune_seeds or ()))]
    planned = []
    for name in names:
        family = None  # the config id of the method's trial 0: ties its trials together
        for trial, hparams, trained in trials_of(name, parsed, train, config.trials):
            specs = [RunSpec(config.dataset, data_options, name, hparams, seed, trained, fingerprint) for seed in seeds]
            family = family or specs[0].config_id
            how = (config.select, trial, family, config.save_model, config.log)
            planned += [Run(spec, execution, *how) for spec in specs]
    return planned


def trials_of(name: str, parsed: dict[str, str], train: TrainConfig, trials: int):
    """Each random-search trial of method ``name``: (trial, its hparams, its training settings), the ``--set``
    values fixed in every trial."""
    cls = METHODS.get(name)
    fixed = {key.partition(".")[2] for key in parsed if key.startswith(f"{name}.")}
    fixed |= {key for key in parsed if key.startswith("train.")}
    base = apply_sets(name, cls.defaults(), parsed)
    for trial in range(trials):
        drawn = trial_values(name, cls.search_space(), trial, fixed)
        hparams = cls.check_hparams({**base, **{k: v for k, v in drawn.items() if not k.startswith("train.")}})
        drawn_train = {k[6:]: v for k, v in drawn.items() if k.startswith("train.")}
        yield trial, hparams, TrainConfig(**check_train({**train.to_dict(), **drawn_train}))


def plan(**options) -> list[Run]:
    """:func:`plan_sweep` of the given sweep options (checked as ``bm.sweep`` checks them; the others at their
    defaults)."""
    return plan_sweep(SweepConfig.checked(**options))
