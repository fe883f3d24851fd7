"""Optuna search for one model on RDB storage, the same protocol for every model
(docs/pipeline.md): `hpo.trials` finished trials per study however many workers, reruns or
retries (a trial started beyond the budget by a concurrent worker ends at once, untrained, as
FAIL marked `htl.over_budget`); a dead worker's trial is failed by heartbeat and re-enqueued
once; a configuration that cannot train fails with its `htl.fail_reason`, not retried. The
first trial is the entry's defaults, then seeded TPE after `hpo.startup_trials` random ones,
the objective reported every epoch to the pruner.

Search spaces (Table 6, App. B.1) live next to what they tune: `TRAIN_SEARCH_SPACE` in the
config schema, `search_space` on each model class, `SEARCH_SPACES` per gradient strategy. The
study name carries a hash of everything that changes the objective: the same experiment
resumes its study, a changed one starts fresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from htl.artifacts import BestParams
from htl.config import TRAIN_SEARCH_SPACE, ConfigError, ExperimentConfig, config_to_dict
from htl.metrics import higher_is_better
from htl.models.registry import resolve
from htl.train import TrainingData, fit, load_training_data

log = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

# The heartbeat API (fail_stale_trials, heartbeat_interval) has been "experimental" since
# Optuna 2.9; we rely on it knowingly, so its warning on every trial is noise.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


class OverBudget(Exception):
    """A trial started beyond the study's budget by a concurrent worker."""


def search_space(config: ExperimentConfig, model: str) -> dict[str, list[Any]]:
    """Table 6's grids for the entry: the training keys, its model's and its gradient
    strategy's, less every option the entry sets (an ablation's `alpha: 0` stays 0) and every
    key in `hpo.fixed`. Each grid holds the entry's default, enqueued as the first trial."""
    options = config.options_for(model)
    fixed = {*options, *config.hpo.fixed}
    recipe = resolve(config.architecture(model), options)
    space = {**TRAIN_SEARCH_SPACE, **recipe.search_space()}
    defaults = default_params(config, model, space)

    def order(value: Any) -> tuple[int, Any]:  # numbers by value, anything else by name
        return (0, value) if isinstance(value, int | float) else (1, str(value))

    return {k: sorted({*v, defaults[k]}, key=order) for k, v in space.items() if k not in fixed}


def default_params(
    config: ExperimentConfig, model: str, space: dict[str, list[Any]]
) -> dict[str, Any]:
    """The entry's own value of every searched key: the config's training settings, the
    option defaults of its model and gradient strategy."""
    spec = config.training_spec(model)
    recipe = resolve(spec.architecture, spec.options)
    values = {**vars(recipe.options), **vars(recipe.gradient)}
    values.update({k: getattr(spec, k) for k in TRAIN_SEARCH_SPACE})
    return {k: values[k] for k in space}


def study_name(config: ExperimentConfig, model: str) -> str:
    relevant = {
        k: v
        for k, v in config_to_dict(config).items()
        if k in ("data", "train", "model_options", "hpo")
    }
    relevant["hpo"] = {k: v for k, v in relevant["hpo"].items() if k not in ("workers", "storage")}
    digest = hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:10]
    return f"{config.name}-{model}-{digest}"


def storage(config: ExperimentConfig) -> optuna.storages.RDBStorage:
    """The study storage with a heartbeat: a dead worker's trial is failed and retried once."""
    beat, url = config.hpo.heartbeat_s, config.optuna_storage
    return optuna.storages.RDBStorage(
        url,
        engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {},
        heartbeat_interval=beat,
        grace_period=2 * beat,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
            max_retry=1
        ),
    )


def pruner(config: ExperimentConfig) -> optuna.pruners.BasePruner:
    epochs = config.hpo.epochs
    if config.hpo.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=min(1, epochs - 1))
    if config.hpo.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    return optuna.pruners.NopPruner()


def open_study(config: ExperimentConfig, model: str, worker: int = 0) -> optuna.Study:
    """The entry's study (created on first use, its defaults enqueued as the first trial).
    On SQLite, creation is serialised by a file lock: two workers starting on a fresh file
    would both create the schema, and both enqueue the defaults."""
    url = config.optuna_storage
    if url.startswith("sqlite:///"):
        from filelock import FileLock

        db = Path(url.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(db) + ".lock"):
            return _open_study(config, model, worker)
    return _open_study(config, model, worker)


