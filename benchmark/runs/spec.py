"""What a run is: what identifies it (:class:`RunSpec`, with its :class:`TrainConfig`), how it executes
(:class:`Execution`), and the sweep's view of it (:class:`Run`: trial, selection rule, folder), all validated
before any training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmark.core.settings import Range, apply_sets, check_settings
from benchmark.models import LATENTS
from benchmark.runs.store import SCHEMA_VERSION, run_dir, run_id


@dataclass(frozen=True)
class TrainConfig:
    """The training budget and optimiser (2025 note §4.4 defaults for digits: Adam, lr 1e-3, batch 100).

    A dataset's ``train_defaults`` (its recommended budget) override these. ``epochs`` is the budget in ERM
    epochs: every method gets ``epochs × ⌈n_train / batch_size⌉`` optimizer steps, split between its stages,
    and is evaluated every ⌈n_train / batch_size⌉ steps (docs/methods.md, "One budget, in optimizer steps").
    ``sampler``: ``auto`` (default) gives group-stratified batches (each batch keeps the training group
    proportions) to methods that read training group labels and uniform shuffling to the others, so that no
    method without group labels receives batches that depend on them; ``stratified`` or ``shuffle`` force one.
    ``latent``: the encoders' output layer (:data:`benchmark.models.LATENTS`). The default ``layernorm`` was chosen
    by measurement (README, "The shared latent"): the 2025 note's FC + ReLU (``relu``) lets latent-space losses,
    and even ERM, kill every unit of a small encoder on digits-hetero. ``amp``: bfloat16 autocast for training steps
    and evaluation. ``compile``: ``torch.compile`` for the encoders (``inductor``: generated kernels;
    ``reduce-overhead``: inductor with CUDA graphs on a GPU, which replay each step's many small kernels with one
    launch, and plain inductor on CPU; ``aot_eager`` to check graph capture without code generation; ``off``, the
    default: on this CPU inductor measured slower than eager and costs ~50 s of compilation per run, README
    "Speed").
    """

    epochs: int = 20
    batch_size: int = 100
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    momentum: float = 0.9
    sampler: str = "auto"
    latent: str = "layernorm"
    eval_batch_size: int = 2048
    amp: bool = False
    compile: str = "off"

    choices = {
        "optimizer": ("adam", "sgd"),
        "sampler": ("auto", "stratified", "shuffle"),
        "latent": tuple(LATENTS),
        "compile": ("off", "inductor", "reduce-overhead", "aot_eager"),
    }
    bounds = {
        "epochs": Range(1, 100_000),
        "batch_size": Range(1, 1_000_000),
        "eval_batch_size": Range(1, 1_000_000),
        "lr": Range(0, 10, low_open=True),
        "weight_decay": Range(0, 10),
        "momentum": Range(0, 1, high_open=True),
    }

    def to_dict(self) -> dict:
        return asdict(self)


def train_config(sets: dict[str, str], dataset_defaults: dict, epochs: int | None = None) -> TrainConfig:
    """The TrainConfig from defaults, the dataset's recommended budget, ``--set train.*`` and ``--epochs``, checked
    against :attr:`TrainConfig.choices` and :attr:`TrainConfig.bounds`."""
    values = apply_sets("train", {**TrainConfig().to_dict(), **dataset_defaults}, sets)
    if epochs is not None:
        values["epochs"] = epochs
    return TrainConfig(**check_train(values))


def check_train(values: dict) -> dict:
    """Training settings checked by the one settings scheme (:mod:`benchmark.core.settings`)."""
    return check_settings("train", values, TrainConfig().to_dict(), TrainConfig.choices, TrainConfig.bounds)


@dataclass(frozen=True)
class RunSpec:
    """What identifies a run: everything that determines its numbers, and nothing else.

    ``data_fingerprint`` identifies the files a ``--data-root`` dataset read
    (:meth:`~benchmark.data.builder.DatasetBuilder.fingerprint`), so that other data never reuses a result.
    How the run executes is an :class:`Execution`; how it is stored and reported, a
    :class:`benchmark.sweeps.execute.Run`.
    """

    dataset: str
    data_options: dict
    method: str
    hparams: dict
    seed: int
    train: TrainConfig
    data_fingerprint: str | None = None

    def identity(self) -> dict:
        """What determines the run's numbers; ``data_fingerprint`` (of a ``--data-root`` dataset's files) only
        when there is one, so that offline datasets keep their ids."""
        identity = {
            "dataset": self.dataset,
            "data_options": self.data_options,
            "method": self.method,
            "hparams": self.hparams,
            "seed": self.seed,
            "train": self.train.to_dict(),
        }
        return identity if self.data_fingerprint is None else {**identity, "data_fingerprint": self.data_fingerprint}

    @property
    def run_id(self) -> str:
        return run_id(self.identity())

    @property
    def config_id(self) -> str:
        """The run id without the seed: runs that differ only in seed share it (a leaderboard row)."""
        return run_id({**self.identity(), "seed": None})


@dataclass(frozen=True)
class Execution:
    """How a run executes, which does not change its numbers.

    ``device``: ``auto``, ``cpu`` or ``cuda``. ``threads``: torch CPU threads; a run's numbers are bitwise
    identical for the same thread count, whatever the launcher or number of parallel runs (different counts sum
    in different orders, so the count is recorded with the result). ``deterministic``: PyTorch's deterministic
    algorithms, what CUDA needs for bitwise repeatability. True requires them (an operation without a deterministic
    implementation fails the run), False leaves them off; None, the default, turns them on for CUDA runs only,
    where an operation without one is recorded with the result instead of failing it (CPU runs are already
    repeatable for a given thread count, and the setting would swap some CPU kernels and so the committed CPU
    numbers). ``data_root``: where a dataset's files
    are (their content is in the identity, :attr:`RunSpec.data_fingerprint`). ``plugins``: modules or files to
    import first, so that a plugin method or dataset is registered in the worker. ``parallel``: how many runs
    the sweep trains at a time on this machine (set by the sweep; recorded with the costs). ``count_flops``:
    count the FLOPs of each stage's first step (``bench profile``).
    """

    device: str = "auto"
    threads: int = 1
    deterministic: bool | None = None
    data_root: str | None = None
    plugins: tuple[str, ...] = field(default=())
    parallel: int = 1
    count_flops: bool = False




@dataclass(frozen=True)
class Run:
    """One run of a sweep.

    ``trial`` is the hparam-search trial that drew the spec's hparams (0: the defaults); ``family_id`` is the
    ``config_id`` of trial 0 of the same sweep, which ties the trials of a method together for selection.
    ``select`` is the rule for the run's own result (reports can re-select from the stored history).
    ``save_model``: keep the state dict of the model at the selected epoch beside the result (``model.pt``).
    ``log``: extra loggers of every evaluation besides ``log.jsonl`` (``tensorboard``: event files in ``<run
    folder>/tensorboard``).
    """

    spec: RunSpec
    execution: Execution = field(default_factory=Execution)
    select: str = "val-wga"
    trial: int = 0
    family_id: str = ""
    save_model: bool = False
    log: tuple[str, ...] = ()

    @property
    def run_id(self) -> str:
        return self.spec.run_id

    @property
    def family(self) -> str:
        return self.family_id or self.spec.config_id

    def header(self) -> dict:
        """What every file of the run starts with: ids, trial and identity."""
        spec = self.spec
        ids = {"run_id": spec.run_id, "config_id": spec.config_id, "family_id": self.family, "trial": self.trial}
        return {"schema": SCHEMA_VERSION, **ids, **spec.identity()}

    def directory(self, out: Path) -> Path:
        return run_dir(out, self.spec.dataset, self.spec.method, self.spec.run_id)
