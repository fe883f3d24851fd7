"""The training engine: tensors on the device, an epoch is a randperm and slices.

No DataLoader and no per-step host sync on the hot path: losses are summed on the device and
read once per epoch; predictions are accumulated on the device and leave it once per
evaluation. Early stopping on the validation core NRMSE restores the best epoch. A checkpoint
written after every epoch lets a killed run resume and end exactly where an uninterrupted one
would.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from htl.artifacts import FEATURES_FILE, ModelSpec, save_model, split_path
from htl.config import TrainSpec
from htl.data.features import FeatureEncoder
from htl.errors import TrainingDiverged
from htl.gradients import GradientStrategy
from htl.losses import fitted_core, predictions, task_losses, with_core_statistics
from htl.metrics import evaluate_predictions
from htl.models.base import MultiTaskModel
from htl.models.registry import resolve
from htl.storage import atomic_file
from htl.tasks import TaskSpec

log = logging.getLogger(__name__)

EVAL_BATCH = 65_536


@dataclass(frozen=True)
class SplitTensors:
    """One split on the device: int field indices [N, m], float targets per task, and the
    per-field multipliers [N, m] when there are dense numeric fields."""

    x: torch.Tensor
    y: dict[str, torch.Tensor]
    scale: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.x.shape[0]


@dataclass(frozen=True)
class FitResult:
    history: list[dict[str, float]]
    best_epoch: int
    best_valid: dict[str, float]
    resumed_from: int = 0  # the epoch a checkpoint resumed from; 0 for a fresh run


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    return torch.device(name)


@dataclass(frozen=True)
class TrainingData:
    """What a training run or an HPO study loads once: the encoder, the task spec, the device
    and the train and valid splits on it."""

    encoder: FeatureEncoder
    tasks: TaskSpec
    device: torch.device
    train: SplitTensors
    valid: SplitTensors


def load_training_data(splits_dir: str | Path, core_loss: str, device: str) -> TrainingData:
    """The encoder, the task spec with the train core's statistics, and both splits."""
    encoder = FeatureEncoder.load(Path(splits_dir) / FEATURES_FILE)
    target = resolve_device(device)
    train, valid = (load_split(splits_dir, s, encoder, target) for s in ("train", "valid"))
    tasks = TaskSpec(encoder.chain, encoder.core, core_loss, encoder.core_transform)
    tasks = with_core_statistics(tasks, train.y[encoder.core])
    return TrainingData(encoder, tasks, target, train, valid)


@torch.no_grad()
def with_residual_variance(model: MultiTaskModel, data: SplitTensors) -> None:
    """Under `log1p`, store the validation residual variance of the log1p-scale core in the
    model's task spec: the back-transform's bias correction (a log-normal's E = e^(μ+σ²/2))."""
    if model.tasks.core_transform != "log1p":
        return
    core, squared = model.tasks.core, 0.0
    for rows, outputs in raw_outputs(model, data):
        residual = torch.log1p(data.y[core][rows]) - fitted_core(outputs[core], model.tasks)
        squared += float((residual.double() ** 2).sum())
    model.tasks = replace(model.tasks, core_residual_variance=squared / max(len(data), 1))


def load_split(
    splits_dir: str | Path, name: str, encoder: FeatureEncoder, device: torch.device | str
) -> SplitTensors:
    frame = pd.read_parquet(split_path(splits_dir, name))
    x = torch.from_numpy(frame[encoder.fields].to_numpy(dtype=np.int32, copy=True)).to(device)
    tasks = (*encoder.chain, encoder.core)
    y = {
        t: torch.from_numpy(frame[t].to_numpy(dtype=np.float32, copy=True)).to(device)
        for t in tasks
    }
    scale = encoder.scale_from_split(frame)
    return SplitTensors(x, y, None if scale is None else torch.from_numpy(scale).to(device))


@torch.no_grad()
def raw_outputs(model: MultiTaskModel, data: SplitTensors, batch: int = EVAL_BATCH):
    """(rows, the model's raw outputs) per evaluation batch, in eval mode."""
    model.eval()
    for start in range(0, len(data), batch):
        rows = slice(start, start + batch)
        scale = None if data.scale is None else data.scale[rows]
        yield rows, model(data.x[rows], scale)


