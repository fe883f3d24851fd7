"""A diverging training: one clear failure naming model, seed, epoch and params, or, under
`train.on_divergence: report`, a report that goes on without it and says so."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from conftest import write_config

from htl.artifacts import BestParams, best_params_path
from htl.config import load_config
from htl.data.prepare import prepare_splits
from htl.data.sources import ingest
from htl.steps import run_evaluate, run_significance, run_train

WILD_LR = 1e6  # nan after one epoch on this data


def prepared(tmp_path: Path, on_divergence: str) -> tuple[Path, object]:
    overrides = {
        "models": ["dnn", "shared_bottom"],
        "seeds": [0, 1],
        "train": {"epochs": 1, "batch_size": 256, "on_divergence": on_divergence},
        "register": {"model": "dnn"},
        "significance": {"reference": "dnn"},
    }
    path = write_config(tmp_path, overrides)
    config = load_config(path)
    ingest(config.data, tmp_path / "events")
    prepare_splits(tmp_path / "events", tmp_path / "splits", config.data)
    for model, lr in (("dnn", WILD_LR), ("shared_bottom", 0.005)):  # as if HPO chose them
        spec = replace(config.training_spec(model), lr=lr)
        BestParams(model, {"lr": lr}, None, spec).save(best_params_path(tmp_path / "params", model))
    return path, config


def test_a_diverging_training_fails_with_model_seed_epoch_and_params(tmp_path: Path) -> None:
    path, _ = prepared(tmp_path, "fail")
    command = [sys.executable, "-m", "htl", "train", "--config", str(path), "--splits"]
    command += [str(tmp_path / "splits"), "--params", str(tmp_path / "params"), "--model"]
    proc = subprocess.run(
        [*command, "dnn", "--seed", "1", "--output", str(tmp_path / "model")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("htl: error:")]
    assert "dnn seed 1 diverged: validation watch_time/nrmse is nan at epoch 1" in line
    assert f"'lr': {WILD_LR}" in line and "'batch_size': 256" in line
    assert not (tmp_path / "model").exists()
    assert not list((tmp_path / "work" / "checkpoints").glob("*.pt"))  # a rerun would diverge


def test_report_mode_goes_on_and_lists_the_diverged_runs(tmp_path: Path) -> None:
    _, config = prepared(tmp_path, "report")
    metrics = []
    for model in ("dnn", "shared_bottom"):
        for seed in (0, 1):
            out = tmp_path / f"{model}-{seed}"
            result = run_train(config, tmp_path / "splits", tmp_path / "params", model, seed,
                               out / "model", None)  # fmt: skip
            assert ("diverged" in result) == (model == "dnn")
            run_evaluate(config, out / "model", tmp_path / "splits", out / "eval", None)
            metrics.append(out / "eval")
    report = run_significance(config, metrics, tmp_path / "report", None)
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert results["models"] == ["shared_bottom"]  # the reference kept no seed
    assert [(d["model"], d["seed"]) for d in results["diverged"]] == [("dnn", 0), ("dnn", 1)]
    markdown = report.read_text()
    assert "## Diverged trainings, not in the table or the tests" in markdown
    assert (
        "| dnn | 0 | dnn seed 0 diverged: validation watch_time/nrmse is nan at epoch 1" in markdown
    )
