"""The DAG's first and last tasks: `configure` deep-merges the parameters onto the compiled
defaults and checks them (for a cluster inside a pod); `finalize`, the exit handler, closes a
failed KFP run's MLflow runs FAILED, found by the KFP run id ingest tagged."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from conftest import TINY
from mlflow import MlflowClient

from htl import tracking
from htl.config import ConfigError, config_from_dict, config_to_dict, deep_merge
from htl.steps import run_configure, run_finalize


def _defaults(tmp_path: Path) -> dict:
    return config_to_dict(config_from_dict({**TINY, "workdir": str(tmp_path / "work")}))


def test_deep_merge_merges_mappings_and_replaces_the_rest() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert deep_merge(base, {"a": {"c": [3]}, "e": {"f": 1}}) == {
        "a": {"b": 1, "c": [3]},
        "d": 1,
        "e": {"f": 1},
    }
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # untouched


def test_a_partial_parameter_keeps_the_rest_of_the_defaults(tmp_path: Path) -> None:
    defaults = _defaults(tmp_path)
    merged = run_configure(defaults, {"seeds": [5]}, {"train": {"epochs": 7}})
    assert merged["seeds"] == [5] and merged["train"]["epochs"] == 7
    assert merged["train"]["batch_size"] == defaults["train"]["batch_size"]
    assert merged["models"] == defaults["models"] and merged["data"] == defaults["data"]
    # the overrides win over the config parameter
    assert run_configure(defaults, {"seeds": [5]}, {"seeds": [6]})["seeds"] == [6]


def test_configure_checks_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pipeline parameters.*did you mean 'models'"):
        run_configure(_defaults(tmp_path), {"modles": ["dnn"]}, {})
    with pytest.raises(
        ConfigError, match="pipeline parameters.*unknown model 'models\\[1\\]: dnnn'"
    ):
        run_configure(_defaults(tmp_path), {}, {"models": ["htlnet", "dnnn"]})


def test_inside_a_pod_a_store_of_one_machine_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_configure(_defaults(tmp_path), {}, {})  # on this machine SQLite is the default
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    with pytest.raises(ConfigError, match="(?s)cannot run on a cluster.*'tracking.uri' is not set"):
        run_configure(_defaults(tmp_path), {}, {})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.mlflow:5000")  # the pod's env
    monkeypatch.setenv("HTL_OPTUNA_STORAGE", "postgresql://optuna@db/optuna")
    run_configure(_defaults(tmp_path), {}, {})


def _open_run(tmp_path: Path, kfp_run_id: str) -> tuple[dict, str, str]:
    defaults = _defaults(tmp_path)
    config = config_from_dict(defaults)
    parent = tracking.start_pipeline_run(config, "p", kfp_run_id=kfp_run_id)
    with tracking.step_run(config, parent, "train/dnn/seed0"):
        step = mlflow.active_run().info.run_id
    MlflowClient().update_run(step, "RUNNING")  # a step that was killed mid-way
    return defaults, parent, step


def _status(run_id: str) -> tuple[str, str]:
    run = MlflowClient().get_run(run_id)
    return run.info.status, run.data.tags.get("htl.end_reason", "")


def test_a_failed_kfp_run_closes_its_mlflow_runs_found_by_the_kfp_run_id(tmp_path: Path) -> None:
    defaults, parent, step = _open_run(tmp_path, "kfp-run-1")
    other = tracking.start_pipeline_run(config_from_dict(defaults), "q", "kfp-run-2")
    closed = run_finalize(defaults, {}, {}, "", "kfp-run-1", "FAILED", "train exited 1")
    assert set(closed) == {parent, step}
    for run_id in (parent, step):
        status, reason = _status(run_id)
        assert status == "FAILED"
        assert reason == "the KFP run kfp-run-1 ended FAILED: train exited 1"
    assert _status(other) == ("RUNNING", "")  # another KFP run's MLflow run is left alone


def test_a_succeeded_run_is_left_as_it_is_and_a_parent_id_is_used_when_given(
    tmp_path: Path,
) -> None:
    defaults, parent, step = _open_run(tmp_path, "")
    assert run_finalize(defaults, {}, {}, parent, "kfp-3", "SUCCEEDED", "") == []
    assert _status(parent)[0] == "RUNNING"
    assert set(run_finalize(defaults, {}, {}, parent, "kfp-3", "CANCELED", "")) == {parent, step}
    assert _status(parent) == ("FAILED", "the KFP run kfp-3 ended CANCELED")


def test_an_unreadable_config_opened_no_run_so_finalize_closes_none(tmp_path: Path) -> None:
    assert run_finalize(_defaults(tmp_path), {"seeds": "x"}, {}, "", "k", "FAILED", "") == []
