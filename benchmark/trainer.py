"""The one training loop every method runs in.

The trainer owns the device, seeding, optimiser, batching, evaluation on val and test after every
epoch, model selection, timing and memory accounting. It knows nothing of specific methods (only the
:class:`~benchmark.methods.base.Method` hooks) and nothing of files: evaluation records go to a callback.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Callable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmark.config import Execution, RunSpec, TrainConfig
from benchmark.data.batches import SAMPLERS, Batch, BatchStream, eval_batches
from benchmark.data.core import GroupDataset
from benchmark.data.images import prefetched
from benchmark.devices import keep_freed_host_memory, peak_memory_mb, resolve_device, synchronize
from benchmark.evaluation import evaluate
from benchmark.methods.base import Method, Stage, TrainInfo
from benchmark.models import GroupModel
from benchmark.registry import METHODS


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


def start_stage(method: Method, stage: Stage, data: GroupDataset, spec: RunSpec) -> tuple[dict, object, object]:
    """Enter ``stage``: the method's stage hook (its facts), a fresh model if the stage asks, a new optimiser
    over the parameters that require gradients, and the stage's batch sampler over the training set."""
    facts = method.on_stage_start(stage, data)
    if stage.fresh_model:
        method.model = seeded_model(data, spec.seed, spec.train.compile, spec.train.latent)
    optimizer = make_optimizer(spec.train, [p for p in method.parameters() if p.requires_grad])
    default = SAMPLERS[sampler_name(spec.train, method.needs_group_labels)]
    sampler = (stage.sampler or default)(data, data.indices_cpu("train"), spec.train.batch_size)
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
    picks the reported epoch (:func:`~benchmark.selection.selected`); ``curve`` has every stage's val WGA per
    evaluation, for the reports' training curves. With ``keep``, a final-stage evaluation
    for which ``keep(record)`` is true replaces the kept copy of the method's state (on CPU), returned as
    ``state_dict``: the runner keeps the model of the epoch its rule selects. Raises :class:`NonFiniteLoss` if
    the loss turns NaN/inf.
    """
    with run_settings(execution):
        return _train(spec, data_cpu, on_eval, resolve_device(execution.device), keep, execution.count_flops)


@contextlib.contextmanager
def run_settings(execution: Execution):
    """For the duration of a run: ``execution.threads`` torch CPU threads and, with ``deterministic``, PyTorch's
    deterministic algorithms (cuDNN without autotuning; cuBLAS with a fixed workspace, set before CUDA's first
    use in this process). The previous settings are restored afterwards. Also keeps freed host memory in the
    process from then on (:func:`~benchmark.devices.keep_freed_host_memory`), which changes no value."""
    keep_freed_host_memory()
    previous = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    torch.set_num_threads(execution.threads)
    if execution.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.set_num_threads(previous[0])
        if execution.deterministic:  # only what was set: the call imports torch's compiler, 1-2 s in the checks
            torch.use_deterministic_algorithms(previous[1])
            torch.backends.cudnn.benchmark = previous[2]


def _train(spec: RunSpec, data_cpu: GroupDataset, on_eval: Callable, device: torch.device, keep, count_flops: bool):
    start = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    data = data_cpu.to(device)
    method = build_method(spec, data)
    batch_rng = np.random.default_rng([spec.seed, 0xBA7C])
    evals = {split: eval_batches(data, split, spec.train.eval_batch_size) for split in ("val", "test")}
    steps_per_epoch = method.info.steps_per_epoch
    stages = method.stages()
    step, epoch, train_time, train_cpu, history, curve, stage_reports, kept = 0, 0, 0.0, 0.0, [], [], [], None
    for stage_number, stage in enumerate(stages, 1):
        stage_start, stage_train_time = time.perf_counter(), 0.0
        facts, optimizer, sampler = start_stage(method, stage, data, spec)
        synchronize(device)
        setup_time = time.perf_counter() - stage_start
        stream = BatchStream(sampler, batch_rng)
        flops = [] if count_flops else None  # of the stage's first step
        for _ in range(stage.epochs):
            epoch += 1
            epoch_start, epoch_cpu = time.perf_counter(), time.process_time()
            method.train()
            method.on_epoch_start(epoch, data)
            batches = stream.take(steps_per_epoch)
            loss_sum, first_bad, logs = train_steps(method, data, optimizer, batches, spec.train, step, flops)
            step += len(batches)
            synchronize(device)
            epoch_train_time = time.perf_counter() - epoch_start
            stage_train_time += epoch_train_time
            train_cpu += time.process_time() - epoch_cpu
            if first_bad.item() >= 0:
                raise NonFiniteLoss(f"non-finite loss at step {first_bad.item()} (epoch {epoch}, stage {stage.name})")
            with autocast(spec.train, device):
                metrics = {split: evaluate(method, data, part, split == "val") for split, part in evals.items()}
            record = {
                "stage": stage.name,
                "epoch": epoch,
                "step": step,
                "train_loss": loss_sum.item() / len(batches),
                "logs": {k: v.detach().cpu().tolist() for k, v in logs.items()},
                "live_units": metrics["val"].pop("live_units"),
                **metrics,
                "time_s": time.perf_counter() - start,
                "train_s": epoch_train_time,
            }
            on_eval(record)
            curve.append({"stage": stage.name, "epoch": epoch, "val_wga": record["val"]["wga"]})
            if stage_number == len(stages):
                history.append({key: record[key] for key in ("epoch", "val", "test", "live_units")})
                if keep is not None and keep(record):
                    kept = {name: value.detach().cpu().clone() for name, value in method.state_dict().items()}
        train_time += stage_train_time
        stage_reports.append(
            {
                "name": stage.name,
                "epochs": stage.epochs,
                "steps": stage.epochs * steps_per_epoch,
                "sampler": sampler.name,
                "setup_time_s": setup_time,
                **({"step_flops": flops[0]} if flops else {}),
                "train_time_s": stage_train_time,
                "wall_time_s": time.perf_counter() - stage_start,
                **facts,
            }
        )

    memory, memory_kind = peak_memory_mb(device)
    return {
        "group_sizes": {split: dict(zip(data.group_names, n)) for split, n in data.counts_table().items()},
        "epochs": spec.train.epochs,
        "steps": step,
        "stages": stage_reports,
        "train_time_s": train_time,
        "train_cpu_s": train_cpu,
        "wall_time_s": time.perf_counter() - start,
        "steps_per_s": step / train_time if train_time > 0 else None,
        "peak_memory_mb": memory,
        "memory_kind": memory_kind,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "history": history,
        "curve": curve,
        **({} if keep is None else {"state_dict": kept}),
    }
