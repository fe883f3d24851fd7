"""MLflow runs: one experiment, a parent run per pipeline run, a nested run per step/model/seed.

Steps run in separate processes, so runs are addressed by id: the parent is created once (by
the first step) and each step opens its own child with the `mlflow.parentRunId` tag.
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from filelock import FileLock
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from htl.config import ExperimentConfig, config_to_dict


def use_store(config: ExperimentConfig) -> str:
    """Point MLflow at the config's store and make sure the experiment exists; its id.

    A SQLite store is created (schema migrations) and its experiment made under a file lock,
    so processes that start at the same moment on a fresh workdir do not race."""
    Path(config.workdir).mkdir(parents=True, exist_ok=True)
    point_mlflow(config.tracking_uri)
    if not config.tracking_uri.startswith("sqlite:"):
        return _experiment(config)
    with FileLock(str(Path(config.workdir) / ".mlflow.lock")):
        return _experiment(config)


def point_mlflow(uri: str) -> None:
    """Tracking and registry at `uri`. MLflow also writes MLFLOW_TRACKING_URI (and
    MLFLOW_REGISTRY_URI); the user's values are put back, since a later config that leaves
    tracking.uri unset must see those, not the previous config's store."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _experiment(config: ExperimentConfig) -> str:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(config.tracking.experiment)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if config.tracking_uri.startswith("sqlite:"):
        # SQLite has no artifact proxy: pin an explicit root, never ./mlruns under the cwd.
        location = Path(config.artifact_root).resolve().as_uri()
    return client.create_experiment(config.tracking.experiment, artifact_location=location)


def start_pipeline_run(
    config: ExperimentConfig, run_name: str | None = None, kfp_run_id: str = ""
) -> str:
    """Create the parent run of one pipeline run and log the whole config; its id. The host
    and process that own it are tagged, so a later run can tell a killed one from a live one,
    and the KFP run, so the DAG's exit handler finds it."""
    experiment_id = use_store(config)
    client = MlflowClient()
    tags = {"htl.kind": "pipeline", "htl.host": socket.gethostname(), "htl.pid": str(os.getpid())}
    if kfp_run_id:
        tags[KFP_RUN_TAG] = kfp_run_id
    run = client.create_run(experiment_id, run_name=run_name or config.name, tags=tags)
    params = [Param(k, str(v)) for k, v in _flatten(config_to_dict(config)).items()]
    client.log_batch(run.info.run_id, params=params)
    return run.info.run_id


def end_pipeline_run(config: ExperimentConfig, run_id: str, status: str = "FINISHED") -> None:
    use_store(config)
    MlflowClient().set_terminated(run_id, status)


def end_run(config: ExperimentConfig, run_id: str, status: str, reason: str) -> bool:
    """Close a run that is still RUNNING with `status` and say why (tag `htl.end_reason`);
    whether it was still RUNNING."""
    use_store(config)
    client = MlflowClient()
    if client.get_run(run_id).info.status != "RUNNING":
        return False
    client.set_tag(run_id, "htl.end_reason", reason[:5000])
    client.set_terminated(run_id, status)
    return True


KFP_RUN_TAG = "htl.kfp_run_id"


def close_pipeline_run(
    config: ExperimentConfig, parent_run_id: str, kfp_run_id: str, state: str, error: str
) -> list[str]:
    """The DAG's exit handler: when the KFP run did not succeed, mark its pipeline run (by id,
    or found by its KFP run tag) and every step run still RUNNING under it FAILED, with the
    KFP state and error as the reason. Their ids."""
    if state == "SUCCEEDED":
        return []
    experiment_id = use_store(config)
    client = MlflowClient()
    parents = (
        [parent_run_id]
        if parent_run_id
        else [
            run.info.run_id
            for run in client.search_runs(
                [experiment_id], filter_string=f"tags.`{KFP_RUN_TAG}` = '{kfp_run_id}'"
            )
        ]
    )
    reason = f"the KFP run {kfp_run_id} ended {state}: {error}".strip().rstrip(":")
    return [
        r for p in parents for r in _close_with_steps(config, experiment_id, p, "FAILED", reason)
    ]


