"""Shared fixtures: tiny configs and data written by the tests themselves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from htl.config import ExperimentConfig

torch.set_num_threads(2)

TINY = {
    "name": "tiny",
    "models": ["htlnet", "shared_bottom", "dnn"],
    "seeds": [0, 1],
    "data": {"rows": 3000, "seed": 0},
    "train": {"epochs": 2, "batch_size": 256, "lr": 0.005},
    "hpo": {"trials": 1, "epochs": 1},
    "tracking": {"experiment": "tiny"},
    "register": {"name": "tiny-model"},
}


STORE_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "HTL_OPTUNA_STORAGE",
                   "HTL_CHECKPOINT_DIR")  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def no_store_from_the_environment_in_module_fixtures() -> Iterator[None]:
    """A config without stores means files under its workdir: MLflow writes the URI it was
    last pointed at into MLFLOW_TRACKING_URI, so no fixture or test may inherit another's."""
    with pytest.MonkeyPatch.context() as mp:
        for name in STORE_VARIABLES:
            mp.delenv(name, raising=False)
        yield


@pytest.fixture(autouse=True)
def no_store_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in STORE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def write_config(directory: Path, overrides: dict | None = None, name: str = "config.yaml") -> Path:
    """A tiny config under `directory` (its workdir too), with top-level keys overridden."""
    raw = {**TINY, "workdir": str(directory / "work"), **(overrides or {})}
    path = directory / name
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def tiny_config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def free_port() -> int:
    """A free TCP port on the loopback interface, for servers the tests start."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    """Poll `url` until it answers 200; the server's log tail if it dies or never answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log.read_text()[-3000:])
        time.sleep(1)


def registered_dnn(root: Path, overrides: dict) -> ExperimentConfig:
    """A DNN trained one epoch on the config's synthetic data under `root` and registered with
    the config's alias (the splits in `root / "splits"`): what serving and scoring tests use."""
    from htl.config import load_config
    from htl.data.prepare import prepare_splits
    from htl.data.sources import ingest
    from htl.steps import run_register
    from htl.train import train_model

    base = {"models": ["dnn"], "seeds": [0], "significance": {"reference": "dnn"}}
    config = load_config(write_config(root, {**base, **overrides}))
    ingest(config.data, root / "events")
    prepare_splits(root / "events", root / "splits", config.data)
    spec = replace(config.training_spec("dnn"), epochs=1, batch_size=256)
    train_model(root / "splits", "dnn", 0, spec, root / "model")
    (root / "report").mkdir()
    (root / "report" / "report.md").write_text("# report\n")
    run_register(config, [root / "model"], root / "events", root / "report", None)
    return config


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
        wait_until_up(f"{url}/health", proc, root / "server.log")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """gcp-storage-emulator on 127.0.0.1 with a bucket; the environment points the client at it."""
    root = tmp_path_factory.mktemp("gcs").resolve()
    port = free_port()
    emulator = str(Path(sys.executable).with_name("gcp-storage-emulator"))
    log = (root / "emulator.log").open("w")
    proc = subprocess.Popen(
        [emulator, "-d", str(root / "data"), "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((root / "emulator.log").read_text()) from None
                time.sleep(0.2)
        from htl.storage import gcs_client

        client = gcs_client()
        yield client.create_bucket("htl-test")
    finally:
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous
        proc.terminate()
        proc.wait(timeout=30)
