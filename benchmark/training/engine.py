"""The one training loop every method runs in.

The trainer owns the device, seeding, optimiser, batching, evaluation on val and test after every
epoch, model selection, timing and memory accounting. It knows nothing of specific methods (only the
:class:`~benchmark.methods.base.Method` hooks) and nothing of files: evaluation records go to a callback.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from typing import Callable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmark.core.registry import METHODS
from benchmark.data.batches import SAMPLERS, Batch, BatchStream, eval_batches
from benchmark.data.core import GroupDataset
from benchmark.data.images import prefetched
from benchmark.methods.base import Method, Stage, TrainInfo
from benchmark.models import GroupModel
from benchmark.runs.spec import Execution, RunSpec, TrainConfig
from benchmark.training.devices import keep_freed_host_memory, peak_memory_mb, resolve_device, synchronize
from benchmark.training.evaluation import evaluate


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite; the run stops and is recorded as failed."""


def make_optimizer(config: TrainConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """Adam or SGD (with momentum) over ``params``, as the TrainConfig says.

    Both use PyTorch's fused kernels (one kernel for all parameters): about 20% faster per step than
    the per-parameter loop on this project's small models, measured on a 2-core CPU.
    """
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, fused=True
        )
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)


COMPILE_MODES = {"reduce-overhead": {"backend": "inductor", "mode": "reduce-overhead"}}
"""``train.compile`` values that are not a backend's name: their ``torch.compile`` arguments."""


def seeded_model(data: GroupDataset, seed: int, compile_backend: str = "off", latent: str = "layernorm") -> GroupModel:
    """The shared model (encoders ending in the ``latent`` layer) initialised from ``seed`` without touching the
    global RNG; with a ``compile_backend`` other than ``off``, each encoder goes through ``torch.compile``
    (dynamic batch sizes, so that the changing per-space sizes of batches do not recompile)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GroupModel(data, latent=latent).to(data.device)
    if compile_backend != "off":
        how = COMPILE_MODES.get(compile_backend, {"backend": compile_backend})
        for s, encoder in enumerate(model.encoders):
            model.encoders[s] = torch.compile(encoder, dynamic=True, **how)
    return model


def autocast(config: TrainConfig, device: torch.device):
    """bfloat16 autocast when ``train.amp`` (on CPU and CUDA alike; no loss scaling needed), else a no-op."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.amp)