@torch.no_grad()
def predict(
    model: MultiTaskModel, data: SplitTensors, batch: int = EVAL_BATCH
) -> dict[str, torch.Tensor]:
    """Predictions per task on the device (probabilities; core on the raw scale)."""
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in model.tasks.names}
    for _, outputs in raw_outputs(model, data, batch):
        for name, value in predictions(outputs, model.tasks).items():
            parts[name].append(value)
    return {name: torch.cat(values) for name, values in parts.items()}


def score(model: MultiTaskModel, data: SplitTensors) -> dict[str, float]:
    return score_and_diagnose(model, data)[0]


def score_and_diagnose(
    model: MultiTaskModel, data: SplitTensors
) -> tuple[dict[str, float], dict[str, float]]:
    """The split's metrics, and the model's diagnostics on the same predictions."""
    preds = predict(model, data)
    to_np = {k: v.float().cpu().numpy() for k, v in preds.items()}
    targets = {k: v.cpu().numpy() for k, v in data.y.items()}
    return evaluate_predictions(targets, to_np, model.tasks), model.diagnostics(preds)


def train_step(
    model: MultiTaskModel,
    optimizer: torch.optim.Optimizer,
    strategy: GradientStrategy,
    shared: list[torch.nn.Parameter],
    x: torch.Tensor,
    y: dict[str, torch.Tensor],
    scale: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One optimiser step; returns the detached per-task losses and the gradient norms.

    The strategy says whether it uses the model's single-backward cut or the plain graph."""
    outputs, cut = model.forward_train(x, scale) if strategy.uses_cut else (model(x, scale), None)
    losses = task_losses(outputs, y, model.tasks)
    for task, extra in model.auxiliary_losses(outputs).items():
        losses[task] = losses[task] + extra
    optimizer.zero_grad(set_to_none=True)
    norms = strategy.backward(losses, shared, cut)
    optimizer.step()
    return torch.stack(list(losses.values())).detach(), norms


def run_epoch(
    model: MultiTaskModel,
    optimizer: torch.optim.Optimizer,
    strategy: GradientStrategy,
    shared: list[torch.nn.Parameter],
    train: SplitTensors,
    batch_size: int,
    generator: torch.Generator,
    first_step: int = 0,
    total_steps: int = 0,
    desc: str = "train",
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One pass over a fresh permutation; mean per-task losses and gradient norms, on device.

    Nothing leaves the device inside the loop: losses and norms are summed as tensors.
    """
    model.train()
    n = len(train)
    steps = math.ceil(n / batch_size)
    order = torch.randperm(n, device=train.x.device, generator=generator)
    loss_sum = torch.zeros(len(model.tasks.names), device=train.x.device)
    norm_sum: torch.Tensor | None = None  # [T+1, 2] shared-gradient norms, before/after
    for i in tqdm(range(steps), desc=desc, leave=False, disable=not progress):
        idx = order[i * batch_size : (i + 1) * batch_size]
        model.on_train_step(first_step + i, total_steps or steps)
        y = {k: v[idx] for k, v in train.y.items()}
        scale = None if train.scale is None else train.scale[idx]
        losses, norms = train_step(model, optimizer, strategy, shared, train.x[idx], y, scale)
        loss_sum += losses
        if norms is not None:
            norm_sum = norms.detach() if norm_sum is None else norm_sum + norms.detach()
    return loss_sum / steps, None if norm_sum is None else norm_sum / steps


def fit(
    model: MultiTaskModel,
    train: SplitTensors,
    valid: SplitTensors,
    params: TrainSpec,
    seed: int,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_key: str = "",
    checkpoint_meta: dict[str, str] | None = None,
) -> FitResult:
    """Adam with coupled L2, early stopping on the task spec's selection metric (validation
    core NRMSE), best epoch restored; the gradient strategy is the spec's entry's.

    With `checkpoint`, the whole training state is saved after every epoch and a run that
    finds a checkpoint with the same `checkpoint_key` continues from it; the file is removed
    once training ends. `checkpoint_meta` travels in the checkpoint (the tracking run's id).
    """
    device = train.x.device
    torch.manual_seed(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=params.l2)
    strategy = resolve(params.architecture, params.options).strategy()
    shared = model.shared_parameters()
    core_key = model.tasks.selection_metric
    state = _TrainingState(best_state=copy.deepcopy(model.state_dict()))
    if checkpoint is not None:
        restored = _load_checkpoint(checkpoint, checkpoint_key)
        if restored is not None:
            state = _restore(restored, model, optimizer, strategy, generator)
            log.info("resuming from %s after epoch %d", checkpoint, state.epoch)
    resumed_from = state.epoch
    steps_per_epoch = math.ceil(len(train) / params.batch_size)
    while not state.stopped and state.epoch < params.epochs:
        epoch = state.epoch + 1
        started = time.perf_counter()
        losses, norms = run_epoch(
            model, optimizer, strategy, shared, train, params.batch_size, generator,
            state.epoch * steps_per_epoch, params.epochs * steps_per_epoch,
            desc=f"epoch {epoch}", progress=progress,
        )  # fmt: skip
        train_losses = losses.tolist()  # the epoch's one host sync
        seconds = time.perf_counter() - started
        with_residual_variance(model, valid)  # log1p's back-transform, for these weights
        valid_metrics, diagnostics = score_and_diagnose(model, valid)
        record = {
            "epoch": float(epoch),
            "time/epoch_seconds": seconds,
            "time/samples_per_second": len(train) / seconds,
            **{f"train_loss/{k}": v for k, v in zip(model.tasks.names, train_losses, strict=False)},
            **{f"valid/{k}": v for k, v in valid_metrics.items()},
            **diagnostics,
        }
        if norms is not None:  # Fig. 5: mean per-step magnitude of each task's shared gradient
            for name, (before, after) in zip(model.tasks.names, norms.tolist(), strict=True):
                record[f"grad_norm/{name}/before"] = before
                record[f"grad_norm/{name}/after"] = after
        state.history.append(record)
        state.epoch = epoch
        if on_epoch:
            on_epoch(epoch, record)
        value = valid_metrics[core_key]
        log.info("epoch %d: valid %s = %.4f", epoch, core_key, value)
        if not math.isfinite(value):
            raise FloatingPointError(f"validation {core_key} is {value} at epoch {epoch}")
        if value < state.best_value:
            state.best_value, state.best_epoch = value, epoch
            state.best_state = copy.deepcopy(model.state_dict())
            state.best_valid = valid_metrics
        elif epoch - state.best_epoch >= params.patience:
            log.info("early stop at epoch %d; best epoch %d", epoch, state.best_epoch)
            state.stopped = True
        if checkpoint is not None:
            _save_checkpoint(
                checkpoint, checkpoint_key, state, model, optimizer, strategy, generator,
                checkpoint_meta or {},
            )  # fmt: skip
    model.load_state_dict(state.best_state)
    with_residual_variance(model, valid)
    if checkpoint is not None:
        Path(checkpoint).unlink(missing_ok=True)
    return FitResult(state.history, state.best_epoch, state.best_valid, resumed_from)


@dataclass
class _TrainingState:
    """What besides the weights, the optimiser and the RNGs a resumed run needs."""

    best_state: dict[str, torch.Tensor]
    epoch: int = 0
    best_value: float = math.inf
    best_epoch: int = 0
    best_valid: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    stopped: bool = False


def checkpoint_key(*parts: Any) -> str:
    """A digest of everything that makes a checkpoint valid for a run (model, seed, params,
    data); a checkpoint under another key is ignored, never resumed."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _save_checkpoint(
    path: str | Path,
    key: str,
    state: _TrainingState,
    model: MultiTaskModel,
    optimizer: torch.optim.Optimizer,
    strategy: GradientStrategy,
    generator: torch.Generator,
    meta: dict[str, str] | None = None,
) -> None:
    """Write the checkpoint to a temporary file, then rename: a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "key": key,
        "meta": meta or {},
        "state": {k: v for k, v in vars(state).items() if k != "best_state"},
        "best_state": state.best_state,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "strategy": strategy.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    with atomic_file(path) as tmp:  # a name of this writer's own; stale ones are swept
        torch.save(payload, tmp)


def checkpoint_location(
    splits_dir: str | Path,
    model_name: str,
    seed: int,
    params: TrainSpec,
    checkpoint_dir: str | Path,
) -> tuple[Path, str]:
    """Where a (model, seed, params, splits) run keeps its checkpoint, and its key: a digest of
    everything that makes the checkpoint valid for it (row counts from the Parquet footers)."""
    import pyarrow.parquet as pq

    encoder = FeatureEncoder.load(Path(splits_dir) / FEATURES_FILE)
    rows = [pq.ParquetFile(split_path(splits_dir, s)).metadata.num_rows for s in ("train", "valid")]
    settings = {k: v for k, v in asdict(params).items() if k != "checkpoint_dir"}
    key = checkpoint_key(model_name, seed, settings, encoder.to_json(), *rows)
    return Path(checkpoint_dir) / f"{model_name}-seed{seed}-{key}.pt", key


def checkpoint_meta(path: str | Path, key: str) -> dict[str, str]:
    """What a resumable checkpoint at `path` carries besides the state (empty when none)."""
    payload = _load_checkpoint(path, key)
    return dict(payload.get("meta", {})) if payload is not None else {}


def _load_checkpoint(path: str | Path, key: str) -> dict[str, Any] | None:
    path = Path(path)
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file: torch raises several types
        aside = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
        os.replace(path, aside)
        log.warning("checkpoint %s cannot be read (%s); set aside as %s, starting afresh",
                    path, exc, aside.name)  # fmt: skip
        return None
    if payload.get("key") != key:
        log.warning("ignoring checkpoint %s: it belongs to another run (key mismatch)", path)
        return None
    return payload


def _restore(
    payload: dict[str, Any],
    model: MultiTaskModel,
    optimizer: torch.optim.Optimizer,
    strategy: GradientStrategy,
    generator: torch.Generator,
) -> _TrainingState:
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    strategy.load_state_dict(payload["strategy"])
    generator.set_state(payload["generator"])
    torch.set_rng_state(payload["torch_rng"])
    if payload["cuda_rng"]:
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    return _TrainingState(best_state=payload["best_state"], **payload["state"])


def train_model(
    splits_dir: str | Path,
    model_name: str,
    seed: int,
    params: TrainSpec,
    out_dir: str | Path,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_meta: dict[str, str] | None = None,
) -> FitResult:
    """Train one (model, seed) on the splits and write the model directory atomically.

    With `checkpoint_dir`, progress is saved there after every epoch and a rerun of the same
    (model, seed, params, splits) resumes from it.
    """
    data = load_training_data(splits_dir, params.core_loss, params.device)
    recipe = resolve(params.architecture, params.options)
    torch.manual_seed(seed)
    cardinalities = data.encoder.cardinalities
    model = recipe.build(cardinalities, params.embed_dim, data.tasks).to(data.device)
    checkpoint, key = None, ""
    if checkpoint_dir is not None:
        checkpoint, key = checkpoint_location(splits_dir, model_name, seed, params, checkpoint_dir)
    try:
        result = fit(
            model, data.train, data.valid, params, seed, on_epoch=on_epoch,
            checkpoint=checkpoint, checkpoint_key=key, checkpoint_meta=checkpoint_meta,
        )  # fmt: skip
    except FloatingPointError as exc:
        if checkpoint is not None:  # a rerun would only diverge again
            checkpoint.unlink(missing_ok=True)
        tuned = {k: getattr(params, k) for k in ("lr", "batch_size", "l2", "embed_dim")}
        raise TrainingDiverged(
            f"{model_name} seed {seed} diverged: {exc}; params {tuned | params.options}"
        ) from exc
    spec = ModelSpec(
        model=model_name,
        architecture=params.architecture,
        seed=seed,
        cardinalities=cardinalities,
        embed_dim=params.embed_dim,
        tower_dims=list(model.tower_dims),
        tasks=model.tasks,  # with the train statistics and the back-transform's correction
        options={**asdict(recipe.options), **asdict(recipe.gradient)},
        params=params,
        best_epoch=result.best_epoch,
        best_valid=result.best_valid,
        resumed_from_epoch=result.resumed_from,
        history=result.history,
    )
    save_model(out_dir, model, data.encoder, spec)
    return result
