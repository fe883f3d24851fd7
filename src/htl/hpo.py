"""Optuna search per model on RDB storage, scored on the validation core NRMSE.

Search spaces follow the paper's Table 6 grids (App. B.1), narrowed where a grid point cannot
train at all on small data. The study name carries a hash of everything that changes the
objective, so re-running the same experiment resumes its study and a changed one starts fresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import optuna

from htl.config import ExperimentConfig, config_to_dict
from htl.data.features import FeatureEncoder
from htl.data.prepare import FEATURES_FILE
from htl.models.registry import build_model, make_options
from htl.storage import atomic_directory, write_json
from htl.tasks import TaskSpec
from htl.train import TrainParams, fit, load_split, resolve_device

log = logging.getLogger(__name__)

LR_GRID = [1e-4, 5e-4, 1e-3, 5e-3, 1e-2]
COMMON_SPACE = {
    "embed_dim": [5, 10, 15, 20],
    "batch_size": [256, 512, 1024, 2048, 4096],
    "lr": LR_GRID,
    "l2": [0.0, 1e-6, 1e-5, 1e-4],
}
#: Model options tuned per model (keys of the model's options dataclass).
MODEL_SPACES: dict[str, dict[str, list[Any]]] = {
    "htlnet": {
        "label_dim": [5, 10, 15, 20],
        "tau_decay_steps": [1000.0, 5000.0, 10000.0, 15000.0, 20000.0],
        "alpha": [1e-6, 1e-4, 1e-2, 0.1, 0.5, 1.0],
        "gamma": [1e-5, 1e-3, 1e-2, 0.1, 0.5, 1.0],
        "clip": [1.0, 5.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0],
    },
    "mmoe": {"experts": [4, 8]},
}
TRAIN_KEYS = {"embed_dim", "batch_size", "lr", "l2"}
ALGORITHM1_KEYS = {"alpha", "gamma", "clip"}


def base_params(config: ExperimentConfig, model: str) -> TrainParams:
    """The config's training settings for one model, before tuning."""
    t = config.train
    return TrainParams(
        epochs=t.epochs,
        batch_size=t.batch_size,
        lr=t.lr,
        l2=t.l2,
        embed_dim=t.embed_dim,
        patience=t.patience,
        core_loss=t.core_loss,
        device=t.device,
        options=config.options_for(model),
        architecture=config.architecture(model),
    )


def search_space(config: ExperimentConfig, model: str) -> dict[str, list[Any]]:
    """Table 6's grids for the entry's architecture, less every option the entry sets (an
    ablation's `alpha: 0` stays 0), every key in `hpo.fixed`, and Algorithm 1's α, γ, C where
    the entry trains with another gradient strategy (they would change nothing)."""
    options = config.options_for(model)
    fixed = {*options, *config.hpo.fixed}
    architecture = config.architecture(model)
    if make_options(architecture, options).gradient != "htl":
        fixed |= ALGORITHM1_KEYS
    space = {**COMMON_SPACE, **MODEL_SPACES.get(architecture, {})}
    return {k: v for k, v in space.items() if k not in fixed}


def tunable_keys() -> set[str]:
    """Every key some search space tunes (what `hpo.fixed` may name)."""
    return {*COMMON_SPACE, *(k for space in MODEL_SPACES.values() for k in space)}


def apply_params(params: TrainParams, tuned: dict[str, Any]) -> TrainParams:
    """Overlay tuned values: training keys onto the params, the rest onto the model options."""
    train = {k: v for k, v in tuned.items() if k in TRAIN_KEYS}
    options = {**params.options, **{k: v for k, v in tuned.items() if k not in TRAIN_KEYS}}
    return replace(params, **train, options=options)


def study_name(config: ExperimentConfig, model: str) -> str:
    relevant = {
        k: v
        for k, v in config_to_dict(config).items()
        if k in ("data", "train", "model_options", "hpo")
    }
    digest = hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:10]
    return f"{config.name}-{model}-{digest}"


def search(
    config: ExperimentConfig, splits_dir: str | Path, out_dir: str | Path
) -> dict[str, dict[str, Any]]:
    """Run `hpo.trials` trials per model; write `<model>.json` with the best params."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    encoder = FeatureEncoder.load(Path(splits_dir) / FEATURES_FILE)
    tasks = TaskSpec(encoder.chain, encoder.core, config.train.core_loss, encoder.core_transform)
    device = resolve_device(config.train.device)
    train, valid = (load_split(splits_dir, s, encoder, device) for s in ("train", "valid"))
    core_key = f"{tasks.core}/nrmse"
    results: dict[str, dict[str, Any]] = {}
    for model in config.models:
        base = base_params(config, model)
        space = search_space(config, model)

        def objective(
            trial: optuna.Trial, model: str = model, base: TrainParams = base, space=space
        ) -> float:
            tuned = {k: trial.suggest_categorical(k, v) for k, v in space.items()}
            params = replace(apply_params(base, tuned), epochs=config.hpo.epochs)
            net = build_model(
                params.architecture, encoder.cardinalities, params.embed_dim, tasks, params.options
            ).to(device)
            result = fit(net, train, valid, params, seed=config.hpo.seed, progress=False)
            return result.best_valid[core_key]

        best: dict[str, Any] = {}
        value = None
        if config.hpo.trials > 0:
            study = optuna.create_study(
                study_name=study_name(config, model),
                storage=config.optuna_storage,
                direction="minimize",
                sampler=optuna.samplers.TPESampler(seed=config.hpo.seed),
                load_if_exists=True,
            )
            study.optimize(objective, n_trials=config.hpo.trials, catch=(FloatingPointError,))
            best, value = study.best_params, study.best_value
            log.info("hpo %s: best valid %s = %.4f with %s", model, core_key, value, best)
        params = asdict(apply_params(base, best))
        results[model] = {
            "model": model,
            "tuned": best,
            "best_valid_nrmse": value,
            "params": params,
        }
    with atomic_directory(out_dir) as tmp:
        for model, result in results.items():
            write_json(tmp / f"{model}.json", result)
    return results
