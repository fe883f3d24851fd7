"""The HistGradientBoosting reference: scored exactly like the models, better than the
constant references on data with signal, stopped on the validation split, and in the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_config

from htl.config import load_config
from htl.data.prepare import prepare_splits
from htl.data.sources import ingest
from htl.gbdt import MAX_ITER, gbdt_predictions, gbdt_reference
from htl.metrics import evaluate_predictions, trivial_references


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gbdt")
    data = {"profile": "product", "rows": 6000, "seed": 3}
    config = load_config(write_config(root, {"data": data}))
    ingest(config.data, root / "events")
    prepare_splits(root / "events", root / "splits", config.data)
    return root / "splits"


def test_scored_exactly_like_the_models_and_better_than_constants(splits: Path) -> None:
    preds, targets, tasks, chosen = gbdt_predictions(splits)
    reference = gbdt_reference(splits)
    assert reference == evaluate_predictions(targets, preds, tasks)  # deterministic, same scorer
    constants = trivial_references(targets, targets, tasks)["train_mean"]
    for task in tasks.chain:
        assert reference[f"{task}/auc"] > 0.55 and constants[f"{task}/auc"] == 0.5
    # the core ranks rows; on 6k rows of a heavy-tailed amount its NRMSE is the mean's
    assert reference[f"{tasks.core}/spearman"] > 0.1
    assert reference[f"{tasks.core}/nrmse"] < 1.01 * constants[f"{tasks.core}/nrmse"]
    for task, point in chosen.items():  # the count came from early stopping, within bounds
        assert 1 <= point["iterations"] <= MAX_ITER, task


def test_fewer_training_rows_give_another_reference(splits: Path) -> None:
    assert gbdt_reference(splits, max_rows=500) != gbdt_reference(splits)


def test_labels_split_writes_it_and_evaluate_carries_it(tmp_path: Path) -> None:
    from htl.steps import run_labels_split

    config = load_config(write_config(tmp_path, {"data": {"rows": 3000, "seed": 0}}))
    ingest(config.data, tmp_path / "events")
    run_labels_split(config, tmp_path / "events", tmp_path / "splits", None)
    written = json.loads((tmp_path / "splits" / "references.json").read_text())
    assert written["gbdt"] == gbdt_reference(tmp_path / "splits", seed=config.data.seed)
    assert set(written) == {"bayes", "additive", "gbdt"}  # the synthetic source's ceiling too
    off = load_config(write_config(tmp_path, {"data": {"rows": 3000, "gbdt_rows": 0}}))
    run_labels_split(off, tmp_path / "events", tmp_path / "splits0", None)
    written = json.loads((tmp_path / "splits0" / "references.json").read_text())
    assert set(written) == {"bayes", "additive"}
