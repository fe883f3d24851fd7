"""Champion/challenger promotion against a real `mlflow server` on loopback, with real
trainings on tiny data: the first model becomes champion, a worse one is refused with the
failing check named, a better one is promoted, rollback restores, and two promotions at once
leave @champion on the better model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
from conftest import write_config
from mlflow.tracking import MlflowClient

from htl.config import ConfigError, config_from_dict, config_to_dict, load_config
from htl.data.prepare import prepare_splits
from htl.data.sources import ingest
from htl.steps import run_promote, run_register, run_rollback
from htl.train import train_model

# How well each model is trained: one epoch at a tiny learning rate is deliberately bad.
QUALITY = {
    "bad": {"epochs": 1, "lr": 1e-5},
    "fair": {"epochs": 1, "lr": 1e-4},
    "good": {"epochs": 4, "lr": 5e-3},
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, mlflow_server: str) -> dict:
    root = tmp_path_factory.mktemp("promote")
    overrides = {
        "models": ["dnn"],
        "seeds": [0],
        "data": {"rows": 40000, "seed": 0},  # 4,000 test rows: good beats fair at p ≈ 0.01
        "register": {"model": "dnn", "name": "gate"},
        "significance": {"reference": "dnn"},
        "tracking": {"uri": mlflow_server, "experiment": "promote"},
        "promote": {"thresholds": {"watch_time/nrmse": 2.0, "click/auc": 0.4}, "tolerance": 0.002},
    }
    config_path = write_config(root, overrides)
    config = load_config(config_path)
    ingest(config.data, root / "events")
    prepare_splits(root / "events", root / "splits", config.data)
    (root / "report").mkdir()
    (root / "report" / "report.md").write_text("# report\n")
    models = {}
    for name, settings in QUALITY.items():
        spec = replace(config.training_spec("dnn"), batch_size=256, **settings)
        train_model(root / "splits", "dnn", 0, spec, root / "models" / name)
        models[name] = root / "models" / name
    return {"root": root, "config": config, "config_path": config_path, "models": models}


def register(ws: dict, quality: str, name: str) -> int:
    config = replace(ws["config"], register=replace(ws["config"].register, name=name))
    return run_register(
        config, [ws["models"][quality]], ws["root"] / "events", ws["root"] / "report", None
    )


def test_first_becomes_champion_worse_is_refused_better_promoted_and_rollback(
    workspace: dict, mlflow_server: str
) -> None:
    ws, client = workspace, MlflowClient(mlflow_server, mlflow_server)
    config, splits = ws["config"], ws["root"] / "splits"

    fair = register(ws, "fair", "gate")
    first = run_promote(config, splits, ws["root"] / "b1", None)
    assert first["blessed"] and first["champion"] is None and "first model" in first["reason"]
    assert int(client.get_model_version_by_alias("gate", "champion").version) == fair

    bad = register(ws, "bad", "gate")
    refused = run_promote(config, splits, ws["root"] / "b2", None)
    assert not refused["blessed"] and refused["champion"] == fair
    failed = {c["name"] for c in refused["checks"] if not c["passed"]}
    assert "superiority watch_time/nrmse" in failed and "no regression watch_time/nrmse" in failed
    assert "superiority watch_time/nrmse" in refused["reason"]
    assert int(client.get_model_version_by_alias("gate", "champion").version) == fair
    assert client.get_model_version("gate", str(bad)).tags["validation_status"] == "rejected"
    markdown = (ws["root"] / "b2" / "blessing.md").read_text()
    assert "**not blessed**" in markdown and "| threshold watch_time/nrmse | yes |" in markdown
    saved = json.loads((ws["root"] / "b2" / "blessing.json").read_text())
    assert saved["metrics"]["champion"] == first["metrics"]["challenger"]  # same rows, same model

    good = register(ws, "good", "gate")
    promoted = run_promote(config, splits, ws["root"] / "b3", None)
    assert promoted["blessed"], promoted["reason"]
    nrmse = "watch_time/nrmse"
    assert promoted["metrics"]["challenger"][nrmse] < promoted["metrics"]["champion"][nrmse]
    assert int(client.get_model_version_by_alias("gate", "champion").version) == good
    assert int(client.get_model_version_by_alias("gate", "previous-champion").version) == fair
    assert client.get_model_version("gate", str(good)).tags["validation_status"] == "blessed"

    assert run_rollback(config) == fair
    assert int(client.get_model_version_by_alias("gate", "champion").version) == fair
    assert int(client.get_model_version_by_alias("gate", "previous-champion").version) == good


def test_a_threshold_alone_can_refuse_the_first_model(workspace: dict, mlflow_server: str) -> None:
    ws = workspace
    config = replace(
        ws["config"],
        register=replace(ws["config"].register, name="strict"),
        promote=replace(ws["config"].promote, thresholds={"click/auc": 0.999}),
    )
    register(ws, "good", "strict")
    blessing = run_promote(config, ws["root"] / "splits", ws["root"] / "strict", None)
    assert not blessing["blessed"] and blessing["reason"] == "Failed: threshold click/auc."
    client = MlflowClient(mlflow_server, mlflow_server)
    assert not client.get_registered_model("strict").aliases.get("champion")


def test_two_promotions_at_once_leave_the_better_model_champion(
    workspace: dict, mlflow_server: str
) -> None:
    ws = workspace
    versions = {q: register(ws, q, "race") for q in ("fair", "good")}  # both pass thresholds
    raw = config_to_dict(ws["config"])
    raw["register"]["name"] = "race"
    config_path = ws["root"] / "race.yaml"
    config_path.write_text(json.dumps(raw))  # JSON is YAML
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "htl",
                "promote",
                "--config",
                str(config_path),
                "--splits",
                str(ws["root"] / "splits"),
                "--output",
                str(ws["root"] / f"race-{q}"),
                "--version",
                str(v),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for q, v in versions.items()
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outputs]
    client = MlflowClient(mlflow_server, mlflow_server)
    assert int(client.get_model_version_by_alias("race", "champion").version) == versions["good"]
    # the fair model either lost the race outright or held @champion until the good one,
    # deciding against it, displaced it
    fair = client.get_model_version("race", str(versions["fair"]))
    previous = client.get_registered_model("race").aliases.get("previous-champion")
    assert fair.tags["validation_status"] == "rejected" or int(previous) == versions["fair"]


def test_register_alias_champion_is_refused_at_load_time() -> None:
    for alias in ("champion", "previous-champion"):
        with pytest.raises(ConfigError, match=f"'register.alias' is '{alias}'; only `htl promote`"):
            config_from_dict({"register": {"alias": alias}}, source="exp.yaml")


def test_the_gate_on_known_errors() -> None:
    """`decide` on hand-made scores: superiority needs a significant gain, non-inferiority
    accepts a loss inside the margin and refuses one beyond it."""
    import numpy as np

    from htl.config import PromoteConfig
    from htl.promote import Scores, decide
    from htl.tasks import TaskSpec

    tasks = TaskSpec(("c",), "w")
    rng = np.random.default_rng(0)
    base = rng.exponential(1.0, 5000)

    def scores(errors: np.ndarray) -> Scores:
        return Scores({"w/nrmse": float(np.sqrt(errors.mean()))}, errors)

    champion = scores(base)
    better, slightly_worse = scores(base * 0.9), scores(base * 1.02)
    superiority = PromoteConfig(tolerance=1.0)
    assert decide(superiority, tasks, better, champion)[1]
    same = decide(superiority, tasks, scores(base.copy()), champion)  # the same model again
    assert not same[1] and same[0][-1].detail.endswith("differs by 0: no gain")
    assert not decide(superiority, tasks, slightly_worse, champion)[1]
    lenient = PromoteConfig(tolerance=1.0, mode="non_inferiority", margin=0.05)
    assert decide(lenient, tasks, slightly_worse, champion)[1]  # 2 % worse, 5 % allowed
    strict = PromoteConfig(tolerance=1.0, mode="non_inferiority", margin=0.01)
    checks, blessed, reason = decide(strict, tasks, slightly_worse, champion)
    assert not blessed and reason == "Failed: non_inferiority w/nrmse."
    no_slack = decide(
        PromoteConfig(mode="non_inferiority", margin=0.05), tasks, slightly_worse, champion
    )
    assert not no_slack[1] and "no regression w/nrmse" in no_slack[2]  # tolerance 0: any loss


def test_a_threshold_on_an_unknown_metric_is_refused_at_load_time() -> None:
    from htl.checks import check

    config = config_from_dict({"promote": {"thresholds": {"watch_time/nrmes": 1.0}}})
    with pytest.raises(
        ConfigError, match=r"'promote.thresholds.watch_time/nrmes'.*did you mean 'nrmse'"
    ):
        check(config, "exp.yaml")


def test_a_champion_that_cannot_read_this_data_is_a_clear_error(workspace: dict) -> None:
    """A version registered on other columns (the data's schema moved on) cannot be scored on
    this run's rows: the message names the version and the missing column, no traceback."""
    from htl.errors import DataError
    from htl.promote import score, test_rows

    version = register(workspace, "fair", "old-schema")
    rows, tasks = test_rows(workspace["root"] / "splits")
    with pytest.raises(DataError, match=r"models:/old-schema/1 cannot score .*'user_id'"):
        score(f"models:/old-schema/{version}", rows.drop(columns=["user_id"]), tasks)
