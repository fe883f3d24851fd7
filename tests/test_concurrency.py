"""Two `htl run` on one fresh workdir at the same moment, and a killed run's leftovers: every
MLflow run ends with the status that tells what happened to it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import write_config
from mlflow.tracking import MlflowClient

from htl.config import load_config

SMALL = {
    "models": ["dnn"],
    "seeds": [0],
    "data": {"rows": 3000, "seed": 0},
    "hpo": {"trials": 0},
    "register": {"model": "dnn", "name": "twins"},
    "significance": {"reference": "dnn"},
}


def htl_run(config: Path, name: str) -> subprocess.Popen:
    htl = str(Path(sys.executable).with_name("htl"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [htl, "run", "--config", str(config), "--run-name", name, "--parallelism", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def pipeline_runs(config_path: Path) -> list:
    config = load_config(config_path)
    client = MlflowClient(config.tracking_uri, config.tracking_uri)
    experiment = client.get_experiment_by_name(config.tracking.experiment)
    return client.search_runs([experiment.experiment_id], "", max_results=1000)


def test_two_runs_on_one_fresh_workdir_both_finish(tmp_path: Path) -> None:
    config = write_config(tmp_path, SMALL)
    runs = [htl_run(config, name) for name in ("first", "second")]
    outputs = [r.communicate(timeout=900) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], [o[1][-3000:] for o in outputs]
    everything = pipeline_runs(config)
    parents = {r.info.run_name: r for r in everything if r.data.tags.get("htl.kind") == "pipeline"}
    assert set(parents) == {"first", "second"}
    assert all(r.info.status == "FINISHED" for r in everything), [
        (r.info.run_name, r.info.status) for r in everything
    ]
    for parent in parents.values():
        children = [
            r for r in everything if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
        ]
        assert len(children) == 8  # ingest, labels_split, hpo, train, evaluate, significance...


def test_a_killed_run_is_closed_with_its_reason_by_the_next(tmp_path: Path) -> None:
    config = write_config(tmp_path, {**SMALL, "train": {"epochs": 40, "patience": 40}})
    killed = htl_run(config, "killed")
    checkpoints = tmp_path / "work" / "checkpoints"
    deadline = time.monotonic() + 600
    while not list(checkpoints.glob("*.pt")) and time.monotonic() < deadline:
        time.sleep(0.5)  # wait until training is under way
    # SIGKILL `htl run` and its running task at once (a node lost, an OOM kill of the pod)
    subprocess.run(["pkill", "-9", "-f", str(tmp_path)], check=False)
    killed.wait(timeout=60)
    running = [r for r in pipeline_runs(config) if r.info.status == "RUNNING"]
    assert running  # the kill left the parent and its live steps RUNNING
    rerun = htl_run(config, "rerun")
    out = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, out[1][-3000:]
    after = {r.info.run_id: r for r in pipeline_runs(config)}
    assert not [r for r in after.values() if r.info.status == "RUNNING"]
    (killed_parent,) = [r for r in running if r.data.tags.get("htl.kind") == "pipeline"]
    (train,) = [r for r in running if r.data.tags.get("htl.step") == "train/dnn/seed0"]
    for run in running:
        if run.info.run_id != train.info.run_id:
            closed = after[run.info.run_id]
            assert closed.info.status == "KILLED"
            assert "ended without closing this run (killed)" in closed.data.tags["htl.end_reason"]
    # the resumed training continued its own run: one run, every epoch, under the rerun
    resumed = after[train.info.run_id]
    assert resumed.info.status == "FINISHED" and "htl.end_reason" not in resumed.data.tags
    assert resumed.data.tags["htl.earlier_parent"] == killed_parent.info.run_id
    (rerun_parent,) = [r for r in after.values() if r.info.run_name == "rerun"]
    assert resumed.data.tags["mlflow.parentRunId"] == rerun_parent.info.run_id
    assert resumed.data.metrics["resumed_from_epoch"] >= 1
    client = MlflowClient(load_config(config).tracking_uri)
    history = client.get_metric_history(train.info.run_id, "valid/watch_time/nrmse")
    assert sorted(h.step for h in history) == list(range(1, 41))
