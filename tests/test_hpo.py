"""HPO that holds its budget: a SIGKILLed worker's trial is failed and retried, two workers on
one study meet the budget exactly, every study starts from the entry's defaults, a finished
study trains nothing on a rerun, and one set of parameters scores the same in two processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import write_config
from optuna.trial import TrialState

from htl.config import load_config
from htl.data.prepare import prepare_splits
from htl.data.sources import ingest
from htl.hpo import default_params, search_space, study_name

HPO = {"trials": 5, "epochs": 3, "startup_trials": 3, "heartbeat_s": 1, "pruner": "none"}


def _setup(tmp_path: Path, hpo: dict | None = None, models: list[str] | None = None) -> Path:
    path = write_config(
        tmp_path,
        {"models": models or ["dnn"], "seeds": [0], "hpo": {**HPO, **(hpo or {})},
         "significance": {"reference": (models or ["dnn"])[0]}, "register": {"model": "dnn"}},
    )  # fmt: skip
    config = load_config(path)
    ingest(config.data, tmp_path / "events")
    prepare_splits(tmp_path / "events", tmp_path / "splits", config.data)
    return path


def _hpo(path: Path, out: str, model: str = "dnn", worker: int = 0) -> subprocess.Popen:
    command = [sys.executable, "-m", "htl", "hpo", "--config", str(path), "--model", model]
    command += ["--worker", str(worker)]
    command += ["--splits", str(path.parent / "splits"), "--output", str(path.parent / out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _trials(path: Path, model: str = "dnn") -> list[optuna.trial.FrozenTrial]:
    config = load_config(path)
    study = optuna.load_study(study_name=study_name(config, model), storage=config.optuna_storage)
    return study.get_trials()


def _finished(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def test_a_killed_worker_is_failed_retried_and_the_budget_met_exactly(tmp_path: Path) -> None:
    path = _setup(tmp_path)
    worker = _hpo(path, "killed")
    deadline = time.monotonic() + 300
    killed_at = None
    while time.monotonic() < deadline and worker.poll() is None:
        try:
            running = [t for t in _trials(path) if t.state == TrialState.RUNNING and t.number >= 1]
        except (KeyError, optuna.exceptions.StorageInternalError, Exception):  # not created yet
            running = []
        if running:
            killed_at = running[0].number
            worker.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    worker.wait(timeout=60)
    assert killed_at is not None, worker.stdout.read().decode()[-3000:]
    assert any(t.state == TrialState.RUNNING for t in _trials(path))  # left behind
    rerun = _hpo(path, "params")
    out = rerun.communicate(timeout=600)[0].decode()
    assert rerun.returncode == 0, out[-3000:]
    trials = _trials(path)
    assert len(_finished(trials)) == HPO["trials"]
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    killed = trials[killed_at]
    assert killed.state == TrialState.FAIL
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == killed_at]
    # the retry keeps every value the killed trial had drawn (a kill between two suggestions
    # leaves some undrawn; the retry draws those)
    assert len(retried) == 1 and killed.params
    assert {k: retried[0].params[k] for k in killed.params} == killed.params
    assert (tmp_path / "params" / "dnn.json").is_file()


def test_two_workers_on_one_study_meet_the_budget_exactly(tmp_path: Path) -> None:
    path = _setup(tmp_path, {"trials": 8, "epochs": 2})
    workers = [_hpo(path, f"out{i}", worker=i) for i in range(2)]
    for w in workers:
        out = w.communicate(timeout=600)[0].decode()
        assert w.returncode == 0, out[-3000:]
    trials = _trials(path)
    finished = _finished(trials)
    assert len(finished) == 8
    assert len({t.number for t in trials}) == len(trials)  # none duplicated
    # every trial is finished, or was started beyond the budget by a racing worker
    others = [t for t in trials if t not in finished]
    assert all(t.user_attrs.get("htl.over_budget") for t in others), others
    assert len({t.user_attrs["htl.worker"] for t in finished}) == 2  # both did trials


def test_first_trial_is_the_default_and_a_finished_study_trains_nothing_again(
    tmp_path: Path,
) -> None:
    path = _setup(tmp_path, {"trials": 3, "epochs": 1}, models=["htlnet", "dnn", "metabalance"])
    config = load_config(path)
    for model in config.models:
        proc = _hpo(path, "params", model)
        assert proc.wait(timeout=600) == 0, proc.stdout.read().decode()[-3000:]
        trials = _trials(path, model)
        space = search_space(config, model)
        assert trials[0].params == default_params(config, model, space)
        assert trials[0].user_attrs["htl.default"] is True
    assert "metabalance_relax" in search_space(config, "metabalance")
    before = _trials(path, "dnn")
    proc = _hpo(path, "again", "dnn")
    assert proc.wait(timeout=600) == 0
    after = _trials(path, "dnn")
    assert [(t.number, t.state, t.value) for t in after] == [
        (t.number, t.state, t.value) for t in before
    ]


def test_the_same_params_score_the_same_in_two_processes(tmp_path: Path) -> None:
    values = []
    for name in ("a", "b"):
        directory = tmp_path / name
        directory.mkdir()
        path = _setup(directory, {"trials": 1, "epochs": 2})
        proc = _hpo(path, "params")
        assert proc.wait(timeout=600) == 0, proc.stdout.read().decode()[-3000:]
        (trial,) = _trials(path)
        values.append(trial.value)
    assert values[0] == values[1]


def test_an_untrainable_configuration_fails_with_its_reason_and_is_not_retried(
    tmp_path: Path,
) -> None:
    path = _setup(tmp_path, {"trials": 2, "epochs": 2})
    raw = yaml.safe_load(path.read_text())
    raw["train"]["lr"] = 1e6  # the default, the first trial, diverges
    path.write_text(yaml.safe_dump(raw))
    proc = _hpo(path, "params")
    out = proc.communicate(timeout=600)[0].decode()
    assert proc.returncode == 0, out[-3000:]
    trials = _trials(path)
    assert trials[0].params["lr"] == 1e6 and trials[0].state == TrialState.FAIL
    assert "is nan" in trials[0].user_attrs["htl.fail_reason"]
    assert not [t for t in trials if "failed_trial" in t.system_attrs]  # not retried
    assert len(_finished(trials)) == 2


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_pruners_stop_trials_and_count_toward_the_budget(tmp_path: Path, pruner: str) -> None:
    path = _setup(tmp_path, {"trials": 10, "epochs": 4, "pruner": pruner, "startup_trials": 2})
    proc = _hpo(path, "params")
    assert proc.wait(timeout=900) == 0, proc.stdout.read().decode()[-3000:]
    trials = _trials(path)
    assert len(_finished(trials)) == 10
    for t in trials:
        assert t.user_attrs["htl.epochs"] == (
            max(t.intermediate_values) if t.intermediate_values else 0
        )


def test_hpo_workers_share_the_study_inside_one_task(tmp_path: Path) -> None:
    from htl.steps import run_hpo

    path = _setup(tmp_path, {"trials": 6, "epochs": 2, "workers": 2})
    summaries = run_hpo(load_config(path), tmp_path / "splits", tmp_path / "params", None)
    assert summaries["dnn"]["finished"] == 6  # the helper process exited 0, or run_hpo raises
    trials = _trials(path)
    assert len(_finished(trials)) == 6
    assert all(t in _finished(trials) or t.user_attrs.get("htl.over_budget") for t in trials)


def test_weights_naming_no_task_stop_before_any_trial(tmp_path: Path) -> None:
    path = _setup(tmp_path, {"weights": {"clik": 1.0}})
    proc = _hpo(path, "params")
    out = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 2
    assert "'hpo.weights' names ['clik'], not tasks of the data" in out
    with pytest.raises(KeyError):  # no study was even created
        _trials(path)
