"""Optuna search per model on RDB storage, scored on the validation core NRMSE.

Search spaces follow the paper's Table 6 grids (App. B.1), narrowed where a grid point cannot
train at all on small data; each lives next to what it tunes (`TRAIN_SEARCH_SPACE` in the
config schema, `search_space` on each model class, `SEARCH_SPACES` per gradient strategy).
The study name carries a hash of everything that changes the objective, so re-running the
same experiment resumes its study and a changed one starts fresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import torch

from htl.artifacts import BestParams, best_params_path
from htl.config import TRAIN_SEARCH_SPACE, ExperimentConfig, TrainSpec, config_to_dict
from htl.models.registry import resolve
from htl.storage import atomic_directory
from htl.train import fit, load_training_data

log = logging.getLogger(__name__)


def search_space(config: ExperimentConfig, model: str) -> dict[str, list[Any]]:
    """Table 6's grids for the entry: the training keys, its model's and its gradient
    strategy's (Algorithm 1's α, γ, C only where it trains with Algorithm 1), less every
    option the entry sets (an ablation's `alpha: 0` stays 0) and every key in `hpo.fixed`."""
    options = config.options_for(model)
    fixed = {*options, *config.hpo.fixed}
    recipe = resolve(config.architecture(model), options)
    space = {**TRAIN_SEARCH_SPACE, **recipe.search_space()}
    return {k: v for k, v in space.items() if k not in fixed}


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
) -> dict[str, BestParams]:
    """Run `hpo.trials` trials per model; write `<model>.json` with the best params."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_training_data(splits_dir, config.train.core_loss, config.train.device)
    metric = data.tasks.selection_metric
    results: dict[str, BestParams] = {}
    for model in config.models:
        base = config.training_spec(model)
        space = search_space(config, model)

        def objective(trial: optuna.Trial, base: TrainSpec = base, space: dict = space) -> float:
            tuned = {k: trial.suggest_categorical(k, v) for k, v in space.items()}
            params = replace(base.with_tuned(tuned), epochs=config.hpo.epochs)
            recipe = resolve(params.architecture, params.options)
            cardinalities = data.encoder.cardinalities
            torch.manual_seed(config.hpo.seed)  # the initial weights too: a trial is repeatable
            net = recipe.build(cardinalities, params.embed_dim, data.tasks).to(data.device)
            result = fit(net, data.train, data.valid, params, seed=config.hpo.seed, progress=False)
            return result.best_valid[metric]

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
            log.info("hpo %s: best valid %s = %.4f with %s", model, metric, value, best)
        results[model] = BestParams(model, best, value, base.with_tuned(best))
    with atomic_directory(out_dir) as tmp:
        for result in results.values():
            result.save(best_params_path(tmp, result.model))
    return results