def _open_study(config: ExperimentConfig, model: str, worker: int) -> optuna.Study:
    study = optuna.create_study(
        study_name=study_name(config, model),
        storage=storage(config),
        direction="minimize",
        sampler=optuna.samplers.TPESampler(
            n_startup_trials=config.hpo.startup_trials,
            seed=config.hpo.seed + worker,
            constant_liar=True,  # parallel workers do not all sample the same point
        ),
        pruner=pruner(config),
        load_if_exists=True,
    )
    if not study.get_trials(deepcopy=False):
        space = search_space(config, model)
        study.enqueue_trial(default_params(config, model, space), user_attrs={"htl.default": True})
    return study


def objective_value(
    data: TrainingData, valid: dict[str, float], weights: dict[str, float]
) -> float:
    """The validation objective: the selection metric (core NRMSE), or with `weights` a
    weighted sum over the tasks of each task's first directional metric, turned so that
    lower is better (1 − AUC for a binary task)."""
    if not weights:
        return valid[data.tasks.selection_metric]
    total = 0.0
    for task, weight in weights.items():
        key = data.tasks.selection_metric if task == data.tasks.core else f"{task}/auc"
        value = valid[key]
        total += weight * ((1.0 - value) if higher_is_better(key) else value)
    return total


def make_objective(
    config: ExperimentConfig, model: str, data: TrainingData
) -> Callable[[optuna.trial.Trial], float]:
    """Train the trial's parameters for `hpo.epochs` on each of `hpo.seeds`, reporting the
    seed-averaged objective every epoch (pruning on it); its best epoch's value."""
    base = config.training_spec(model)
    space = search_space(config, model)
    hpo = config.hpo

    def objective(trial: optuna.trial.Trial) -> float:
        _check_budget(trial, hpo.trials)
        trial.set_user_attr("htl.worker", f"{socket.gethostname()}:{os.getpid()}")
        tuned = {k: trial.suggest_categorical(k, v) for k, v in space.items()}
        params = replace(base.with_tuned(tuned), epochs=hpo.epochs)
        recipe, cards = resolve(params.architecture, params.options), data.encoder.cardinalities
        curves: list[list[float]] = []
        started = time.perf_counter()
        try:
            for seed in hpo.seeds:
                curve: list[float] = []
                curves.append(curve)

                def on_epoch(epoch: int, record: dict[str, float], curve=curve) -> None:
                    valid = {k.removeprefix("valid/"): v for k, v in record.items()}
                    curve.append(objective_value(data, valid, hpo.weights))
                    if len(curves) == len(hpo.seeds):  # report once every seed has this epoch
                        mean = _mean_at(curves, epoch - 1)
                        trial.report(mean, epoch)
                        if trial.should_prune():
                            trial.set_user_attr("htl.epochs", epoch)
                            raise optuna.TrialPruned(f"pruned at epoch {epoch}: {mean:.5f}")

                torch.manual_seed(seed)  # the initial weights too: repeatable in any process
                net = recipe.build(cards, params.embed_dim, data.tasks).to(data.device)
                fit(net, data.train, data.valid, params, seed, on_epoch, progress=False)
        except FloatingPointError as exc:
            trial.set_user_attr("htl.fail_reason", str(exc))
            raise
        finally:
            trial.set_user_attr("htl.seconds", time.perf_counter() - started)
        value = min(_mean_at(curves, i) for i in range(min(len(c) for c in curves)))
        trial.set_user_attr("htl.epochs", max(len(c) for c in curves))
        return value

    return objective


def _mean_at(curves: list[list[float]], i: int) -> float:
    return sum(c[i] for c in curves) / len(curves)


def _check_budget(trial: optuna.trial.Trial, budget: int) -> None:
    """Fail at once a trial that concurrent workers started beyond the budget."""
    earlier = trial.study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
    ahead = sum(1 for t in earlier if t.number < trial.number)
    if ahead >= budget:
        trial.set_user_attr("htl.over_budget", True)
        raise OverBudget(f"trial {trial.number}: {ahead} trials ahead of it fill the budget")