def train_info(data: GroupDataset, config: TrainConfig, seed: int) -> TrainInfo:
    """What a method may know of the training set and budget (``data`` on the training device)."""
    train_idx = data.indices("train")
    return TrainInfo(
        num_classes=data.num_classes,
        num_groups=data.num_groups,
        train_group_counts=data.group_counts("train"),
        train_class_counts=torch.bincount(data.y[train_idx], minlength=data.num_classes),
        epochs=config.epochs,
        steps_per_epoch=-(-len(train_idx) // config.batch_size),
        generator=torch.Generator(device=data.device).manual_seed(seed),
    )


def build_method(spec: RunSpec, data: GroupDataset) -> Method:
    """The run's method around a freshly initialised model, checking that its stages fit the budget."""
    info = train_info(data, spec.train, spec.seed)
    model = seeded_model(data, spec.seed, spec.train.compile, spec.train.latent)
    method = METHODS.get(spec.method)(model, info, **spec.hparams).to(data.device)
    stages = method.stages()
    if sum(stage.epochs for stage in stages) != spec.train.epochs or any(stage.epochs < 1 for stage in stages):
        names = [s.name for s in stages]
        raise ValueError(f"{spec.method} cannot split {spec.train.epochs} epochs into its stages {names}")
    return method


def sampler_name(config: TrainConfig, needs_group_labels: bool) -> str:
    """The batch sampler of ``train.sampler``: under ``auto``, group-stratified batches only for methods that read
    training group labels, uniform shuffling for the others (no leak of group labels through batches)."""
    if config.sampler != "auto":
        return config.sampler
    return "stratified" if needs_group_labels else "shuffle"


def enter_stage(method: Method, stage: Stage, data: GroupDataset, spec: RunSpec) -> tuple[dict, object]:
    """Enter ``stage``: the method's stage hook (its facts), a fresh model if the stage asks, and the stage's batch
    sampler over the training set."""
    facts = method.on_stage_start(stage, data)
    if stage.fresh_model:
        method.model = seeded_model(data, spec.seed, spec.train.compile, spec.train.latent)
    default = SAMPLERS[sampler_name(spec.train, method.needs_group_labels)]
    sampler = (stage.sampler or default)(data, data.indices_cpu("train"), spec.train.batch_size)
    return facts, sampler


def start_stage(method: Method, stage: Stage, data: GroupDataset, spec: RunSpec) -> tuple[dict, object, object]:
    """:func:`enter_stage`, and a new optimiser over the parameters that require gradients: (facts, optimiser,
    sampler)."""
    facts, sampler = enter_stage(method, stage, data, spec)
    optimizer = make_optimizer(spec.train, [p for p in method.parameters() if p.requires_grad])
    return facts, optimizer, sampler


def train_steps(
    method: Method,
    data: GroupDataset,
    optimizer,
    batches: list[Batch],
    config: TrainConfig,
    first_step: int,
    flops: list | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """One optimiser step per batch, without host syncs: the summed loss, the first step (numbered from
    ``first_step`` + 1) whose loss was not finite (-1 if none), and the last step's logs. Given a ``flops`` list,
    the first step runs under :class:`~torch.utils.flop_counter.FlopCounterMode` (which only observes) and its
    FLOPs (matrix products and convolutions, forward and backward) are appended."""
    device = data.device
    loss_sum = torch.zeros((), device=device)
    first_bad = torch.full((), -1, device=device)
    logs: dict[str, torch.Tensor] = {}
    for step, batch in enumerate(prefetched(data, batches), first_step + 1):
        counting = flops is not None and step == first_step + 1
        with FlopCounterMode(display=False) if counting else contextlib.nullcontext() as counter:
            with autocast(config, device):
                loss, logs = method.loss(data, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if counting:
            flops.append(counter.get_total_flops())
        method.after_step(batch, logs)
        loss = loss.detach()
        loss_sum += loss
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step, first_bad)
    return loss_sum, first_bad, logs


def train(
    spec: RunSpec,
    data_cpu: GroupDataset,
    on_eval: Callable[[dict], None] = lambda record: None,
    execution: Execution = Execution(),
    keep: Callable[[dict], bool] | None = None,
) -> dict:
    """Train ``spec.method`` on ``data_cpu`` as ``execution`` says (device; CPU threads and deterministic
    algorithms, set for the run and restored after) and return its history and costs.

    Of ``spec`` the trainer reads the method, hparams, seed and training settings; the dataset fields are the
    runner's.

    The budget is in optimizer steps: each stage trains ``stage.epochs × ⌈n_train / batch_size⌉`` steps (ERM's
    epochs), drawn as one stream from its sampler (:class:`~benchmark.data.batches.BatchStream`), whatever the
    sampler's cycle, so every method takes ``train.epochs × ⌈n_train / batch_size⌉`` steps in all.
    The method's stages run in order, each with a new optimiser over the parameters that require
    gradients. After each ⌈n_train / batch_size⌉ steps (an "epoch") the model is evaluated on val and test
    (val also records the latents' ``live_units`` per group); the record (stage, epoch, step, train loss,
    method logs, metrics, time since the start and the epoch's training time ``train_s``: its hook, batch
    drawing and steps, without evaluation) goes to ``on_eval``. Each stage reports its ``setup_time_s`` (the
    stage hook, a fresh model, the optimiser and sampler) apart from its ``train_time_s``; ``train_cpu_s`` is
    the process's CPU time in training steps, which other processes on the machine do not change. The final
    stage's evaluations (the model the method delivers) are returned as ``history``, from which the runner
    picks the reported epoch (:func:`~benchmark.core.selection.selected`); ``curve`` has every stage's val WGA per
    evaluation, for the reports' training curves. With ``keep``, a final-stage evaluation
    for which ``keep(record)`` is true replaces the kept copy of the method's state (on CPU), returned as
    ``state_dict``: the runner keeps the model of the epoch its rule selects. ``stacked_runs`` is 1 (the run trained
    alone; :mod:`benchmark.training.stacking` trains several together). Raises :class:`NonFiniteLoss` if the loss turns
    NaN/inf.
    """
    with run_settings(execution) as settings:
        result = _train(spec, data_cpu, on_eval, resolve_device(execution.device), keep, execution.count_flops)
        return {**result, **settings.determinism()}


NONDETERMINISTIC = " does not have a deterministic implementation"  # PyTorch's warning, after the operation's name


class RunSettings:
    """What :func:`run_settings` set for a run: whether deterministic algorithms are on, and the warnings raised
    so far (``caught``), among them PyTorch's alerts for operations that ran without a deterministic
    implementation (in its warn-only mode)."""

    def __init__(self, deterministic: bool, caught: list):
        self.deterministic, self.caught = deterministic, caught

    def determinism(self) -> dict:
        """For the result: ``deterministic`` (on, and no operation ran without a deterministic implementation) and,
        when some did, ``nondeterministic_ops``, their names."""
        alerts = [str(w.message) for w in self.caught if NONDETERMINISTIC in str(w.message)]
        ops = sorted({alert.split(NONDETERMINISTIC)[0] for alert in alerts})
        return {"deterministic": self.deterministic and not ops, **({"nondeterministic_ops": ops} if ops else {})}


@contextlib.contextmanager
def run_settings(execution: Execution):
    """For the duration of a run: ``execution.threads`` torch CPU threads and, where ``execution.deterministic`` asks
    (:class:`~benchmark.runs.spec.Execution`: by default on CUDA only), PyTorch's deterministic algorithms (cuDNN
    without autotuning; cuBLAS with a fixed workspace, set before CUDA's first use in this process): required when
    ``deterministic`` is True, else in warn-only mode, whose alerts are collected. Yields the
    :class:`RunSettings`; the previous settings are restored afterwards and the warnings other than the alerts
    are shown then. Also keeps freed host memory in the process from then on
    (:func:`~benchmark.training.devices.keep_freed_host_memory`), which changes no value."""
    keep_freed_host_memory()
    deterministic = execution.deterministic
    if deterministic is None:
        deterministic = resolve_device(execution.device).type == "cuda"
    previous = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    torch.set_num_threads(execution.threads)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=execution.deterministic is None)
        torch.backends.cudnn.benchmark = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield RunSettings(deterministic, caught)
    finally:
        torch.set_num_threads(previous[0])
        if deterministic:  # only what was set: the call imports torch's compiler, 1-2 s in the checks
            torch.use_deterministic_algorithms(previous[1])
            torch.backends.cudnn.benchmark = previous[2]
        shown = {}
        for w in caught:
            if NONDETERMINISTIC not in str(w.message):
                shown.setdefault((str(w.message), w.category, w.filename, w.lineno), w)
        for w in shown.values():
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


class RunTraining:
    """One run's training between steps: its method, stages, batch stream, evaluations, clocks and records.

    The loop that takes the steps drives it: :func:`_train` for a run alone, :mod:`benchmark.training.stacking` for runs
    trained together. Per stage: :meth:`begin_stage`; per epoch: :meth:`begin_epoch` (the epoch's batches), the
    steps, then :meth:`end_epoch` (evaluation, records, the stage's end); finally :meth:`result`.
    """

    def __init__(self, spec: RunSpec, data: GroupDataset, on_eval: Callable, keep=None, count_flops=False, start=None):
        self.spec, self.data, self.on_eval, self.keep, self.count_flops = spec, data, on_eval, keep, count_flops
        self.start = time.perf_counter() if start is None else start  # the run's clock (time_s, wall_time_s)
        self.method = build_method(spec, data)
        self.batch_rng = np.random.default_rng([spec.seed, 0xBA7C])
        self.evals = {split: eval_batches(data, split, spec.train.eval_batch_size) for split in ("val", "test")}
        self.steps_per_epoch = self.method.info.steps_per_epoch
        self.stages = self.method.stages()
        self.stage_number, self.epochs_left, self.step, self.epoch = 0, 0, 0, 0
        self.train_time, self.train_cpu, self.history, self.curve, self.stage_reports = 0.0, 0.0, [], [], []
        self.kept = None

    @property
    def stage(self) -> Stage:
        return self.stages[self.stage_number - 1]

    def begin_stage(self) -> torch.optim.Optimizer:
        """Enter the next stage (:func:`enter_stage`, timed as its setup); returns its optimiser over the parameters
        that require gradients."""
        self.stage_number += 1
        self.stage_start, self.stage_train_time = time.perf_counter(), 0.0
        self.facts, self.sampler = enter_stage(self.method, self.stage, self.data, self.spec)
        optimizer = make_optimizer(self.spec.train, [p for p in self.method.parameters() if p.requires_grad])
        synchronize(self.data.device)
        self.setup_time = time.perf_counter() - self.stage_start
        self.stream = BatchStream(self.sampler, self.batch_rng)
        self.flops = [] if self.count_flops else None  # of the stage's first step
        self.epochs_left = self.stage.epochs
        return optimizer

    def begin_epoch(self) -> list[Batch]:
        """Start the next epoch (training mode, the method's epoch hook) and draw its batches."""
        self.epoch += 1
        self.method.train()
        self.method.on_epoch_start(self.epoch, self.data)
        return self.stream.take(self.steps_per_epoch)

    def end_epoch(self, loss_sum: torch.Tensor, first_bad: torch.Tensor, logs: dict, train_s: float, cpu_s: float):
        """After the epoch's steps (their summed loss, first non-finite step or -1, last logs, wall and CPU time):
        raise :class:`NonFiniteLoss`, or evaluate, record, keep, and close the stage at its last epoch."""
        spec, steps, evals = self.spec, self.steps_per_epoch, self.evals.items()
        self.step += steps
        self.stage_train_time += train_s
        self.train_cpu += cpu_s
        if first_bad.item() >= 0:
            stage = self.stage.name
            raise NonFiniteLoss(f"non-finite loss at step {first_bad.item()} (epoch {self.epoch}, stage {stage})")
        with autocast(spec.train, self.data.device):
            metrics = {split: evaluate(self.method, self.data, batches, split == "val") for split, batches in evals}
        record = {
            "stage": self.stage.name,
            "epoch": self.epoch,
            "step": self.step,
            "train_loss": loss_sum.item() / steps,
            "logs": {k: v.detach().cpu().tolist() for k, v in logs.items()},
            "live_units": metrics["val"].pop("live_units"),
            **metrics,
            "time_s": time.perf_counter() - self.start,
            "train_s": train_s,
        }
        self.on_eval(record)
        self.curve.append({"stage": self.stage.name, "epoch": self.epoch, "val_wga": record["val"]["wga"]})
        if self.stage_number == len(self.stages):
            self.history.append({key: record[key] for key in ("epoch", "val", "test", "live_units")})
            if self.keep is not None and self.keep(record):
                self.kept = {name: value.detach().cpu().clone() for name, value in self.method.state_dict().items()}
        self.epochs_left -= 1
        if self.epochs_left == 0:
            self.end_stage()

    def end_stage(self) -> None:
        stage = self.stage
        self.train_time += self.stage_train_time
        self.stage_reports.append(
            {
                "name": stage.name,
                "epochs": stage.epochs,
                "steps": stage.epochs * self.steps_per_epoch,
                "sampler": self.sampler.name,
                "setup_time_s": self.setup_time,
                **({"step_flops": self.flops[0]} if self.flops else {}),
                "train_time_s": self.stage_train_time,
                "wall_time_s": time.perf_counter() - self.stage_start,
                **self.facts,
            }
        )

    @property
    def finished(self) -> bool:
        return self.stage_number == len(self.stages) and self.epochs_left == 0

    def result(self) -> dict:
        """The run's history and costs (what :func:`train` returns)."""
        device, names = self.data.device, self.data.group_names
        memory, memory_kind = peak_memory_mb(device)
        return {
            "group_sizes": {split: dict(zip(names, n)) for split, n in self.data.counts_table().items()},
            "epochs": self.spec.train.epochs,
            "steps": self.step,
            "stages": self.stage_reports,
            "train_time_s": self.train_time,
            "train_cpu_s": self.train_cpu,
            "wall_time_s": time.perf_counter() - self.start,
            "steps_per_s": self.step / self.train_time if self.train_time > 0 else None,
            "peak_memory_mb": memory,
            "memory_kind": memory_kind,
            "device": str(device),
            "threads": torch.get_num_threads(),
            "stacked_runs": 1,
            "history": self.history,
            "curve": self.curve,
            **({} if self.keep is None else {"state_dict": self.kept}),
        }


def _train(spec: RunSpec, data_cpu: GroupDataset, on_eval: Callable, device: torch.device, keep, count_flops: bool):
    start = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    run = RunTraining(spec, data_cpu.to(device), on_eval, keep, count_flops, start)
    while not run.finished:
        optimizer = run.begin_stage()
        for _ in range(run.stage.epochs):
            epoch_start, epoch_cpu = time.perf_counter(), time.process_time()
            batches = run.begin_epoch()
            steps = train_steps(run.method, run.data, optimizer, batches, spec.train, run.step, run.flops)
            synchronize(device)
            run.end_epoch(*steps, time.perf_counter() - epoch_start, time.process_time() - epoch_cpu)
    return run.result()
