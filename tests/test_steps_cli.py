"""Each step alone from the CLI on artifact files, tracked by a real `mlflow server` on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port
from mlflow.tracking import MlflowClient

from htl.cli import main


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    command = [
        mlflow,
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'server.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((root / "server.log").read_text()[-3000:])
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


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
    jobs = run(
        ["hpo", *common, "--splits", str(d / "splits"), "--output", str(d / "params")], capsys
    )
    assert jobs == [{"model": "htlnet", "seed": 0}, {"model": "dnn", "seed": 0}]
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
    assert Path(report).read_text().count("| dnn | htlnet |") == 1  # reference last
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
        ],
        capsys,
    )
    assert version == {"version": 1}

    client = MlflowClient(mlflow_server, mlflow_server)
    registered = client.get_model_version_by_alias("steps-model", "challenger")
    assert registered.version == "1"  # a string over REST; htl.registry casts it
    assert registered.tags["model"] == "htlnet" and registered.tags["pipeline_run"] == parent
    experiment = client.get_experiment_by_name("steps")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    assert client.get_run(parent).info.status == "FINISHED"
    children = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent}'"
    )
    assert (
        len(children) == 9
    )  # ingest, labels_split, hpo, 2 train, 2 evaluate, significance, register


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