def _close_with_steps(
    config: ExperimentConfig, experiment_id: str, parent: str, status: str, reason: str
) -> list[str]:
    """End a pipeline run and its step runs that are still RUNNING; their ids."""
    steps = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.mlflow.parentRunId = '{parent}'",
    )
    runs = [*(s.info.run_id for s in steps), parent]
    return [run_id for run_id in runs if end_run(config, run_id, status, reason)]


def reconcile_stale_runs(config: ExperimentConfig) -> list[str]:
    """Close the pipeline runs a killed process left RUNNING on this host (KILLED, with the
    reason), and their RUNNING step runs; live processes' runs are left alone. Their ids."""
    experiment_id = use_store(config)
    client = MlflowClient()
    host = socket.gethostname()
    stale = [
        run
        for run in client.search_runs(
            [experiment_id],
            filter_string=f"attributes.status = 'RUNNING' and tags.`htl.host` = '{host}'",
        )
        if not _alive(int(run.data.tags.get("htl.pid", "0")))
    ]
    closed = []
    for parent in stale:
        reason = (
            f"process {parent.data.tags.get('htl.pid')} on {host} ended without closing this run "
            "(killed); closed by the next run on this workdir"
        )
        closed += _close_with_steps(config, experiment_id, parent.info.run_id, "KILLED", reason)
    return closed


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


@contextmanager
def step_run(
    config: ExperimentConfig,
    parent_run_id: str | None,
    name: str,
    tags: dict[str, str] | None = None,
    resume: str | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """A child run of the pipeline run (or a top-level run when there is none) for one step;
    `resume` reopens a killed attempt's run (its history continues, under this pipeline run)."""
    experiment_id = use_store(config)
    client = MlflowClient()
    all_tags = {"htl.step": name, **(tags or {})}
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    run_id = _reopen(client, resume, all_tags) if resume else None
    if run_id is None:
        run_id = client.create_run(experiment_id, run_name=name, tags=all_tags).info.run_id
    try:
        with mlflow.start_run(run_id=run_id) as active:  # FAILED on an exception
            yield active
    except BaseException as exc:
        if parent_run_id:  # a failed step fails its pipeline run, in the DAG or alone
            end_run(config, parent_run_id, "FAILED", f"step {name} failed: {exc!r}")
        raise


def log_trial(experiment_id: str, parent_run_id: str, name: str, trial: Any) -> None:
    """One finished Optuna trial as a run nested under its study's run: its params, value,
    state (complete, pruned, fail), epochs run and the objective per epoch."""
    client = MlflowClient()
    tags = {
        "mlflow.parentRunId": parent_run_id,
        "htl.trial_state": trial.state.name.lower(),
        **{f"htl.{k.removeprefix('htl.')}": str(v)[:5000] for k, v in trial.user_attrs.items()},
    }
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    params = [Param(k, str(v)) for k, v in trial.params.items()]
    metrics = [Metric("objective", v, 0, step) for step, v in trial.intermediate_values.items()]
    if trial.value is not None and math.isfinite(trial.value):
        metrics.append(Metric("value", trial.value, 0, 0))
    client.log_batch(run.info.run_id, metrics=metrics, params=params)
    client.set_terminated(run.info.run_id, "FINISHED" if trial.state.name != "FAIL" else "FAILED")


def _reopen(client: MlflowClient, run_id: str, tags: dict[str, str]) -> str | None:
    """Re-tag a killed attempt's run for this attempt; None when it no longer exists."""
    try:
        run = client.get_run(run_id)
    except MlflowException:
        return None
    if "mlflow.parentRunId" in run.data.tags and "mlflow.parentRunId" in tags:
        tags = {**tags, "htl.earlier_parent": run.data.tags["mlflow.parentRunId"]}
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    if "htl.end_reason" in run.data.tags:
        client.delete_tag(run_id, "htl.end_reason")
    return run_id


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


def last_step(run_id: str, key: str) -> int:
    """The highest step at which `key` was logged in a run (0 when never)."""
    history = MlflowClient().get_metric_history(run_id, key)
    return max((m.step for m in history), default=0)


def set_tags(tags: dict[str, str]) -> None:
    mlflow.set_tags(tags)


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
