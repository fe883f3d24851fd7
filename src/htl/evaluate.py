"""evaluate: a trained model on the test split -> predictions Parquet + metrics JSON."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from htl.artifacts import (
    FEATURES_FILE,
    METRICS_FILE,
    MODEL_SPEC_FILE,
    PREDICTIONS_FILE,
    REFERENCES_FILE,
    MetricsRecord,
    ModelSpec,
    load_model,
    split_path,
)
from htl.data.features import FeatureEncoder
from htl.metrics import evaluate_predictions, trivial_references
from htl.storage import atomic_directory, read_json
from htl.train import load_split, predict


def evaluate_model(
    model_dir: str | Path, splits_dir: str | Path, out_dir: str | Path
) -> MetricsRecord:
    """Score one (model, seed) on test; the metrics record names the model and seed."""
    spec = ModelSpec.load(Path(model_dir) / MODEL_SPEC_FILE)
    model = load_model(model_dir)
    encoder = FeatureEncoder.load(Path(splits_dir) / FEATURES_FILE)
    if encoder.vocabularies != FeatureEncoder.load(Path(model_dir) / FEATURES_FILE).vocabularies:
        raise ValueError(f"{model_dir} was trained on other encodings than {splits_dir}")
    test = load_split(splits_dir, "test", encoder, "cpu")
    preds = {k: v.float().numpy() for k, v in predict(model, test).items()}
    targets = {k: v.numpy() for k, v in test.y.items()}
    train_targets = pd.read_parquet(split_path(splits_dir, "train"), columns=list(targets))
    references = trivial_references(
        targets, {k: train_targets[k].to_numpy() for k in targets}, model.tasks
    )
    computed = Path(splits_dir) / REFERENCES_FILE  # Bayes, additive, HistGradientBoosting
    if computed.is_file():
        references.update(read_json(computed))
    record = MetricsRecord(
        model=spec.model,
        architecture=spec.architecture,
        seed=spec.seed,
        split="test",
        rows=len(test),
        tasks={"chain": list(model.tasks.chain), "core": model.tasks.core},
        metrics=evaluate_predictions(targets, preds, model.tasks),
        references=references,
        history=spec.history,
    )
    frame = pd.DataFrame(
        {**{f"y_{k}": v for k, v in targets.items()}, **{f"pred_{k}": v for k, v in preds.items()}}
    )
    with atomic_directory(out_dir) as tmp:
        frame.to_parquet(tmp / PREDICTIONS_FILE, index=False)
        record.save(tmp / METRICS_FILE)
    return record
