"""`htl submit` through the real kfp.Client against a loopback server that answers the KFP
v2beta1 REST calls (tests/kfp_server.py): what the run carries, --wait's outcome, and the
mistakes that stop before anything is sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kfp_server import KfpServer

from htl.pipelines.cli import main

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = str(ROOT / "configs" / "cluster.yaml")
IMAGE = "registry.example.com/htl/htl-cpu:abc123"


@pytest.fixture(autouse=True)
def cluster_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTL_IMAGE", IMAGE)
    for name in ("HTL_GPU_IMAGE", "KF_PIPELINES_ENDPOINT", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def kfp() -> Iterator[KfpServer]:
    server = KfpServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pkg") / "pipeline.yaml"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HTL_IMAGE", IMAGE)
        assert main(["compile", "--config", CLUSTER, "--output", str(out)]) == 0
    return out


def _submit(*argv: str) -> int:
    try:
        return main(["submit", *argv])
    except SystemExit as exc:
        return int(exc.code or 0)


def _tasks(spec: dict) -> list[dict]:
    tasks = list(spec["root"]["dag"]["tasks"].values())
    for component in spec["components"].values():
        tasks += component.get("dag", {}).get("tasks", {}).values()
    return tasks


def test_the_run_carries_the_spec_the_merged_parameters_and_the_experiment(
    kfp: KfpServer, package: Path
) -> None:
    argv = ["--package", str(package), "--host", kfp.url, "--experiment", "nightly"]
    assert _submit(*argv, "--run-name", "n-1", "--set", "seeds=[0,1]", "--set", "hpo.trials=4") == 0
    (created,) = kfp.created_runs()
    run = created.body
    compiled = next(yaml.safe_load_all(package.read_text()))
    assert run["pipeline_spec"]["pipeline_spec"]["root"] == compiled["root"]
    assert run["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]
    parameters = run["runtime_config"]["parameters"]
    assert parameters["config_overrides"] == {"seeds": [0, 1], "hpo": {"trials": 4}}
    assert parameters["run_name"] == "n-1" and run["display_name"] == "n-1"
    (experiment,) = kfp.experiments.values()
    assert experiment["display_name"] == "nightly"
    assert run["experiment_id"] == experiment["experiment_id"]
    # caching as compiled: on for the pure steps
    cached = [t["taskInfo"]["name"] for t in _tasks(run["pipeline_spec"]["pipeline_spec"])
              if t.get("cachingOptions", {}).get("enableCache")]  # fmt: skip
    assert "configure" in cached and "ingest" not in cached


def test_no_cache_turns_caching_off_in_every_task(kfp: KfpServer, package: Path) -> None:
    assert _submit("--package", str(package), "--host", kfp.url, "--no-cache") == 0
    spec = kfp.created_runs()[0].body["pipeline_spec"]["pipeline_spec"]
    assert not [t for t in _tasks(spec) if t.get("cachingOptions", {}).get("enableCache")]


def test_the_experiment_is_reused_and_the_host_comes_from_the_environment(
    kfp: KfpServer, package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KF_PIPELINES_ENDPOINT", kfp.url)
    assert _submit("--package", str(package), "--experiment", "e") == 0
    assert _submit("--package", str(package), "--experiment", "e") == 0
    assert len(kfp.experiments) == 1 and len(kfp.created_runs()) == 2


def test_submit_from_a_config_compiles_it_first(kfp: KfpServer) -> None:
    assert _submit("--config", CLUSTER, "--host", kfp.url) == 0
    run = kfp.created_runs()[0].body
    default = run["pipeline_spec"]["pipeline_spec"]["root"]["inputDefinitions"]["parameters"][
        "config"
    ]["defaultValue"]
    assert default["tracking"]["uri"] == "http://mlflow.mlflow.svc.cluster.local:5000"
    assert run["runtime_config"]["parameters"]["config_overrides"] == {}


@pytest.mark.parametrize(
    ("states", "code"), [(["RUNNING", "SUCCEEDED"], 0), (["RUNNING", "FAILED"], 1)]
)
def test_wait_ends_with_the_final_state(
    package: Path, states: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    server = KfpServer(states=["PENDING", *states])
    try:
        argv = ["--package", str(package), "--host", server.url, "--wait", "--poll", "0.01"]
        assert _submit(*argv) == code
    finally:
        server.close()
    assert f"ended {states[-1]}" in capsys.readouterr().err
    gets = [r for r in server.requests if r.method == "GET" and "/runs/" in r.path]
    assert len(gets) >= 2  # followed until the end


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "tracking.uri=sqlite:///mlflow.db"], "'tracking.uri' is 'sqlite:"),
        (["--set", "seeds=[0,x]"], "seeds"),
        (["--set", "modles=[dnn]"], "did you mean 'models'"),
    ],
)
def test_a_bad_override_stops_before_anything_is_sent(
    kfp: KfpServer, package: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _submit("--package", str(package), "--host", kfp.url, *argv) == 2
    assert message in capsys.readouterr().err
    assert kfp.requests == []


def test_an_unreachable_host_or_none_stops_with_one_message(
    package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = KfpServer()
    url = server.url
    server.close()  # nothing listens there now
    assert _submit("--package", str(package), "--host", url) == 2
    assert f"KFP host {url} does not answer" in capsys.readouterr().err
    assert _submit("--package", str(package)) == 2
    assert "pass --host URL or set KF_PIPELINES_ENDPOINT" in capsys.readouterr().err


def test_a_package_built_on_local_images_is_refused(
    kfp: KfpServer, tmp_path: Path, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "local.yaml"
    local.write_text(package.read_text().replace(IMAGE, "localhost/htl-cpu:abc"))
    assert _submit("--package", str(local), "--host", kfp.url) == 2
    assert "images only one machine has" in capsys.readouterr().err
    assert kfp.requests == []
