"""evaluate: a trained model on the test split -> predictions Parquet + metrics JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from htl.data.features import FeatureEncoder
from htl.data.prepare import FEATURES_FILE, split_path
from htl.metrics import evaluate_predictions, trivial_references
from htl.storage import atomic_directory, read_json, write_json
from htl.train import MODEL_SPEC_FILE, load_model, load_split, predict

PREDICTIONS_FILE = "predictions.parquet"
METRICS_FILE = "metrics.json"


def evaluate_model(
    model_dir: str | Path, splits_dir: str | Path, out_dir: str | Path
) -> dict[str, Any]:
    """Score one (model, seed) on test; the metrics record names the model and seed."""
    spec = read_json(Path(model_dir) / MODEL_SPEC_FILE)
    model, _ = load_model(model_dir)
    encoder = FeatureEncoder.load(Path(splits_dir) / FEATURES_FILE)
    if encoder.vocabularies != FeatureEncoder.load(Path(model_dir) / FEATURES_FILE).vocabularies:
        raise ValueError(f"{model_dir} was trained on other encodings than {splits_dir}")
    test = load_split(splits_dir, "test", encoder, "cpu")
    preds = {k: v.float().numpy() for k, v in predict(model, test).items()}
    targets = {k: v.numpy() for k, v in test.y.items()}
    metrics = evaluate_predictions(targets, preds, model.tasks)
    train_targets = pd.read_parquet(split_path(splits_dir, "train"), columns=list(targets))
    record = {
        "model": spec["model"],
        "architecture": spec.get("architecture", spec["model"]),
        "seed": spec["seed"],
        "split": "test",
        "rows": len(test),
        "tasks": {"chain": list(model.tasks.chain), "core": model.tasks.core},
        "metrics": metrics,
        "references": trivial_references(
            targets, {k: train_targets[k].to_numpy() for k in targets}, model.tasks
        ),
        "history": spec.get("history", []),
    }
    frame = pd.DataFrame(
        {**{f"y_{k}": v for k, v in targets.items()}, **{f"pred_{k}": v for k, v in preds.items()}}
    )
    with atomic_directory(out_dir) as tmp:
        frame.to_parquet(tmp / PREDICTIONS_FILE, index=False)
        write_json(tmp / METRICS_FILE, record)
    return record
