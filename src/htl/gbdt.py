"""The non-deep reference every report shows: scikit-learn's HistGradientBoosting, one model
per task (a classifier per binary task, a regressor for the core), fit on the train split,
its iteration count and grid point chosen on the validation split, scored on the test split
exactly like the deep models (`evaluate_predictions`).

Features are the split's encoded fields: a vocabulary field is a native categorical feature
when it has at most 255 codes (HistGradientBoosting's limit), else its code as a number; a
bucketized numeric field is its bucket index (ordered); a dense numeric field its standardised
value. Training rows are capped at `max_rows` (a seeded sample) so the reference stays cheap
on production-size data.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning

from htl.artifacts import FEATURES_FILE, split_path
from htl.data.features import VALUE_SUFFIX, FeatureEncoder
from htl.metrics import evaluate_predictions, logloss
from htl.tasks import TaskSpec

#: The grid, small on purpose: two learning rates by two tree sizes, up to MAX_ITER rounds
#: (early stopping on the validation split picks the count, to the nearest CHUNK).
GRID = [
    {"learning_rate": lr, "max_leaf_nodes": leaves} for lr in (0.05, 0.1) for leaves in (15, 63)
]
MAX_ITER = 300
CHUNK, PATIENCE = 10, 3  # trees added per validation check; checks without gain to stop
NATIVE_CATEGORIES = 255


def features(frame: pd.DataFrame, encoder: FeatureEncoder) -> pd.DataFrame:
    """The model's view of a split: codes, bucket indices and dense values."""
    out = frame[encoder.fields].astype(np.float32)
    for name in encoder.dense:
        out[name] = frame[f"{name}{VALUE_SUFFIX}"].to_numpy(dtype=np.float32)
    return out


def categorical_mask(encoder: FeatureEncoder) -> list[bool]:
    return [
        name in encoder.vocabularies and card <= NATIVE_CATEGORIES
        for name, card in zip(encoder.fields, encoder.cardinalities, strict=True)
    ]


def gbdt_predictions(
    splits_dir: str | Path, max_rows: int = 1_000_000, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], TaskSpec, dict[str, dict]]:
    """Test predictions per task (probabilities, the raw core), the test targets, the task
    spec and each task's chosen grid point and iteration count."""
    encoder = FeatureEncoder.load(Path(splits_dir) / FEATURES_FILE)
    tasks = TaskSpec(encoder.chain, encoder.core, "mse")
    frames = {s: pd.read_parquet(split_path(splits_dir, s)) for s in ("train", "valid", "test")}
    if len(frames["train"]) > max_rows:
        frames["train"] = frames["train"].sample(max_rows, random_state=seed)
    x = {s: features(f, encoder) for s, f in frames.items()}
    mask = categorical_mask(encoder)
    preds: dict[str, np.ndarray] = {}
    chosen: dict[str, dict] = {}
    for task in tasks.names:
        binary = task != tasks.core
        y = {s: f[task].to_numpy(dtype=np.float64) for s, f in frames.items()}
        best = (np.inf, None, None, 0)
        for point in GRID:
            loss, model, iterations = _early_stopped(x, y, binary, point, mask, seed)
            if loss < best[0]:
                best = (loss, point, model, iterations)
        _, point, model, iterations = best
        stages = (
            (p[:, 1] for p in model.staged_predict_proba(x["test"]))
            if binary
            else model.staged_predict(x["test"])
        )
        preds[task] = next(itertools.islice(stages, iterations - 1, None))
        chosen[task] = {**point, "iterations": iterations}
    targets = {t: frames["test"][t].to_numpy(dtype=np.float32) for t in tasks.names}
    return preds, targets, tasks, chosen


def gbdt_reference(
    splits_dir: str | Path, max_rows: int = 1_000_000, seed: int = 0
) -> dict[str, float]:
    """The reference's test metrics, `<task>/<metric>` as for every model."""
    preds, targets, tasks, _ = gbdt_predictions(splits_dir, max_rows, seed)
    return evaluate_predictions(targets, preds, tasks)


def _early_stopped(x: dict, y: dict, binary: bool, point: dict, mask: list[bool], seed: int):
    """Add trees CHUNK at a time (warm start) while the validation loss improves, stopping
    after PATIENCE chunks without; (best loss, the model, its best iteration count)."""
    cls = HistGradientBoostingClassifier if binary else HistGradientBoostingRegressor
    model = cls(
        max_iter=0,
        warm_start=True,
        early_stopping=False,  # stopped on our chronological validation split instead
        categorical_features=mask if any(mask) else None,
        random_state=seed,
        **point,
    )
    target = y["train"].astype(int) if binary else y["train"]
    best, best_iter, waited = np.inf, 0, 0
    while model.max_iter < MAX_ITER and waited < PATIENCE:
        model.set_params(max_iter=model.max_iter + CHUNK)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x["train"], target)
        p = model.predict_proba(x["valid"])[:, 1] if binary else model.predict(x["valid"])
        loss = logloss(y["valid"], p) if binary else float(np.mean((y["valid"] - p) ** 2))
        if loss < best:
            best, best_iter, waited = loss, model.n_iter_, 0
        else:
            waited += 1
    return best, model, best_iter