def run_worker(
    config: ExperimentConfig,
    model: str,
    data: TrainingData,
    worker: int = 0,
    on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
    poll_s: float = 1.0,
) -> optuna.Study:
    """Run trials of the entry's study until `hpo.trials` are finished (this worker's and
    everyone else's); a killed worker's trial is failed and retried once, after the grace
    period. `on_trial` sees each of this worker's trials once it ended. Returns the study."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our log says what a trial did
    study = open_study(config, model, worker)
    objective = make_objective(config, model, data)
    callbacks = [on_trial] if on_trial is not None else []
    budget = config.hpo.trials
    while True:
        optuna.storages.fail_stale_trials(study)
        counts = Counter(t.state for t in study.get_trials(deepcopy=False))
        finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
        if finished >= budget:
            return study
        if counts[TrialState.WAITING] or finished + counts[TrialState.RUNNING] < budget:
            study.optimize(
                objective, n_trials=1, catch=(FloatingPointError, OverBudget), callbacks=callbacks
            )
        else:  # the rest are running elsewhere: wait for them, or for their heartbeat to stop
            time.sleep(poll_s)


def summarize(study: optuna.Study) -> dict[str, Any]:
    """What the report and MLflow show of a study: trials by state, the best value, and the
    parameter importances (fANOVA) where there are enough finished trials."""
    trials = study.get_trials(deepcopy=False)
    counts = Counter(t.state.name.lower() for t in trials)
    over = sum(1 for t in trials if t.user_attrs.get("htl.over_budget"))
    summary: dict[str, Any] = {
        "study": study.study_name,
        "finished": counts["complete"] + counts["pruned"],
        "complete": counts["complete"],
        "pruned": counts["pruned"],
        "failed": counts["fail"] - over,
        "over_budget": over,
        "best_value": study.best_value if counts["complete"] else None,
        "importances": {},
    }
    if counts["complete"] >= 10 and len(study.best_params) > 1:  # fewer: noise
        with contextlib.suppress(RuntimeError, ValueError):  # e.g. a constant objective
            summary["importances"] = dict(optuna.importance.get_param_importances(study))
    return summary


def search_model(
    config: ExperimentConfig,
    splits_dir: str | Path,
    model: str,
    on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
    worker: int = 0,
) -> tuple[BestParams, dict[str, Any]]:
    """Tune one entry to its budget (resuming its study); its best params and study summary.
    `worker` offsets the sampler seed: processes sharing a study need distinct ones, or their
    random start-up trials repeat each other. `hpo.trials: 0` trains with the config's values."""
    base = config.training_spec(model)
    if config.hpo.trials == 0:
        return BestParams(model, {}, None, base), {"finished": 0}
    data = load_training_data(splits_dir, config.train.core_loss, config.train.device)
    unknown = sorted(set(config.hpo.weights) - set(data.tasks.names))
    if unknown:
        raise ConfigError(
            f"'hpo.weights' names {unknown}, not tasks of the data; tasks: {list(data.tasks.names)}"
        )
    helpers = _start_workers(config, model, splits_dir, worker)
    study = run_worker(config, model, data, worker, on_trial)
    for helper in helpers:
        helper.join()
        if helper.exitcode:
            raise RuntimeError(f"hpo worker {helper.name} for {model} exited {helper.exitcode}")
    summary = summarize(study)
    best = study.best_params if summary["complete"] else {}
    value = summary["best_value"]
    log.info("hpo %s: best %s with %s (%s)", model, value, best, summary)
    return BestParams(model, best, value, base.with_tuned(best)), summary


def _start_workers(
    config: ExperimentConfig, model: str, splits_dir: str | Path, first: int
) -> list:
    """`hpo.workers - 1` more worker processes on the study, beside the caller's (`first`)."""
    import multiprocessing as mp

    context = mp.get_context("spawn")
    helpers = [
        context.Process(
            target=_worker_main, args=(config, model, str(splits_dir), i), name=f"worker-{i}"
        )
        for i in range(first + 1, first + config.hpo.workers)
    ]
    for helper in helpers:
        helper.start()
    return helpers


def _worker_main(config: ExperimentConfig, model: str, splits_dir: str, worker: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_training_data(splits_dir, config.train.core_loss, config.train.device)
    run_worker(config, model, data, worker)
