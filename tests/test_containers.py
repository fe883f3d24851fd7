"""The demo DAG with every step inside the built CPU image (kfp.local DockerRunner on a
podman socket) gives the same results.json as the subprocess run, bit for bit. Slow: builds
the image and runs the DAG twice; `make test-containers` (which starts the podman service)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.containers


def _run(workdir: Path, *extra: str) -> Path:
    htl = Path(sys.executable).with_name("htl")
    argv = [str(htl), "run", "--config", str(ROOT / "configs" / "demo.yaml")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # same in both
    subprocess.run([*argv, "--set", f"workdir={workdir}", *extra], check=True, env=env)
    (results,) = workdir.glob("**/significance/report/results.json")
    return results


def _registered_image(workdir: Path) -> str:
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    (version,) = client.search_model_versions("name='htl-demo'")
    return version.tags["lineage.image"]


def test_the_demo_in_containers_equals_the_subprocess_run(tmp_path: Path) -> None:
    assert os.environ.get("DOCKER_HOST"), "run through images/with-podman.sh (make test-containers)"
    build = subprocess.run(
        [str(ROOT / "images" / "build.sh"), "cpu"], check=True, capture_output=True, text=True
    )
    image = build.stdout.strip().splitlines()[-1]
    in_processes = _run(tmp_path / "subprocess")
    in_containers = _run(tmp_path / "containers", "--runner", "docker", "--image", image)
    assert in_containers.read_bytes() == in_processes.read_bytes(), (
        json.loads(in_containers.read_text())["summary"],
        json.loads(in_processes.read_text())["summary"],
    )
    # every step ran in the image: the registered model says which; the files are the caller's
    assert _registered_image(tmp_path / "containers") == image
    assert _registered_image(tmp_path / "subprocess") == "none (local run)"
    owners = {p.stat().st_uid for p in (tmp_path / "containers").rglob("*")}
    assert owners == {os.getuid()}
