"""MLflow runs: one experiment, a parent run per pipeline run, a nested run per step/model/seed.

Steps run in separate processes, so runs are addressed by id: the parent is created once (by
the first step) and each step opens its own child with the `mlflow.parentRunId` tag.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Param
from mlflow.tracking import MlflowClient

from htl.config import ExperimentConfig, config_to_dict


def use_store(config: ExperimentConfig) -> str:
    """Point MLflow at the config's store and make sure the experiment exists; its id."""
    Path(config.workdir).mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(config.tracking_uri)
    mlflow.set_registry_uri(config.tracking_uri)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(config.tracking.experiment)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if config.tracking_uri.startswith("sqlite:"):
        # SQLite has no artifact proxy: pin an explicit root, never ./mlruns under the cwd.
        location = Path(config.artifact_root).resolve().as_uri()
    return client.create_experiment(config.tracking.experiment, artifact_location=location)


def start_pipeline_run(config: ExperimentConfig, run_name: str | None = None) -> str:
    """Create the parent run of one pipeline run and log the whole config; its id."""
    experiment_id = use_store(config)
    client = MlflowClient()
    run = client.create_run(
        experiment_id, run_name=run_name or config.name, tags={"htl.kind": "pipeline"}
    )
    params = [Param(k, str(v)) for k, v in _flatten(config_to_dict(config)).items()]
    client.log_batch(run.info.run_id, params=params)
    return run.info.run_id


def end_pipeline_run(config: ExperimentConfig, run_id: str, status: str = "FINISHED") -> None:
    use_store(config)
    MlflowClient().set_terminated(run_id, status)


def fail_pipeline_run(config: ExperimentConfig, run_name: str) -> None:
    """Mark the still-running pipeline run(s) called `run_name` as FAILED."""
    experiment_id = use_store(config)
    client = MlflowClient()
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.mlflow.runName = '{run_name}' and tags.`htl.kind` = 'pipeline'",
    )
    for run in runs:
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, "FAILED")


@contextmanager
def step_run(
    config: ExperimentConfig,
    parent_run_id: str | None,
    name: str,
    tags: dict[str, str] | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """A child run of the pipeline run (or a top-level run when there is none) for one step."""
    experiment_id = use_store(config)
    all_tags = {"htl.step": name, **(tags or {})}
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    run = MlflowClient().create_run(experiment_id, run_name=name, tags=all_tags)
    with mlflow.start_run(run_id=run.info.run_id) as active:
        yield active


def find_step_run(config: ExperimentConfig, parent_run_id: str | None, step: str) -> str | None:
    """The id of the latest run of `step` under the pipeline run, if there is one."""
    if not parent_run_id:
        return None
    experiment_id = use_store(config)
    runs = MlflowClient().search_runs(
        [experiment_id],
        filter_string=(
            f"tags.mlflow.parentRunId = '{parent_run_id}' and tags.`htl.step` = '{step}'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Log the finite values; an undefined metric (NaN) is left out rather than charted."""
    finite = {
        k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and math.isfinite(v)
    }
    if finite:
        mlflow.log_metrics(finite, step=step)


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    """Log a file, or a directory's files, to the active run."""
    path = Path(path)
    if path.is_dir():
        mlflow.log_artifacts(str(path), artifact_path=artifact_path)
    else:
        mlflow.log_artifact(str(path), artifact_path=artifact_path)


def log_params(params: dict[str, Any]) -> None:
    mlflow.log_params(_flatten(params))


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))  # an empty mapping logs nothing
        elif isinstance(value, list | tuple):
            out[name] = json.dumps(value)
        else:
            out[name] = value
    return out
