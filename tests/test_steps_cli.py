"""Each step alone from the CLI on artifact files, tracked by a real `mlflow server` on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from htl.cli import main


def run(args: list[str], capsys: pytest.CaptureFixture) -> object:
    code = main(args)
    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    return json.loads(out.out)


def test_every_step_runs_alone_and_registers_on_a_server(
    tmp_path: Path, mlflow_server: str, capsys: pytest.CaptureFixture
) -> None:
    from conftest import write_config

    config = str(
        write_config(
            tmp_path,
            {
                "models": ["htlnet", "dnn"],
                "seeds": [0],
                "hpo": {"trials": 0},
                "tracking": {"uri": mlflow_server, "experiment": "steps"},
                "register": {"name": "steps-model", "alias": "challenger"},
            },
        )
    )
    d = tmp_path
    parent = run(["ingest", "--config", config, "--output", str(d / "events")], capsys)
    parent = parent["parent_run_id"]
    common = ["--config", config, "--parent", parent]
    card = run(
        ["labels-split", *common, "--events", str(d / "events"), "--output", str(d / "splits")],
        capsys,
    )
    assert card["splits"]["train"]["rows"] == 2400
    studies = run(
        ["hpo", *common, "--splits", str(d / "splits"), "--output", str(d / "params")], capsys
    )
    assert {m: s["finished"] for m, s in studies.items()} == {"htlnet": 0, "dnn": 0}
    jobs = [{"model": "htlnet", "seed": 0}, {"model": "dnn", "seed": 0}]
    for job in jobs:
        name = f"{job['model']}-{job['seed']}"
        run(
            [
                "train",
                *common,
                "--splits",
                str(d / "splits"),
                "--params",
                str(d / "params"),
                "--model",
                job["model"],
                "--seed",
                "0",
                "--output",
                str(d / "models" / name),
            ],
            capsys,
        )
        record = run(
            [
                "evaluate",
                *common,
                "--model-dir",
                str(d / "models" / name),
                "--splits",
                str(d / "splits"),
                "--output",
                str(d / "eval" / name),
            ],
            capsys,
        )
        assert record["model"] == job["model"] and 0 <= record["metrics"]["click/auc"] <= 1
    report = run(
        [
            "significance",
            *common,
            "--metrics",
            *map(str, sorted((d / "eval").iterdir())),
            "--output",
            str(d / "report"),
        ],
        capsys,
    )
    assert Path(report).read_text().count("| task | metric | dnn | htlnet |") == 1  # reference last
    version = run(
        [
            "register",
            "--config",
            config,
            "--parent",
            parent,
            "--models",
            *map(str, sorted((d / "models").iterdir())),
            "--events",
            str(d / "events"),
            "--report",
            str(d / "report"),
            "--splits",
            str(d / "splits"),
        ],
        capsys,
    )
    assert version == {"version": 1}

    client = MlflowClient(mlflow_server, mlflow_server)
    registered = client.get_model_version_by_alias("steps-model", "challenger")
    assert registered.version == "1"  # a string over REST; htl.registry casts it
    assert registered.tags["model"] == "htlnet" and registered.tags["pipeline_run"] == parent
    training = client.get_run(registered.tags["lineage.training_run"])
    assert training.data.tags["htl.step"] == "train/htlnet/seed0"
    assert len(registered.tags["lineage.events_sha256"]) == 64
    register_run = client.get_run(registered.run_id)
    (dataset,) = register_run.inputs.dataset_inputs
    assert registered.tags["lineage.splits_sha256"].startswith(dataset.dataset.digest)
    assert client.get_run(parent).info.status == "RUNNING"  # promote is the last step
    promote = ["promote", "--config", config, "--parent", parent, "--splits", str(d / "splits")]
    blessing = run([*promote, "--output", str(d / "blessing")], capsys)
    assert blessing["blessed"] and blessing["challenger"] == 1 and blessing["champion"] is None
    assert (d / "blessing" / "blessing.md").is_file()
    experiment = client.get_experiment_by_name("steps")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    assert client.get_run(parent).info.status == "FINISHED"
    children = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent}'"
    )
    # ingest, labels_split, hpo per model (2), 2 train, 2 evaluate, significance, register,
    # promote
    assert len(children) == 11


def test_step_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from conftest import write_config

    config = str(write_config(tmp_path))
    code = main(
        [
            "labels-split",
            "--config",
            config,
            "--events",
            str(tmp_path / "none"),
            "--output",
            str(tmp_path / "s"),
        ]
    )
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after MLflow's own store set-up lines
    assert (
        code == 2 and last.startswith("htl: error: ") and "events.parquet: file not found" in last
    )
    code = main(
        [
            "train",
            "--config",
            config,
            "--splits",
            "x",
            "--params",
            "y",
            "--model",
            "mmoe",
            "--seed",
            "0",
            "--output",
            "z",
        ]
    )
    assert code == 2 and "--model 'mmoe' is not in 'models'" in capsys.readouterr().err
