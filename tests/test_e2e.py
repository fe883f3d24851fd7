"""The whole DAG through kfp.local on a tiny dataset, run as a user runs it, then every artifact."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from htl.config import load_config
from htl.metrics import higher_is_better

HTL = str(Path(sys.executable).with_name("htl"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from conftest import write_config

    directory = tmp_path_factory.mktemp("e2e")
    variant = {"htlnet_wo_optimization": {"model": "htlnet", "gradient": "none"}}
    config_path = write_config(
        directory,
        {"models": ["htlnet", "shared_bottom", "htlnet_wo_optimization"], "model_options": variant},
    )
    proc = subprocess.run(
        [HTL, "run", "--config", str(config_path), "--run-name", "e2e-run"],
        capture_output=True,
        text=True,
        cwd=directory,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    config = load_config(config_path)
    runs = list((Path(config.workdir) / "pipeline_root").glob("htl-training-*"))
    assert len(runs) == 1
    return {"config": config, "root": runs[0], "stderr": proc.stderr}


def one(root: Path, pattern: str) -> list[Path]:
    return sorted(root.glob(pattern))


def test_cli_says_where_the_report_and_ui_are(finished_run: dict) -> None:
    stderr = finished_run["stderr"]
    summary = stderr[stderr.rindex("htl: pipeline run 'e2e-run' finished.") :]
    assert "make mlflow-ui" in summary
    (line,) = [line for line in summary.splitlines() if line.strip().startswith("report:")]
    report = Path(line.split("report:")[1].strip())
    assert report.read_text().startswith("# tiny: test results")


def test_ingest_and_splits(finished_run: dict) -> None:
    root, config = finished_run["root"], finished_run["config"]
    events = pd.read_parquet(root / "ingest" / "events" / "events.parquet")
    assert len(events) == config.data.rows
    schema = json.loads((root / "ingest" / "events" / "schema.json").read_text())
    assert schema["chain"] == ["click", "long_view"] and schema["core"] == "watch_time"
    splits = root / "labels-split" / "splits"
    sizes = {s: len(pd.read_parquet(splits / f"{s}.parquet")) for s in ("train", "valid", "test")}
    assert sizes == {"train": 2400, "valid": 300, "test": 300}
    features = json.loads((splits / "features.json").read_text())
    train = pd.read_parquet(splits / "train.parquet")
    values = [f"{name}__value" for name in features["dense"]]  # the dense duration's values
    assert values and list(train.columns) == [
        *features["fields"],
        *values,
        "click",
        "long_view",
        "watch_time",
    ]
    for field, card in zip(features["fields"], features["cardinalities"], strict=False):
        assert train[field].min() >= 0 and train[field].max() < card
    assert (splits / "data_card.md").is_file()


def test_hpo_params(finished_run: dict) -> None:
    params = finished_run["root"] / "plan-training" / "best_params"
    config = finished_run["config"]
    for model in config.models:
        best = json.loads((params / f"{model}.json").read_text())
        assert best["model"] == model and best["params"]["epochs"] == 2
        assert best["best_valid_nrmse"] > 0 and best["tuned"]
        study = json.loads((params / f"{model}.study.json").read_text())
        assert study["finished"] == config.hpo.trials and study["best_value"] > 0
    # one hpo task per model, and the report lists every study
    assert len(one(finished_run["root"], "for-loop-*/hpo/best_params/*.study.json")) == 3
    report = one(finished_run["root"], "significance/report/report.md")[0].read_text()
    assert "## Hyperparameter search" in report


def test_models_and_metrics_per_job(finished_run: dict) -> None:
    root, config = finished_run["root"], finished_run["config"]
    specs = [json.loads(p.read_text()) for p in one(root, "for-loop-*/train/model/model.json")]
    assert sorted((s["model"], s["seed"]) for s in specs) == sorted(
        (m, s) for m in config.models for s in config.seeds
    )
    assert len(one(root, "for-loop-*/train/model/model.pt")) == 6
    variant = next(s for s in specs if s["model"] == "htlnet_wo_optimization")
    assert variant["architecture"] == "htlnet" and variant["options"]["gradient"] == "none"
    assert [row["epoch"] for row in variant["history"]] == [1.0, 2.0]
    records = [
        json.loads(p.read_text()) for p in one(root, "for-loop-*/evaluate/results/metrics.json")
    ]
    assert len(records) == 6
    for record in records:
        m = record["metrics"]
        assert record["rows"] == 300
        for task in ("click", "long_view"):
            assert 0 <= m[f"{task}/auc"] <= 1 and 0 < m[f"{task}/logloss"] < 5
        assert 0 < m["watch_time/nrmse"] < 5 and 0 < m["watch_time/nmae"] < 5
        assert -1 <= m["watch_time/spearman"] <= 1 and -1 <= m["watch_time/gini"] <= 1
    predictions = pd.read_parquet(one(root, "for-loop-*/evaluate/results/predictions.parquet")[0])
    assert len(predictions) == 300 and predictions["pred_click"].between(0, 1).all()


def test_report(finished_run: dict) -> None:
    report_dir = finished_run["root"] / "significance" / "report"
    results = json.loads((report_dir / "results.json").read_text())
    assert set(results["summary"]) == {"htlnet", "shared_bottom", "htlnet_wo_optimization"}
    assert all(v["n"] == 2 for s in results["summary"].values() for v in s.values())
    metrics = {c["metric"] for c in results["comparisons"]}
    assert {"click/auc", "watch_time/nrmse", "watch_time/gini"} <= metrics
    assert all(higher_is_better(m) is not None for m in metrics)
    assert all(
        c["baseline"] != "htlnet" and (c["p"] is None or 0 <= c["p"] <= 1)
        for c in results["comparisons"]
    )
    markdown = (finished_run["root"] / "significance" / "report_markdown").read_text()
    assert "| click | AUC↑ |" in markdown and "| watch_time | NRMSE↓ |" in markdown
    # Table 2 order: baselines in config order, the reference last, then the references
    header = (
        "| task | metric | shared_bottom | htlnet_wo_optimization | htlnet | Bayes ceiling | "
        "additive only | HistGradientBoosting | predict train mean |"
    )
    assert header in markdown
    assert results["references"]["gbdt"]["click/auc"] > 0.5  # fit in labels_split
    assert results["references"]["bayes"]["click/auc"] > 0.5  # the generator's ceiling
    assert (report_dir / "results.csv").read_text().startswith("task,metric,direction,model")
    assert "<table>" in (report_dir / "report.html").read_text()
    assert results["figures"] == ["metrics.png", "grad_norms.png", "epoch_time.png"]
    # every run finished, so no checkpoint is left behind
    assert not list(Path(finished_run["config"].checkpoint_dir).glob("*.pt"))


def test_mlflow_runs_and_registry(finished_run: dict) -> None:
    config = finished_run["config"]
    mlflow.set_tracking_uri(config.tracking_uri)
    mlflow.set_registry_uri(config.tracking_uri)  # other tests' steps set theirs in-process
    client = MlflowClient(config.tracking_uri, config.tracking_uri)
    experiment = client.get_experiment_by_name("tiny")
    assert experiment.artifact_location.startswith("file://")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.mlflow.runName = 'e2e-run'")
    assert parent.info.status == "FINISHED" and parent.data.params["data.rows"] == "3000"
    children = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    names = sorted(r.info.run_name for r in children)
    expected = ["evaluate/" + f"{m}/seed{s}" for m in config.models for s in config.seeds]
    expected += ["train/" + f"{m}/seed{s}" for m in config.models for s in config.seeds]
    steps = ["ingest", "labels_split", "significance", "register", "promote"]
    steps += [f"hpo/{m}" for m in config.models]  # each with a nested run per trial
    assert names == sorted([*steps, *expected])
    for study in (r for r in children if r.info.run_name.startswith("hpo/")):
        trials = client.search_runs(
            [experiment.experiment_id], f"tags.mlflow.parentRunId = '{study.info.run_id}'"
        )
        assert len(trials) == config.hpo.trials
        assert all(t.data.tags["htl.trial_state"] in ("complete", "pruned") for t in trials)
    train_run = next(r for r in children if r.info.run_name == "train/htlnet/seed0")
    history = client.get_metric_history(train_run.info.run_id, "valid/watch_time/nrmse")
    assert 1 <= len(history) <= 2 and all(math.isfinite(h.value) for h in history)

    version = client.get_model_version_by_alias("tiny-model", "challenger")
    assert int(version.version) == 1 and version.tags["model"] == "htlnet"
    model = mlflow.pyfunc.load_model("models:/tiny-model@challenger")
    events = pd.read_parquet(finished_run["root"] / "ingest" / "events" / "events.parquet").head(4)
    out = model.predict(events.drop(columns=["click", "long_view", "watch_time", "time_ms"]))
    assert list(out.columns) == ["click", "long_view", "watch_time"] and len(out) == 4
    assert out["click"].between(0, 1).all()
    champion = client.get_model_version_by_alias("tiny-model", "champion")  # the first model
    assert int(champion.version) == 1 and champion.tags["validation_status"] == "blessed"
    assert champion.tags["lineage.kfp_run_id"] not in ("", "none")  # the DAG's run id
    assert champion.tags["lineage.training_run"] != "unknown"
    blessing = json.loads(
        one(finished_run["root"], "promote/blessing/blessing.json")[0].read_text()
    )
    assert blessing["blessed"] and blessing["challenger"] == 1


def test_bad_config_stops_before_any_step(tmp_path: Path) -> None:
    from conftest import write_config

    config_path = write_config(tmp_path, {"models": ["htlnet", "mmoe_typo"]})
    proc = subprocess.run(
        [HTL, "run", "--config", str(config_path)], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown model 'models[1]: mmoe_typo'" in lines[0]
    assert str(config_path) in lines[0]
    assert not (tmp_path / "work").exists()  # nothing ran, nothing written
    missing = subprocess.run(
        [HTL, "run", "--config", "nope.yaml"], capture_output=True, text=True, cwd=tmp_path
    )
    assert missing.returncode == 2 and "nope.yaml: config file not found" in missing.stderr
    typo = write_config(tmp_path, {"train": {"epochz": 3}}, name="typo.yaml")
    proc = subprocess.run(
        [HTL, "run", "--config", str(typo)], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2 and "did you mean 'train.epochs'" in proc.stderr
    assert yaml.safe_load(typo.read_text())["train"] == {"epochz": 3}


def test_a_failing_step_ends_in_one_line_naming_the_task(tmp_path: Path) -> None:
    from conftest import write_config

    config_path = write_config(
        tmp_path, {"data": {"rows": 3000, "split": [0.9999, 0.00005, 0.00005]}}
    )
    proc = subprocess.run(
        [HTL, "run", "--config", str(config_path), "--run-name", "broken"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("htl: error: Pipeline 'htl-training' finished with status FAILURE")
    assert "'labels-split'" in last
    assert "split is empty" in proc.stderr  # the step's own message, in the task log
    assert "Traceback (most recent call last)" not in proc.stderr.split("split is empty")[-1]
    config = load_config(config_path)
    client = MlflowClient(config.tracking_uri)
    experiment = client.get_experiment_by_name("tiny")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.mlflow.runName = 'broken'")
    assert parent.info.status == "FAILED"
